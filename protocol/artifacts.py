"""Forge artifacts: the one place ABIs and bytecode come from.

``forge build`` writes ``out/<Name>.sol/<Name>.json`` with ``abi`` and ``bytecode.object``; nothing in
veritrain keeps a copy of an ABI anywhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from eth_typing import ABI

from protocol.errors import ArtifactMissing
from protocol.paths import forge_out_dir

#: The five contracts protocol/deploy.py deploys, in deployment order.
PROTOCOL_CONTRACTS = ("VeriToken", "StakeManager", "JobMarket", "StatePublisher", "DisputeGame")


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its ABI and creation bytecode."""

    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes
    path: Path

    def abi_list(self) -> ABI:
        """The ABI as the list web3 expects (typed as eth_typing's ``ABI``: the entries are solc's JSON ABI)."""
        return cast(ABI, list(self.abi))

    def entries(self, kind: str) -> list[dict[str, Any]]:
        """ABI entries of one ``type`` (``function``, ``event``, ``error``, ``constructor``)."""
        return [e for e in self.abi if e.get("type") == kind]


def artifact_path(name: str, out_dir: Path | None = None) -> Path:
    """``out/<name>.sol/<name>.json``."""
    return (out_dir or forge_out_dir()) / f"{name}.sol" / f"{name}.json"


def load_artifact(name: str, out_dir: Path | None = None) -> Artifact:
    """Loads contract ``name``'s artifact (cached until the file changes).

    Raises :class:`~protocol.errors.ArtifactMissing` if it is absent (run ``make build`` or
    :func:`protocol.build.ensure_forge_build`) or has unlinked library references.
    """
    path = artifact_path(name, out_dir)
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise ArtifactMissing(
            f"no forge artifact for {name} at {path}; run `make build` (or protocol.build.ensure_forge_build())"
        ) from None
    return _load(path, mtime, name)


@lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int, name: str) -> Artifact:
    del mtime_ns  # part of the cache key only
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    try:
        abi = raw["abi"]
        bytecode_obj = raw["bytecode"]["object"]
    except (KeyError, TypeError):
        raise ArtifactMissing(f"{path} is not a forge artifact (no abi / bytecode.object)") from None
    if raw["bytecode"].get("linkReferences"):
        raise ArtifactMissing(f"{name} needs linked libraries, which veritrain does not deploy")
    hexcode = bytecode_obj[2:] if bytecode_obj.startswith("0x") else bytecode_obj
    return Artifact(name=name, abi=tuple(abi), bytecode=bytes.fromhex(hexcode), path=path)


def event_enum_args(name: str, out_dir: Path | None = None) -> dict[str, dict[str, str]]:
    """Per event of contract ``name``, the arguments whose ABI ``internalType`` is an enum:
    ``{"DisputeResolved": {"outcome": "enum IDisputeGame.Outcome"}, ...}`` (for naming them, see
    :func:`protocol.constants.enum_name`)."""
    out: dict[str, dict[str, str]] = {}
    for e in load_artifact(name, out_dir).entries("event"):
        enums = {
            i["name"]: i["internalType"] for i in e["inputs"] if str(i.get("internalType", "")).startswith("enum ")
        }
        if enums:
            out[e["name"]] = enums
    return out
