"""Openings of a serialised training state against its state root, as ``contracts/src/StateReader.sol`` checks them
(DESIGN §3, §8): the chunks holding the header and manifest with the byte positions of one tensor's entry and of the
last entry, and the chunks holding any byte range. Each chunk comes with its RFC 9162 audit path among the state's
4096-byte chunks."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from functools import cached_property

from protocol import merkle
from protocol.errors import VeritrainError
from protocol.state import CHUNK_SIZE, MAGIC, canonical_json

HEADER = len(MAGIC) + 8


class StateOpeningError(VeritrainError, ValueError):
    """The state has no such tensor, or the bytes are not a state serialisation."""


@dataclass(frozen=True)
class Tensor:
    """Where a tensor's bytes lie in the serialisation."""

    name: str
    start: int
    nbytes: int


class StateOpener:
    """Builds openings of one serialised state (``blob``: :func:`protocol.state.serialize_bytes`)."""

    def __init__(self, blob: bytes) -> None:
        if blob[:4] != MAGIC or len(blob) < HEADER:
            raise StateOpeningError("not a state serialisation (magic)")
        self.blob = blob
        (self.manifest_len,) = struct.unpack("<Q", blob[4:HEADER])
        self.manifest = blob[HEADER : HEADER + self.manifest_len]
        self.entries = json.loads(self.manifest)["tensors"]

    @cached_property
    def leaves(self) -> list[bytes]:
        return [merkle.leaf_hash(self.blob[i : i + CHUNK_SIZE]) for i in range(0, len(self.blob), CHUNK_SIZE)]

    def root(self) -> bytes:
        return merkle.rfc9162_root(self.leaves)

    def chunks(self, first: int, last: int) -> tuple[int, list[bytes], list[list[bytes]]]:
        """``StateReader.Chunks`` of chunks ``first..last`` (inclusive)."""
        data = [self.blob[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE] for i in range(first, last + 1)]
        return first, data, [merkle.rfc9162_path(self.leaves, i) for i in range(first, last + 1)]

    def _position(self, entry: dict) -> int:
        at = self.manifest.find(canonical_json(entry))
        if at < 0:
            raise StateOpeningError(f"entry of {entry.get('name')!r} not found in the manifest")
        return at

    def tensor(self, name: str) -> Tensor:
        for e in self.entries:
            if e["name"] == name:
                return Tensor(name, HEADER + self.manifest_len + int(e["offset"]), int(e["nbytes"]))
        raise StateOpeningError(f"the state has no tensor {name!r}")

    def manifest_opening(self, name: str) -> tuple[tuple, int, int]:
        """``StateReader.ManifestOpening`` of tensor ``name``: the chunks from 0 holding the header and the manifest,
        the position of its entry and of the last entry in the manifest."""
        entry = next((e for e in self.entries if e["name"] == name), None)
        if entry is None:
            raise StateOpeningError(f"the state has no tensor {name!r}")
        last_chunk = (HEADER + self.manifest_len - 1) // CHUNK_SIZE
        return self.chunks(0, last_chunk), self._position(entry), self._position(self.entries[-1])

    def range_opening(self, start: int, length: int) -> tuple[int, list[bytes], list[list[bytes]]]:
        """The chunks that hold bytes ``[start, start + length)``."""
        if length <= 0 or start + length > len(self.blob):
            raise StateOpeningError(f"bytes [{start}, {start + length}) are not in the {len(self.blob)}-byte state")
        return self.chunks(start // CHUNK_SIZE, (start + length - 1) // CHUNK_SIZE)
