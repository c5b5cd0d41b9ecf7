"""Canonical serialisation of a training state and its ``state_root`` (DESIGN §3).

Byte format (version 1), all integers little-endian::

    b"VTS1" ‖ u64 manifest_len ‖ manifest ‖ tensor bytes, in manifest order

``manifest`` is canonical JSON (sorted keys, no spaces, ASCII)::

    {"format":"veritrain-state","version":1,"step":S,"meta":{...},
     "tensors":[{"name":N,"dtype":D,"shape":[...],"offset":O,"nbytes":B}, ...]}

Tensors are listed in ascending ``name`` order (so the insertion order of the caller's dict never matters);
``offset`` counts from the first tensor byte; each tensor is its raw C-contiguous little-endian bytes with no
padding. ``meta`` holds small JSON values (data cursor, RNG counters, kernel-set version, ...).

``state_root`` is the RFC 9162 Merkle root (SHA-256, leaf = H(0x00 ‖ chunk), node = H(0x01 ‖ l ‖ r)) over the
serialisation cut into 4096-byte chunks, the last one short. The serialisation is never joined in memory to
be hashed: chunks are memoryview slices of the tensors' own storage (only the few chunks that straddle two
buffers are assembled), and perfect subtrees of 1024 chunks (4 MiB) are hashed on a thread pool — hashlib releases the
GIL for each 4 KiB update, so both cores work.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import struct
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeGuard

import numpy as np
import torch

from protocol import merkle
from protocol.errors import VeritrainError

MAGIC = b"VTS1"
FORMAT_VERSION = 1
CHUNK_SIZE = 4096
#: Chunks per parallel task: a perfect subtree (power of two) of 4 MiB. Measured on 2 cores (256 MiB state,
#: `veritrain bench hash`): 256 chunks -> ratio 0.87-0.97, 1024 -> 1.05, 4096 -> 1.09; smaller tasks lose to
#: GIL hand-offs, larger ones leave a core idle on states of a few blocks.
BLOCK_CHUNKS = 1024

_TORCH_DTYPES: dict[torch.dtype, str] = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
    torch.int64: "int64",
    torch.int32: "int32",
    torch.int16: "int16",
    torch.int8: "int8",
    torch.uint8: "uint8",
    torch.bool: "bool",
}
_BY_NAME: dict[str, torch.dtype] = {v: k for k, v in _TORCH_DTYPES.items()}
#: The manifest's name of each torch dtype a state may hold.
DTYPE_NAMES: dict[torch.dtype, str] = dict(_TORCH_DTYPES)
# numpy has no bfloat16: its bytes travel as int16 of the same width.
_NUMPY_CARRIER = {torch.bfloat16: torch.int16}


class StateFormatError(VeritrainError, ValueError):
    """Bytes that are not a valid canonical state serialisation, or a state that cannot be serialised."""


class StateRootMismatch(VeritrainError, ValueError):
    """Deserialised bytes do not hash to the state root they were expected to have."""


@dataclass
class TrainingState:
    """A complete training state: named tensors (parameters, optimizer buffers, RNG/cursor tensors), the optimizer
    step counter and small JSON metadata."""

    tensors: dict[str, torch.Tensor]
    step: int
    meta: dict[str, Any] = field(default_factory=dict)


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, ASCII only."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _tensor_view(name: str, t: torch.Tensor) -> tuple[str, memoryview]:
    if not isinstance(t, torch.Tensor):
        raise StateFormatError(f"state entry {name!r} is a {type(t).__name__}, not a torch.Tensor")
    dtype_name = _TORCH_DTYPES.get(t.dtype)
    if dtype_name is None:
        raise StateFormatError(f"state entry {name!r} has unsupported dtype {t.dtype}")
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    t = t.contiguous()
    carrier = _NUMPY_CARRIER.get(t.dtype)
    arr = (t.view(carrier) if carrier is not None else t).numpy()
    if sys.byteorder != "little" and arr.dtype.itemsize > 1:
        arr = arr.byteswap()
    return dtype_name, arr.reshape(-1).data.cast("B")  # .data: the array's buffer as a memoryview


def serialize(state: TrainingState) -> list[memoryview]:
    """The canonical serialisation as a list of buffers (header+manifest, then each tensor's bytes).

    The tensor buffers alias the tensors' storage (no copy on CPU); keep ``state`` alive while using them.
    """
    entries = []
    views = []
    offset = 0
    for name in sorted(state.tensors):
        if not isinstance(name, str) or not name:
            raise StateFormatError(f"tensor names must be non-empty strings, got {name!r}")
        t = state.tensors[name]
        dtype_name, view = _tensor_view(name, t)
        entries.append(
            {"name": name, "dtype": dtype_name, "shape": list(t.shape), "offset": offset, "nbytes": view.nbytes}
        )
        views.append(view)
        offset += view.nbytes
    manifest = canonical_json(
        {
            "format": "veritrain-state",
            "version": FORMAT_VERSION,
            "step": int(state.step),
            "meta": state.meta,
            "tensors": entries,
        }
    )
    header = MAGIC + struct.pack("<Q", len(manifest)) + manifest
    return [memoryview(header), *views]


def serialize_bytes(state: TrainingState) -> bytes:
    """The canonical serialisation joined into one ``bytes`` (for blobs; hashing never needs this)."""
    return b"".join(serialize(state))


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a state's manifest, validated: its bytes are ``body[offset : offset + nbytes]``."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int


@dataclass(frozen=True)
class StateLayout:
    """The validated manifest of a canonical state serialisation: where every tensor's bytes are."""

    step: int
    meta: dict[str, Any]
    tensors: tuple[TensorEntry, ...]
    #: Bytes before the first tensor byte (12-byte header + manifest).
    header_size: int
    body_size: int


#: Bytes per element of each dtype name the format knows.
ITEMSIZE: dict[str, int] = {name: torch.empty((), dtype=dt).element_size() for name, dt in _BY_NAME.items()}
HEADER_SIZE = 12
#: Largest manifest accepted (a state of 100 000 tensors has a manifest of ~10 MB).
MAX_MANIFEST_BYTES = 16 << 20
#: Longest tensor name and most dimensions a manifest entry may have.
MAX_NAME_LENGTH = 512
MAX_NDIM = 16


def manifest_length(first12: bytes, total: int) -> int:
    """The manifest length from the 12-byte header of a ``total``-byte serialisation (:class:`StateFormatError`
    if the header is not ``b"VTS1" ‖ u64`` or the manifest would run past the end)."""
    if total < HEADER_SIZE or first12[:4] != MAGIC:
        raise StateFormatError("not a veritrain state: missing the b'VTS1' header")
    (mlen,) = struct.unpack("<Q", first12[4:HEADER_SIZE])
    if HEADER_SIZE + mlen > total:
        raise StateFormatError(f"manifest length {mlen} runs past the end of the data ({total} bytes)")
    if mlen > MAX_MANIFEST_BYTES:
        raise StateFormatError(f"manifest length {mlen} is over the {MAX_MANIFEST_BYTES}-byte limit")
    return mlen


#: Deepest JSON nesting a manifest may have (the engine writes 3 levels).
MAX_JSON_DEPTH = 32
_ESCAPE = re.compile(rb"\\.", re.S)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(raw: bytes) -> int:
    """The deepest nesting of JSON arrays/objects in ``raw``, without parsing it (strings skipped): checked
    before ``json.loads``, whose C decoder recurses once per level and can overflow the C stack of a process
    that raised its recursion limit."""
    brackets = _STRING.sub(b"", _ESCAPE.sub(b"", raw)).translate(None, _NOT_BRACKET)
    if not brackets:
        return 0
    steps = np.frombuffer(brackets, dtype=np.uint8)
    depth = np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1), dtype=np.int64)
    return int(depth.max())


