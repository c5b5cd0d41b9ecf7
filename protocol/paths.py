"""Where things are: the repository root, the forge ``out/`` directory and the Foundry executables.

The Foundry binaries come from npm (``make setup``), in ``node_modules/@foundry-rs/<tool>-<os>-<arch>/bin/``;
that pinned copy is preferred over whatever else is on ``PATH``.
"""

from __future__ import annotations

import os
import platform
import shutil
import tomllib
from functools import cache
from pathlib import Path

from protocol.errors import ToolMissing

#: Set this to point veritrain at a repository checkout other than the one this package lives in.
ROOT_ENV = "VERITRAIN_ROOT"


def _is_root(path: Path) -> bool:
    return (path / "foundry.toml").is_file() and (path / "contracts").is_dir()


@cache
def repo_root() -> Path:
    """The repository root: ``$VERITRAIN_ROOT``, else the checkout holding this package, else the first
    directory at or above the working directory with ``foundry.toml`` and ``contracts/``."""
    env = os.environ.get(ROOT_ENV)
    if env:
        root = Path(env).resolve()
        if not _is_root(root):
            raise FileNotFoundError(f"${ROOT_ENV}={env} has no foundry.toml and contracts/")
        return root
    here = Path(__file__).resolve().parent.parent
    if _is_root(here):
        return here
    for candidate in (Path.cwd(), *Path.cwd().parents):
        if _is_root(candidate):
            return candidate
    raise FileNotFoundError(
        f"cannot find the veritrain repository (foundry.toml + contracts/); run from the checkout or set ${ROOT_ENV}"
    )


def contracts_src_dir() -> Path:
    """``contracts/src``: the protocol's Solidity sources."""
    return repo_root() / "contracts" / "src"


def default_params_path() -> Path:
    """``contracts/params/default.json``: deployment parameters shared with the forge fixture."""
    return repo_root() / "contracts" / "params" / "default.json"


def forge_out_dir() -> Path:
    """forge's artifact directory (``out`` in foundry.toml's default profile)."""
    root = repo_root()
    with open(root / "foundry.toml", "rb") as fh:
        config = tomllib.load(fh)
    out = config.get("profile", {}).get("default", {}).get("out", "out")
    return root / out


def _platform_suffix() -> str:
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system(), "linux")
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{system}-{arch}"


def foundry_tool(name: str) -> Path:
    """Path of the Foundry executable ``name`` (``forge``, ``anvil``, ``cast``).

    Raises :class:`~protocol.errors.ToolMissing` telling the user to run ``make setup`` when it is not
    installed.
    """
    pinned = repo_root() / "node_modules" / "@foundry-rs" / f"{name}-{_platform_suffix()}" / "bin" / name
    if pinned.is_file() and os.access(pinned, os.X_OK):
        return pinned
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ToolMissing(
        f"'{name}' not found (looked for {pinned.relative_to(repo_root())} and on PATH); "
        "run `make setup` to install Foundry from npm"
    )
