"""Exceptions raised by :mod:`protocol`.

Every error is a :class:`VeritrainError`, so callers (the CLI above all) can catch the whole family in one
place and print its message, which says what went wrong and what to do. Each subclass also inherits the
closest builtin, so code that only knows Python's own exceptions (``FileNotFoundError``, ``RuntimeError``,
``ValueError``) still catches it.
"""

from __future__ import annotations

from typing import Any


class VeritrainError(Exception):
    """Base class of every error veritrain raises on purpose."""


class ToolMissing(VeritrainError, FileNotFoundError):
    """A required external executable (forge, anvil) is not installed."""


class BuildFailed(VeritrainError, RuntimeError):
    """``forge build`` ran and failed."""


class ArtifactMissing(VeritrainError, FileNotFoundError):
    """A forge artifact (``out/X.sol/X.json``) is missing or unusable."""


class DeploymentError(VeritrainError, ValueError):
    """Deployment parameters or a deployment file are invalid."""


class AnvilError(VeritrainError, RuntimeError):
    """The local anvil node could not be started or answered badly."""


class ContractRevert(VeritrainError, RuntimeError):
    """A contract call or transaction reverted; the revert data decoded against the protocol ABIs.

    ``name`` is the Solidity error name (``"InvalidSignature"``; ``"Error"`` for ``require`` strings,
    ``"Panic"`` for panics, ``"<unknown>"`` when no ABI knows the selector) and ``fields`` its arguments
    by parameter name, in declaration order.
    """

    def __init__(self, name: str, fields: dict[str, Any], selector: bytes, data: bytes) -> None:
        self.name = name
        self.fields = fields
        self.selector = selector
        self.data = data
        shown = ", ".join(f"{k}={_show(v)}" for k, v in fields.items())
        super().__init__(f"reverted with {name}({shown})")


class TransactionFailed(VeritrainError, RuntimeError):
    """A mined transaction has status 0 (it passed gas estimation but reverted on-chain)."""

    def __init__(self, tx_hash: bytes, receipt: Any) -> None:
        self.tx_hash = tx_hash
        self.receipt = receipt
        super().__init__(f"transaction 0x{bytes(tx_hash).hex()} reverted on-chain (status 0)")


def _show(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return repr(value) if isinstance(value, str) else str(value)
