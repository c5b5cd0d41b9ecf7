"""veritrain: verifiable decentralized ML training.

The ``veritrain`` command wires the packages together: ``protocol`` (shared
library), ``solver``, ``verifier`` and ``marketplace_api``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("veritrain")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