def _is_int(v: Any) -> TypeGuard[int]:
    return type(v) is int  # JSON true/false are Python bools, a subclass of int: not sizes


def parse_manifest(raw: bytes, body_size: int) -> StateLayout:
    """Validates manifest bytes against a tensor section of ``body_size`` bytes: canonical JSON, known format
    and version, integer step, object meta, tensors in strictly ascending name order with known dtypes,
    shapes of non-negative integers, contiguous offsets from 0, ``nbytes`` matching shape and dtype, no
    trailing bytes. The one check of untrusted state bytes; raises :class:`StateFormatError`."""
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise StateFormatError(f"manifest nests JSON too deeply (more than {MAX_JSON_DEPTH} levels)")
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise StateFormatError(f"manifest is not JSON: {exc}") from None
    except RecursionError:
        raise StateFormatError("manifest nests JSON too deeply") from None
    if not isinstance(manifest, dict):
        raise StateFormatError("manifest is not a JSON object")
    try:
        canonical = canonical_json(manifest)
    except (ValueError, RecursionError) as exc:
        raise StateFormatError(f"manifest is not canonical JSON: {type(exc).__name__}") from None
    if canonical != raw:
        raise StateFormatError("manifest is not canonical JSON (sorted keys, no spaces)")
    version = manifest.get("version")  # an integer: JSON true equals 1 in Python but is other bytes
    if manifest.get("format") != "veritrain-state" or not _is_int(version) or version != FORMAT_VERSION:
        raise StateFormatError(f"unsupported state format {manifest.get('format')!r} v{manifest.get('version')!r}")
    step, meta, entries = manifest.get("step"), manifest.get("meta"), manifest.get("tensors")
    if not _is_int(step) or step < 0 or not isinstance(meta, dict):
        raise StateFormatError("manifest needs a non-negative integer 'step' and an object 'meta'")
    if not isinstance(entries, list):
        raise StateFormatError("manifest 'tensors' is not a list")
    offset = 0
    prev: str | None = None
    out: list[TensorEntry] = []
    for e in entries:
        if not isinstance(e, dict):
            raise StateFormatError("a manifest tensor entry is not an object")
        name, dtype, shape = e.get("name"), e.get("dtype"), e.get("shape")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
            raise StateFormatError(f"tensor name {str(name)[:80]!r} is not a string of 1..{MAX_NAME_LENGTH} characters")
        if prev is not None and name <= prev:
            raise StateFormatError("tensors are not in strictly ascending name order")
        prev = name
        if not isinstance(dtype, str) or dtype not in ITEMSIZE:
            raise StateFormatError(f"tensor {name!r}: unknown dtype {str(dtype)[:40]!r}")
        if not isinstance(shape, list) or len(shape) > MAX_NDIM or not all(_is_int(d) and d >= 0 for d in shape):
            raise StateFormatError(
                f"tensor {name!r}: shape {str(shape)[:80]} is not a list of at most {MAX_NDIM} non-negative integers"
            )
        count = 1
        for d in shape:
            count *= d
        nbytes = count * ITEMSIZE[dtype]
        if not _is_int(e.get("offset")) or e.get("offset") != offset or e.get("nbytes") != nbytes:
            raise StateFormatError(
                f"tensor {name!r}: offset/size {str(e.get('offset'))[:24]}/{str(e.get('nbytes'))[:24]} inconsistent"
            )
        if offset + nbytes > body_size:
            raise StateFormatError(
                f"tensor {name!r} is truncated: the data ends {offset + nbytes - body_size} bytes early"
            )
        out.append(TensorEntry(name, dtype, tuple(shape), offset, nbytes))
        offset += nbytes
    if offset != body_size:
        raise StateFormatError(f"{body_size - offset} trailing bytes after the last tensor")
    return StateLayout(step, meta, tuple(out), HEADER_SIZE + len(raw), body_size)


