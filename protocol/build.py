"""Compile the contracts with forge when the artifacts are missing or older than the sources.

Only ``contracts/src`` and ``contracts/test/harness`` are compiled (``forge build <paths>``): the Python side
needs nothing else, and a Solidity test being edited cannot break it. ``forge test`` builds the rest.

A stamp file in the forge ``out/`` directory records the last successful build run from here; a build is
needed when it is missing, when an artifact we need is missing, or when any ``.sol`` file under
``contracts/src`` or ``contracts/test/harness`` (or ``foundry.toml``) is newer than the stamp.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from protocol.errors import BuildFailed, ToolMissing
from protocol.paths import contracts_src_dir, forge_out_dir, foundry_tool, repo_root

#: Contracts whose artifacts must exist after a build.
REQUIRED_ARTIFACTS = ("VeriToken", "StakeManager", "JobMarket", "DisputeGame")
STAMP_NAME = ".veritrain-build-stamp"


def _source_dirs() -> list[Path]:
    """What Python needs compiled: the protocol sources and the test harnesses (not the forge tests)."""
    dirs = [contracts_src_dir(), repo_root() / "contracts" / "test" / "harness"]
    return [d for d in dirs if d.is_dir()]


def _inputs() -> Iterable[Path]:
    yield repo_root() / "foundry.toml"
    for folder in _source_dirs():
        yield from folder.rglob("*.sol")


def needs_build(required: Iterable[str] = REQUIRED_ARTIFACTS) -> bool:
    """True when ``forge build`` must run before the artifacts can be trusted."""
    out = forge_out_dir()
    stamp = out / STAMP_NAME
    if not stamp.is_file():
        return True
    if any(not (out / f"{name}.sol" / f"{name}.json").is_file() for name in required):
        return True
    built_at = stamp.stat().st_mtime_ns
    return any(p.stat().st_mtime_ns > built_at for p in _inputs())


def ensure_forge_build(required: Iterable[str] = REQUIRED_ARTIFACTS, *, force: bool = False) -> bool:
    """Run ``forge build contracts/src contracts/test/harness`` at the repository root if needed; returns
    whether it ran.

    Raises :class:`~protocol.errors.ToolMissing` (run ``make setup``) when forge or node is missing and
    :class:`~protocol.errors.BuildFailed` with forge's output when compilation fails.
    """
    required = tuple(required)
    if not force and not needs_build(required):
        return False
    forge = foundry_tool("forge")
    # The stamp gets the time the build started, so a source saved during the build still looks newer.
    started = time.time_ns()
    env = dict(os.environ)
    # tools/solc (the solc-js shim forge runs) needs node; the forge directory goes first on PATH.
    env["PATH"] = os.pathsep.join([str(forge.parent), env.get("PATH", "")])
    # Only the sources Python uses: a forge test being edited elsewhere cannot break the Python suite.
    paths = [str(d.relative_to(repo_root())) for d in _source_dirs()]
    try:
        proc = subprocess.run(
            [str(forge), "build", *paths],
            cwd=repo_root(),
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except FileNotFoundError as exc:  # pragma: no cover - raced removal of the binary
        raise ToolMissing(f"cannot run {forge}: {exc}; run `make setup`") from exc
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        if "node" in tail and ("not found" in tail or "No such file" in tail):
            raise ToolMissing(f"forge could not run the solc shim (is Node.js installed?); run `make setup`\n{tail}")
        raise BuildFailed(f"`forge build` failed (exit {proc.returncode}):\n{tail}")
    out = forge_out_dir()
    missing = [n for n in required if not (out / f"{n}.sol" / f"{n}.json").is_file()]
    if missing:
        raise BuildFailed(f"`forge build` succeeded but produced no artifact for {', '.join(missing)} in {out}")
    stamp = out / STAMP_NAME
    stamp.touch()
    os.utime(stamp, ns=(started, started))
    return True