def read_layout(data: bytes | bytearray | memoryview) -> StateLayout:
    """:func:`parse_manifest` of a whole serialisation held in memory (no tensor byte is copied)."""
    with memoryview(data) as outer, outer.cast("B") as mv:
        total = len(mv)
        mlen = manifest_length(bytes(mv[:HEADER_SIZE]), total)
        raw = bytes(mv[HEADER_SIZE : HEADER_SIZE + mlen])
    return parse_manifest(raw, total - HEADER_SIZE - mlen)


def read_file_layout(fh: BinaryIO, size: int) -> StateLayout:
    """:func:`parse_manifest` of the ``size``-byte serialisation in the open binary file ``fh``, reading only its
    header and manifest (the tensor bytes are not read, so nothing is hashed: the caller knows the file is the
    blob it names, e.g. a verified blob store's)."""
    fh.seek(0)
    mlen = manifest_length(fh.read(HEADER_SIZE), size)
    raw = fh.read(mlen)
    if len(raw) != mlen:
        raise StateFormatError("the file ended inside the manifest")
    return parse_manifest(raw, size - HEADER_SIZE - mlen)


def deserialize(data: bytes | bytearray | memoryview, expected_root: bytes | None = None) -> TrainingState:
    """Parse a canonical serialisation back into tensors (copies, so they do not alias ``data``).

    Raises StateFormatError for malformed bytes and StateRootMismatch if ``expected_root`` is given and differs.
    """
    mv = memoryview(data).cast("B")
    if expected_root is not None:
        got = chunked_root([mv])
        if got != expected_root:
            raise StateRootMismatch(f"state bytes hash to 0x{got.hex()}, expected 0x{expected_root.hex()}")
    layout = read_layout(mv)
    body = mv[layout.header_size :]
    tensors: dict[str, torch.Tensor] = {}
    for e in layout.tensors:
        dtype = _BY_NAME[e.dtype]
        carrier = _NUMPY_CARRIER.get(dtype, dtype)
        chunk = body[e.offset : e.offset + e.nbytes]
        t = torch.frombuffer(bytearray(chunk), dtype=carrier) if e.nbytes else torch.empty(0, dtype=carrier)
        if sys.byteorder != "little" and ITEMSIZE[e.dtype] > 1:
            t = torch.from_numpy(t.numpy().byteswap())
        if carrier is not dtype:
            t = t.view(dtype)
        tensors[e.name] = t.reshape(e.shape)
    return TrainingState(tensors=tensors, step=layout.step, meta=layout.meta)


# --------------------------------------------------------------------------- hashing


class _Chunks:
    """Random access to 4096-byte chunks of a virtual concatenation of buffers."""

    def __init__(self, buffers: Iterable[memoryview | bytes | bytearray]):
        self.buffers = [memoryview(b).cast("B") for b in buffers]
        self.starts = []
        pos = 0
        for b in self.buffers:
            self.starts.append(pos)
            pos += b.nbytes
        self.size = pos
        self.count = max(1, -(-pos // CHUNK_SIZE)) if pos else 0

    def buffer_at(self, pos: int) -> int:
        """Index of the buffer holding byte ``pos`` (skipping empty buffers)."""
        return max(0, bisect.bisect_right(self.starts, pos) - 1)

    def read(self, a: int, b: int) -> bytes | memoryview:
        """Bytes [a, b) of the concatenation: a slice when one buffer holds them, else an assembled copy."""
        bi = self.buffer_at(a)
        s = a - self.starts[bi]
        if s + (b - a) <= self.buffers[bi].nbytes:
            return self.buffers[bi][s : s + (b - a)]
        out = bytearray()
        while len(out) < b - a:
            out += self.buffers[bi][s : s + (b - a - len(out))]
            bi += 1
            s = 0
        return bytes(out)


def _perfect_root(chunks: _Chunks, lo: int, hi: int) -> bytes:
    """RFC 9162 root of chunks [lo, hi); the range is a perfect subtree or the final partial block."""
    copy = merkle.leaf_hasher().copy
    level: list[bytes] = []
    append = level.append
    pos = lo * CHUNK_SIZE
    end = min(hi * CHUNK_SIZE, chunks.size)
    while pos < end:
        bi = chunks.buffer_at(pos)
        buf = chunks.buffers[bi]
        start = chunks.starts[bi]
        buf_end = start + buf.nbytes
        # Whole chunks inside this buffer: hash slices of it directly (the hot loop).
        stop = pos + (min(end, buf_end) - pos) // CHUNK_SIZE * CHUNK_SIZE
        for off in range(pos - start, stop - start, CHUNK_SIZE):
            h = copy()
            h.update(buf[off : off + CHUNK_SIZE])
            append(h.digest())
        pos = stop
        if pos < end:  # a short last chunk, or one that straddles buffers: assemble it
            chunk_end = min(pos + CHUNK_SIZE, end)
            h = copy()
            h.update(chunks.read(pos, chunk_end))
            append(h.digest())
            pos = chunk_end
    return merkle.rfc9162_root(level)


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        workers = int(os.environ.get("VERITRAIN_HASH_THREADS", "0")) or max(1, os.cpu_count() or 1)
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="state-root")
    return _POOL


def chunked_root(buffers: Iterable[memoryview | bytes | bytearray], threads: bool = True) -> bytes:
    """RFC 9162 root over the 4096-byte chunks of the concatenation of ``buffers`` (32 raw bytes).

    Blocks of BLOCK_CHUNKS chunks are hashed in parallel; their roots combine with the same largest-power-of-two
    rule (every split point above the block size is a multiple of it, so blocks are never cut).
    """
    chunks = _Chunks(buffers)
    n = chunks.count
    if n == 0:
        return merkle.EMPTY_ROOT
    ranges = [(lo, min(lo + BLOCK_CHUNKS, n)) for lo in range(0, n, BLOCK_CHUNKS)]
    if threads and len(ranges) > 1:
        roots = list(_pool().map(lambda r: _perfect_root(chunks, *r), ranges))
    else:
        roots = [_perfect_root(chunks, lo, hi) for lo, hi in ranges]
    return merkle.rfc9162_root(roots)


class StateRootHasher:
    """Incremental ``state_root``: feed bytes in any pieces, get the same root as :func:`chunked_root` over
    their concatenation. Memory is one 4 KiB chunk plus one hash per level (a stack of perfect subtrees)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._stack: list[tuple[int, bytes]] = []  # (leaf count, subtree root), counts strictly decreasing
        self.size = 0

    def _push(self, h: bytes) -> None:
        count = 1
        stack = self._stack
        while stack and stack[-1][0] == count:
            _, left = stack.pop()
            h = merkle.node_hash(left, h)
            count *= 2
        stack.append((count, h))

    def update(self, data: bytes | bytearray | memoryview) -> None:
        mv = memoryview(data).cast("B")
        self.size += len(mv)
        if self._buf:
            take = CHUNK_SIZE - len(self._buf)
            self._buf += mv[:take]
            mv = mv[take:]
            if len(self._buf) < CHUNK_SIZE:
                return
            self._push(merkle.leaf_hash(self._buf))
            self._buf.clear()
        prefix = merkle.leaf_hasher()
        full = len(mv) - len(mv) % CHUNK_SIZE
        for off in range(0, full, CHUNK_SIZE):
            h = prefix.copy()
            h.update(mv[off : off + CHUNK_SIZE])
            self._push(h.digest())
        self._buf += mv[full:]

    def digest(self) -> bytes:
        """The root so far (32 raw bytes); the hasher can keep being fed afterwards."""
        if self.size == 0:
            return merkle.EMPTY_ROOT
        stack = list(self._stack)
        if self._buf:
            stack.append((0, merkle.leaf_hash(self._buf)))  # count is irrelevant for the fold below
        root = stack[-1][1]
        for _, left in reversed(stack[:-1]):
            root = merkle.node_hash(left, root)
        return root

    def hexdigest(self) -> str:
        return self.digest().hex()


def state_root(state: TrainingState, threads: bool = True) -> bytes:
    """The state root (32 raw bytes) of ``state``'s canonical serialisation."""
    return chunked_root(serialize(state), threads=threads)


def state_root_hex(state: TrainingState) -> str:
    return "0x" + state_root(state).hex()


__all__ = [
    "CHUNK_SIZE",
    "StateFormatError",
    "StateLayout",
    "TensorEntry",
    "StateRootHasher",
    "StateRootMismatch",
    "TrainingState",
    "canonical_json",
    "chunked_root",
    "deserialize",
    "manifest_length",
    "parse_manifest",
    "read_file_layout",
    "read_layout",
    "serialize",
    "serialize_bytes",
    "state_root",
    "state_root_hex",
]
