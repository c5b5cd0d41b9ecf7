"""Content-addressed blob store (DESIGN §9): a local directory, an HTTP client and a mirror reader.

Addresses
---------
An address is 32 bytes, written ``0x`` + 64 lowercase hex digits. There are two *kinds* of address:

``sha256``  the SHA-256 digest of the blob's bytes (job specs, datasets, leaf lists, anything);
``state``   the blob's ``state_root`` (DESIGN §3: RFC 9162 root over 4096-byte chunks, computed by
            :func:`protocol.state.chunked_root`). Checkpoints are stored this way so that the root the solver
            commits on-chain *is* the address verifiers fetch. A ``state`` blob must also be a well-formed
            canonical state serialisation (header, canonical manifest, tensor sizes adding up).

Every read is verified against its address with the function of its kind; bytes that do not match are never
returned (:class:`~protocol.errors.BlobCorrupt`).

On-disk layout of :class:`LocalBlobStore`
-----------------------------------------
::

    <root>/sha256/<64 hex>          a blob whose SHA-256 is <64 hex>
    <root>/state/<64 hex>           a checkpoint whose state root is <64 hex>
    <root>/<kind>/.tmp-*.part       a write in progress (or left by a crash; see ``sweep_temp``)

The directory a blob is in records its kind, so no sidecar is needed. A write goes to a temporary file in the
same directory as its final name, is hashed while it is written, fsynced, checked against the expected address
(when given), and only then renamed over the final name (``os.replace``) and the directory fsynced. A failed or
interrupted write removes its temporary file; a ``kill -9`` can leave one behind, which readers ignore (names
starting with ``.``) and :meth:`LocalBlobStore.sweep_temp` removes. Puts are idempotent: writing the same bytes
again replaces the file with identical content (and so also heals a copy that rotted on disk).

The HTTP server lives in :mod:`protocol.blobserver`; :class:`HttpBlobClient` talks to it and
:class:`MirroredBlobReader` tries several sources (the local store, then mirrors) and returns the first copy that
verifies, as verifiers must (DESIGN §9: a solver that withholds from one verifier is caught by the mirror).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

import httpx

from protocol.budget import FetchBudget
from protocol.errors import (
    BadAddress,
    BlobCorrupt,
    BlobError,
    BlobNotFound,
    BlobTimeout,
    BlobTooLarge,
    BlobUnavailable,
    BudgetExhausted,
)
from protocol.state import (
    StateFormatError,
    StateLayout,
    StateRootHasher,
    read_file_layout,
    read_layout,
)
from protocol.state import chunked_root as _chunked_root

DEFAULT_MAX_BLOB_BYTES = 1 << 30
#: Read/stream granularity (bounded memory for hashing and serving).
IO_CHUNK = 1 << 20

_TMP_PREFIX = ".tmp-"
_TMP_SUFFIX = ".part"

T = TypeVar("T")


class BlobKind(StrEnum):
    """How an address is computed from the bytes."""

    SHA256 = "sha256"
    STATE = "state"


SHA256 = BlobKind.SHA256
STATE = BlobKind.STATE

Buffer = bytes | bytearray | memoryview
AddressLike = str | bytes | bytearray


# --------------------------------------------------------------------------- addresses and hashing


def parse_address(address: AddressLike) -> str:
    """Normalises an address to ``0x`` + 64 lowercase hex; accepts that form (``0x`` optional, any case) or
    32 raw bytes. Raises :class:`BadAddress` for anything else."""
    if isinstance(address, bytes | bytearray):
        if len(address) != 32:
            raise BadAddress(f"a blob address is 32 bytes, got {len(address)} bytes")
        return "0x" + bytes(address).hex()
    if not isinstance(address, str):
        raise BadAddress(f"a blob address is a hex string or 32 bytes, got {type(address).__name__}")
    text = address[2:] if address[:2] in ("0x", "0X") else address
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        shown = address if len(address) <= 80 else address[:77] + "..."
        raise BadAddress(f"malformed blob address {shown!r}: expected 0x followed by 64 hex digits")
    return "0x" + text.lower()


def parse_kind(kind: BlobKind | str) -> BlobKind:
    """``"sha256"`` or ``"state"`` as a :class:`BlobKind`; :class:`BadAddress` for anything else."""
    try:
        return BlobKind(kind)
    except ValueError:
        raise BadAddress(f"unknown blob kind {kind!r}: use 'sha256' or 'state'") from None


def _buffers(data: Buffer | Iterable[Buffer]) -> list[memoryview]:
    if isinstance(data, bytes | bytearray | memoryview):
        return [memoryview(data).cast("B")]
    return [memoryview(b).cast("B") for b in data]


def sha256_address(data: Buffer | Iterable[Buffer]) -> str:
    """The ``sha256`` address of ``data`` (a buffer or several, concatenated)."""
    h = hashlib.sha256()
    for b in _buffers(data):
        h.update(b)
    return "0x" + h.hexdigest()


def state_address(data: Buffer | Iterable[Buffer]) -> str:
    """The ``state`` address (state root) of ``data`` (a buffer or several, e.g. ``state.serialize(s)``)."""
    return "0x" + _chunked_root(_buffers(data)).hex()


def address_of(data: Buffer | Iterable[Buffer], kind: BlobKind | str) -> str:
    return sha256_address(data) if parse_kind(kind) is SHA256 else state_address(data)


class _Sha256Hasher:
    """hashlib's sha256 with the same face as :class:`StateRootHasher`."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.size = 0

    def update(self, data: Buffer) -> None:
        self._h.update(data)
        self.size += memoryview(data).nbytes

    def digest(self) -> bytes:
        return self._h.digest()


def _hasher(kind: BlobKind) -> _Sha256Hasher | StateRootHasher:
    return _Sha256Hasher() if kind is SHA256 else StateRootHasher()


def _file_address(fh: BinaryIO, kind: BlobKind) -> tuple[str, int]:
    """Address and size of an open file's whole content, with bounded memory (sha256: 1 MiB reads; state:
    mmap, hashed in parallel by :func:`chunked_root`)."""
    fh.seek(0)
    size = os.fstat(fh.fileno()).st_size
    if kind is SHA256:
        h = hashlib.sha256()
        seen = 0
        while chunk := fh.read(IO_CHUNK):
            h.update(chunk)
            seen += len(chunk)
        return "0x" + h.hexdigest(), seen
    if size == 0:
        return "0x" + _chunked_root([b""]).hex(), 0
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        mv = memoryview(mm)
        try:
            root = _chunked_root([mv])
        finally:
            mv.release()
    return "0x" + root.hex(), size


def check_state_layout(data: Buffer) -> None:
    """Structural check of a canonical state serialisation held in memory (:func:`protocol.state.read_layout`,
    without copying any tensor bytes). Raises :class:`StateFormatError`."""
    read_layout(data)


def _check_state_file(fh: BinaryIO, size: int) -> None:
    """:func:`check_state_layout` for an open file of ``size`` bytes, reading only its header and manifest."""
    read_file_layout(fh, size)


# --------------------------------------------------------------------------- local store


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: address (``0x`` hex), size in bytes, kind."""

    address: str
    size: int
    kind: BlobKind

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "size": self.size, "kind": str(self.kind)}


class BlobWriter:
    """One atomic write into a :class:`LocalBlobStore` (use :meth:`LocalBlobStore.writer`).

    Bytes go to a temporary file in the blob's final directory while they are hashed; :meth:`commit` fsyncs it,
    checks it (state layout; ``expected`` address) and renames it to its final name. :meth:`abort` (or leaving the
    ``with`` block without committing, e.g. on an exception) removes the temporary file.
    """

    def __init__(
        self,
        store: LocalBlobStore,
        kind: BlobKind,
        expected: str | None,
        size_hint: int | None,
        max_bytes: int | None = None,
    ):
        self.store = store
        self.kind = kind
        self.expected = expected
        self.limit = store.max_blob_bytes if max_bytes is None else min(max_bytes, store.max_blob_bytes)
        if size_hint is not None and size_hint > self.limit:
            raise BlobTooLarge(f"blob of {size_hint} bytes is over the {self.limit}-byte limit")
        directory = store.root / kind.value
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=directory)
        self.tmp_path = Path(tmp)
        self._fh: BinaryIO | None = os.fdopen(fd, "r+b")
        self._sha = hashlib.sha256() if kind is SHA256 else None
        self.size = 0
        self.done = False

    def write(self, data: Buffer) -> None:
        if self._fh is None:
            raise BlobError("write on a closed blob writer")
        n = memoryview(data).nbytes
        if self.size + n > self.limit:
            self.abort()
            raise BlobTooLarge(f"blob is over the {self.limit}-byte limit (refused at byte {self.size + n})")
        try:
            self._fh.write(data)
        except BaseException:
            self.abort()
            raise
        if self._sha is not None:
            self._sha.update(data)
        self.size += n

    def commit(self) -> BlobInfo:
        """Verifies and publishes the blob; returns its info. Raises :class:`BlobCorrupt` if the bytes do not
        hash to ``expected`` and :class:`StateFormatError` for a malformed state (the temp file is removed)."""
        fh = self._fh
        if fh is None:
            raise BlobError("commit on a closed blob writer")
        try:
            fh.flush()
            os.fsync(fh.fileno())
            if self._sha is not None:
                address = "0x" + self._sha.hexdigest()
            else:
                _check_state_file(fh, self.size)
                address, _ = _file_address(fh, self.kind)
            if self.expected is not None and address != self.expected:
                raise BlobCorrupt(
                    f"{self.kind.value} blob of {self.size} bytes hashes to {address}, not the expected {self.expected}"
                )
            os.fchmod(fh.fileno(), 0o644)
            fh.close()
            self._fh = None
            final = self.store.path(address, self.kind)
            os.replace(self.tmp_path, final)
            self.done = True
        except BaseException:
            self.abort()
            raise
        _fsync_dir(final.parent)
        return BlobInfo(address, self.size, self.kind)

    def abort(self) -> None:
        """Drops the write; idempotent."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        if not self.done:
            self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


class VerifiedBlob:
    """An open stored blob (from :meth:`LocalBlobStore.open`). Unless opened with ``preverify=False`` its whole
    content was verified against the address before this object was returned; :meth:`iter_bytes` hashes again
    while streaming and raises :class:`BlobCorrupt` at the end if the file changed underneath."""

    def __init__(self, fh: BinaryIO, info: BlobInfo, path: Path):
        self._fh: BinaryIO | None = fh
        self.info = info
        self.path = path

    @property
    def address(self) -> str:
        return self.info.address

    @property
    def size(self) -> int:
        return self.info.size

    @property
    def kind(self) -> BlobKind:
        return self.info.kind

    def iter_bytes(self, chunk_size: int = IO_CHUNK) -> Iterator[bytes]:
        fh = self._fh
        if fh is None:
            raise BlobError("iter_bytes on a closed blob")
        fh.seek(0)
        hasher = _hasher(self.kind)
        while chunk := fh.read(chunk_size):
            hasher.update(chunk)
            yield chunk
        got = "0x" + hasher.digest().hex()
        if got != self.address or hasher.size != self.size:
            raise BlobCorrupt(f"blob {self.address} changed on disk while it was read ({self.path})")

    def read(self) -> bytes:
        return b"".join(self.iter_bytes())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> VerifiedBlob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalBlobStore:
    """Blobs in a local directory (layout in the module docstring). Thread- and process-safe for concurrent
    puts and reads: files under final names are only ever created whole, by rename."""

    def __init__(self, root: str | os.PathLike[str], max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES):
        self.root = Path(root)
        self.max_blob_bytes = int(max_blob_bytes)
        for kind in BlobKind:
            (self.root / kind.value).mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    # -- paths
    def path(self, address: AddressLike, kind: BlobKind | str) -> Path:
        """Where a blob of this address and kind lives (whether or not it exists)."""
        return self.root / parse_kind(kind).value / parse_address(address)[2:]

    def _locate(self, address: AddressLike, kind: BlobKind | str | None) -> tuple[str, BlobKind, Path]:
        addr = parse_address(address)
        kinds = list(BlobKind) if kind is None else [parse_kind(kind)]
        for k in kinds:
            p = self.root / k.value / addr[2:]
            if p.is_file():
                return addr, k, p
        what = "blob" if kind is None else f"{kinds[0].value} blob"
        raise BlobNotFound(f"no {what} {addr} in {self.root}")

    # -- writes
    def writer(
        self,
        kind: BlobKind | str = SHA256,
        expected: AddressLike | None = None,
        size_hint: int | None = None,
        max_bytes: int | None = None,
    ) -> BlobWriter:
        """A streaming atomic write (see :class:`BlobWriter`); ``size_hint`` over the limit fails before any file
        is created. ``max_bytes`` lowers the store's limit for this write."""
        exp = None if expected is None else parse_address(expected)
        return BlobWriter(self, parse_kind(kind), exp, size_hint, max_bytes)

    def write(
        self,
        source: Buffer | Iterable[Buffer] | BinaryIO,
        kind: BlobKind | str = SHA256,
        expected: AddressLike | None = None,
    ) -> BlobInfo:
        """Stores ``source`` (a buffer, an iterable of buffers, or a binary file object) atomically.

        Raises :class:`BlobTooLarge` (for a buffer: before writing anything), :class:`BlobCorrupt` if
        ``expected`` is given and does not match, :class:`StateFormatError` for a malformed ``state`` blob; any
        exception from ``source`` propagates. Nothing is left behind when it fails.
        """
        if isinstance(source, bytes | bytearray | memoryview):
            view = memoryview(source).cast("B")
            with self.writer(kind, expected, size_hint=view.nbytes) as w:
                w.write(view)
                return w.commit()
        with self.writer(kind, expected) as w:
            if hasattr(source, "read"):
                reader: Callable[[int], bytes] = source.read
                while chunk := reader(IO_CHUNK):
                    w.write(chunk)
            else:
                for chunk in source:
                    w.write(chunk)
            return w.commit()

    def put(self, data: Buffer | Iterable[Buffer] | BinaryIO, expected: AddressLike | None = None) -> str:
        """Stores ``data`` under its SHA-256; returns the address."""
        return self.write(data, SHA256, expected).address

    def put_state(self, data: Buffer | Iterable[Buffer] | BinaryIO, expected: AddressLike | None = None) -> str:
        """Stores a canonical state serialisation (bytes, or ``state.serialize(s)``'s buffers) under its state
        root, which is recomputed here; returns the address."""
        return self.write(data, STATE, expected).address

    def put_file(self, path: str | os.PathLike[str], kind: BlobKind | str = SHA256) -> BlobInfo:
        with open(path, "rb") as fh:
            return self.write(fh, kind)

    # -- reads
    def has(self, address: AddressLike, kind: BlobKind | str | None = None) -> bool:
        """Whether a blob is stored under ``address`` (no verification; :meth:`verify` checks it)."""
        try:
            self._locate(address, kind)
        except BlobNotFound:
            return False
        return True

    def kind_of(self, address: AddressLike) -> BlobKind:
        return self._locate(address, None)[1]

    def info(self, address: AddressLike, kind: BlobKind | str | None = None) -> BlobInfo:
        """Address, size and kind from the file system (no verification)."""
        addr, k, p = self._locate(address, kind)
        try:
            return BlobInfo(addr, p.stat().st_size, k)
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {addr} in {self.root}") from None

    def state_layout(self, address: AddressLike) -> StateLayout:
        """The validated manifest of a stored state blob, from its header alone (not re-hashed: every write is
        verified). Raises BlobNotFound, StateFormatError."""
        addr, _, p = self._locate(address, BlobKind.STATE)
        try:
            with p.open("rb") as fh:
                return read_file_layout(fh, p.stat().st_size)
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {addr} in {self.root}") from None

    def get(
        self, address: AddressLike, kind: BlobKind | str | None = None, *, budget: FetchBudget | None = None
    ) -> bytes:
        """The blob's bytes, verified against the address. ``kind=None`` finds whichever kind is stored. With
        ``budget`` a stored copy over its byte cap is :class:`BlobTooLarge` (local reads have no deadline)."""
        addr, k, p = self._locate(address, kind)
        try:
            if budget is not None and p.stat().st_size > budget.max_bytes:
                raise BlobTooLarge(f"stored {addr} is {p.stat().st_size} bytes, over the {budget.max_bytes} it may be")
            data = p.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {addr} in {self.root}") from None
        got = address_of(data, k)
        if got != addr:
            raise BlobCorrupt(
                f"stored {k.value} blob {addr} is corrupt: its {len(data)} bytes hash to {got} ({p}); "
                "fetch it again from a mirror"
            )
        return data

    def open(self, address: AddressLike, kind: BlobKind | str | None = None, *, preverify: bool = True) -> VerifiedBlob:
        """Opens a blob for streaming. With ``preverify`` (the default) the whole file is hashed first, in
        bounded memory, and :class:`BlobCorrupt` is raised before any byte is handed out."""
        addr, k, p = self._locate(address, kind)
        try:
            fh = open(p, "rb")  # handed to VerifiedBlob, which closes it
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {addr} in {self.root}") from None
        try:
            size = os.fstat(fh.fileno()).st_size
            if preverify:
                got, _ = _file_address(fh, k)
                if got != addr:
                    raise BlobCorrupt(
                        f"stored {k.value} blob {addr} is corrupt: its {size} bytes hash to {got} ({p}); "
                        "fetch it again from a mirror"
                    )
        except BaseException:
            fh.close()
            raise
        return VerifiedBlob(fh, BlobInfo(addr, size, k), p)

    def verify(self, address: AddressLike, kind: BlobKind | str | None = None) -> BlobInfo:
        """Hashes the stored file (bounded memory); returns its info or raises :class:`BlobCorrupt`."""
        with self.open(address, kind) as blob:
            return blob.info

    def fetch_into(
        self,
        store: LocalBlobStore,
        address: AddressLike,
        kind: BlobKind | str | None = None,
        *,
        budget: FetchBudget | None = None,
    ) -> BlobInfo:
        """Copies a blob into another store, verified on both sides, streaming (into itself: just verifies)."""
        del budget  # local copies have no deadline
        if store.root.resolve() == self.root.resolve():
            return self.verify(address, kind)
        with self.open(address, kind, preverify=False) as blob:
            return store.write(blob.iter_bytes(), blob.kind, expected=blob.address)

    def iter_blobs(self, kind: BlobKind | str | None = None) -> Iterator[BlobInfo]:
        """Every stored blob (no verification), temp files skipped."""
        kinds = list(BlobKind) if kind is None else [parse_kind(kind)]
        for k in kinds:
            for p in sorted((self.root / k.value).iterdir()):
                if p.name.startswith(".") or not p.is_file():
                    continue
                try:
                    addr = parse_address(p.name)
                except BadAddress:
                    continue
                yield BlobInfo(addr, p.stat().st_size, k)

    # -- maintenance
    def delete(self, address: AddressLike, kind: BlobKind | str | None = None) -> bool:
        """Removes the blob (of every kind when ``kind`` is None); returns whether anything was removed."""
        addr = parse_address(address)
        kinds = list(BlobKind) if kind is None else [parse_kind(kind)]
        removed = False
        for k in kinds:
            try:
                (self.root / k.value / addr[2:]).unlink()
                removed = True
            except FileNotFoundError:
                pass
        return removed

    def sweep_temp(self, max_age_s: float = 3600.0) -> int:
        """Removes temporary files older than ``max_age_s`` (left by a crashed writer); returns how many."""
        now = time.time()
        n = 0
        for k in BlobKind:
            for p in (self.root / k.value).glob(f"{_TMP_PREFIX}*{_TMP_SUFFIX}"):
                try:
                    if now - p.stat().st_mtime >= max_age_s:
                        p.unlink()
                        n += 1
                except FileNotFoundError:
                    pass
        return n


# --------------------------------------------------------------------------- HTTP client


class _Retry(Exception):
    """A failure worth another try (connection error, 5xx)."""


def _error_detail(response: httpx.Response) -> tuple[str, str]:
    """(error code, message) from a blob server's JSON error body, best effort."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if isinstance(body, dict):
        detail = body.get("detail", "")
        return str(body.get("error", "")), detail if isinstance(detail, str) else json.dumps(detail)[:300]
    return "", str(body)[:200]


class HttpBlobClient:
    """Client of a blob server (:mod:`protocol.blobserver`). Every downloaded blob is verified against its
    address before it is returned or stored; bytes that do not match raise :class:`BlobCorrupt` and are dropped.

    Connection errors and 5xx answers are retried ``retries`` times with exponential backoff (plus jitter),
    then :class:`BlobUnavailable`. ``http_client`` replaces the underlying :class:`httpx.Client` (tests pass
    FastAPI's ``TestClient``).
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 30.0,
        retries: int = 3,
        *,
        backoff: float = 0.25,
        max_backoff: float = 4.0,
        max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
        http_client: httpx.Client | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_blob_bytes = max_blob_bytes
        self._own = http_client is None
        self.timeout = float(timeout)
        self.http = http_client or httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=True)

    def __repr__(self) -> str:
        return f"HttpBlobClient({self.base_url!r})"

    def _timeout(self, budget: FetchBudget | None) -> httpx.Timeout:
        """The per-request timeout: this client's, cut to what the budget has left."""
        return httpx.Timeout(self.timeout if budget is None else budget.timeout(self.timeout))

    def close(self) -> None:
        if self._own:
            self.http.close()

    def __enter__(self) -> HttpBlobClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _url(self, address: str | None = None) -> str:
        return f"{self.base_url}/blobs" + (f"/{address}" if address else "")

    def _with_retries(self, what: str, attempt: Callable[[], T], budget: FetchBudget | None = None) -> T:
        last: BaseException | None = None
        tries = 0
        for i in range(self.retries + 1):
            if i:
                delay = min(self.max_backoff, self.backoff * 2 ** (i - 1)) * (0.5 + random.random() / 2)
                if budget is not None and budget.remaining() <= delay:
                    break  # no time for another try: give the caller what is left of its deadline
                time.sleep(delay)
            if budget is not None and budget.expired():
                raise BudgetExhausted(f"{what} from {self.base_url}: not tried, no time left before its deadline")
            tries += 1
            started = time.monotonic()
            try:
                return attempt()
            except _Retry as exc:
                last = exc
            except httpx.TimeoutException as exc:
                if budget is not None and budget.late(started):
                    raise BudgetExhausted(
                        f"{what} from {self.base_url}: given less than a fair {budget.fair_s():.1f} s before its "
                        f"deadline ({type(exc).__name__}): the reader was late"
                    ) from exc
                if budget is not None:  # a stalled server under a deadline: not worth another try
                    raise BlobTimeout(f"{what} from {self.base_url} stalled ({type(exc).__name__})") from exc
                last = exc
            except httpx.TransportError as exc:
                last = exc
        raise BlobUnavailable(f"{what} from {self.base_url} failed after {tries} tries: {last}") from last

    def _raise_for(self, response: httpx.Response, addr: str | None, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        response.read()
        code, detail = _error_detail(response)
        where = f"{self.base_url}: {detail or response.reason_phrase}"
        if status == 404:
            raise BlobNotFound(f"{addr} not found on {where}")
        if status == 413:
            raise BlobTooLarge(f"{what} refused as too large by {where}")
        if code == "blob_corrupt":
            raise BlobCorrupt(f"{addr} is corrupt on {where}")
        if code == "address_mismatch":
            raise BlobCorrupt(f"{what}: {where}")
        if code == "invalid_state":
            raise StateFormatError(f"{what}: {where}")
        if code == "bad_address" or status == 422:
            raise BadAddress(f"{what}: {where}")
        if status >= 500 or status == 429:
            raise _Retry(f"HTTP {status} {where}")
        raise BlobUnavailable(f"{what}: HTTP {status} from {where}")

    def _response_kind(self, response: httpx.Response, kind: BlobKind | None, addr: str) -> BlobKind:
        if kind is not None:
            return kind
        header = response.headers.get("x-blob-kind")
        if header is None:
            raise BlobCorrupt(f"{self.base_url} served {addr} without saying its kind (X-Blob-Kind)")
        try:
            return BlobKind(header)
        except ValueError:
            raise BlobCorrupt(f"{self.base_url} served {addr} with unknown kind {header!r}") from None

    def _check_length(self, response: httpx.Response, limit: int, addr: str) -> None:
        length = response.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise BlobTooLarge(f"{addr} on {self.base_url} is {length} bytes, over the {limit}-byte limit")

    def get(
        self, address: AddressLike, kind: BlobKind | str | None = None, *, budget: FetchBudget | None = None
    ) -> bytes:
        """Downloads a blob into memory and verifies it. ``kind=None`` uses the kind the server declares (the
        bytes must still hash to the address under it). With ``budget`` the download also stops at its byte
        cap, deadline or minimum rate (:class:`BlobTooLarge`, :class:`BlobTimeout`)."""
        addr = parse_address(address)
        want = None if kind is None else parse_kind(kind)
        limit = self.max_blob_bytes if budget is None else min(self.max_blob_bytes, budget.max_bytes)

        def attempt() -> bytes:
            params = {} if want is None else {"kind": want.value}
            started = time.monotonic()
            with self.http.stream("GET", self._url(addr), params=params, timeout=self._timeout(budget)) as r:
                self._raise_for(r, addr, f"GET {addr}")
                k = self._response_kind(r, want, addr)
                self._check_length(r, limit, addr)
                parts = []
                hasher = _hasher(k)
                for chunk in r.iter_bytes():
                    hasher.update(chunk)
                    if hasher.size > limit:
                        raise BlobTooLarge(f"{addr} from {self.base_url} runs over {limit} bytes")
                    if budget is not None:
                        budget.check(hasher.size, started, f"GET {addr} from {self.base_url}")
                    parts.append(chunk)
            got = "0x" + hasher.digest().hex()
            if got != addr:
                raise BlobCorrupt(
                    f"{self.base_url} served bytes for {addr} that hash to {got} ({k.value}, {hasher.size} bytes)"
                )
            return b"".join(parts)

        return self._with_retries(f"GET {addr}", attempt, budget)

    def fetch_into(
        self,
        store: LocalBlobStore,
        address: AddressLike,
        kind: BlobKind | str | None = None,
        *,
        budget: FetchBudget | None = None,
    ) -> BlobInfo:
        """Streams a blob into ``store`` (a temp file there, verified, then renamed); memory stays bounded."""
        addr = parse_address(address)
        want = None if kind is None else parse_kind(kind)
        limit = self.max_blob_bytes if budget is None else min(self.max_blob_bytes, budget.max_bytes)

        def attempt() -> BlobInfo:
            params = {} if want is None else {"kind": want.value}
            started = time.monotonic()
            with self.http.stream("GET", self._url(addr), params=params, timeout=self._timeout(budget)) as r:
                self._raise_for(r, addr, f"GET {addr}")
                k = self._response_kind(r, want, addr)
                self._check_length(r, limit, addr)
                length = r.headers.get("content-length")
                hint = int(length) if length is not None and length.isdigit() else None
                with store.writer(k, expected=addr, size_hint=hint) as w:
                    received = 0
                    for chunk in r.iter_bytes():
                        received += len(chunk)
                        if received > limit:
                            raise BlobTooLarge(f"{addr} from {self.base_url} runs over {limit} bytes")
                        if budget is not None:
                            budget.check(received, started, f"GET {addr} from {self.base_url}")
                        w.write(chunk)
                    try:
                        return w.commit()
                    except BlobCorrupt as exc:
                        raise BlobCorrupt(f"{self.base_url} served bad bytes: {exc}") from None

        return self._with_retries(f"GET {addr}", attempt, budget)

    def head(self, address: AddressLike, kind: BlobKind | str | None = None) -> BlobInfo | None:
        """Size and kind the server reports (not verified), or None if it does not have the blob."""
        addr = parse_address(address)
        want = None if kind is None else parse_kind(kind)

        def attempt() -> BlobInfo | None:
            params = {} if want is None else {"kind": want.value}
            r = self.http.head(self._url(addr), params=params)
            if r.status_code == 404:
                return None
            self._raise_for(r, addr, f"HEAD {addr}")
            k = self._response_kind(r, want, addr)
            return BlobInfo(addr, int(r.headers.get("content-length", "0")), k)

        return self._with_retries(f"HEAD {addr}", attempt)

    def has(self, address: AddressLike, kind: BlobKind | str | None = None) -> bool:
        return self.head(address, kind) is not None

    def put(
        self,
        data: Buffer | str | os.PathLike[str],
        kind: BlobKind | str = SHA256,
        expected: AddressLike | None = None,
    ) -> BlobInfo:
        """Uploads bytes (or a file, streamed, given its path). The address is computed here first and the
        server must store the blob under exactly that address, else :class:`BlobCorrupt`."""
        k = parse_kind(kind)
        if isinstance(data, str | os.PathLike):
            path = Path(data)
            with open(path, "rb") as fh:
                addr, size = _file_address(fh, k)
                if k is STATE:
                    _check_state_file(fh, size)

            def body() -> Iterator[bytes]:
                with open(path, "rb") as fh:
                    while chunk := fh.read(IO_CHUNK):
                        yield chunk

            content: Callable[[], Any] = body
        else:
            view = memoryview(data).cast("B")
            size = view.nbytes
            if k is STATE:
                check_state_layout(view)
            addr = address_of(view, k)
            blob = bytes(view)

            def content() -> bytes:
                return blob

        if expected is not None and parse_address(expected) != addr:
            raise BlobCorrupt(f"upload hashes to {addr}, not the expected {parse_address(expected)}")
        if size > self.max_blob_bytes:
            raise BlobTooLarge(f"upload of {size} bytes is over the {self.max_blob_bytes}-byte limit")

        def attempt() -> BlobInfo:
            r = self.http.put(
                self._url(),
                params={"kind": k.value, "expected": addr},
                content=content(),
                headers={"content-length": str(size), "content-type": "application/octet-stream"},
            )
            self._raise_for(r, addr, f"PUT {addr}")
            info = r.json()
            if info.get("address") != addr or info.get("size") != size:
                raise BlobCorrupt(f"{self.base_url} stored the upload as {info}, expected {addr} ({size} bytes)")
            return BlobInfo(addr, size, k)

        return self._with_retries(f"PUT {addr}", attempt)

    def put_state(self, data: Buffer | str | os.PathLike[str], expected: AddressLike | None = None) -> BlobInfo:
        return self.put(data, STATE, expected)


# --------------------------------------------------------------------------- mirrors


class BlobSource(Protocol):
    """What :class:`MirroredBlobReader` needs of a source: a local store or an HTTP client."""

    def get(
        self, address: AddressLike, kind: BlobKind | str | None = None, *, budget: FetchBudget | None = None
    ) -> bytes: ...

    def fetch_into(
        self,
        store: LocalBlobStore,
        address: AddressLike,
        kind: BlobKind | str | None = None,
        *,
        budget: FetchBudget | None = None,
    ) -> BlobInfo: ...


class MirroredBlobReader:
    """Reads a blob from the first of ``sources`` that has a copy which verifies (DESIGN §9: verifiers and
    arbiters read from any mirror). A source that lacks the blob, serves bytes that do not match, or is down is
    skipped; what each one said is kept in the final error's ``attempts``. With ``cache`` (usually the local
    store, also listed first in ``sources``), a blob found elsewhere is stored there too."""

    def __init__(
        self,
        sources: Sequence[BlobSource],
        cache: LocalBlobStore | None = None,
        on_failure: Callable[[BlobSource, BaseException], None] | None = None,
    ):
        if not sources:
            raise ValueError("MirroredBlobReader needs at least one source")
        self.sources = list(sources)
        self.cache = cache
        self.on_failure = on_failure  # told of every source that failed, also when a later one served

    def _fail(self, addr: str, attempts: list[tuple[BlobSource, BaseException]]) -> BlobError:
        lines = "; ".join(f"{src!r}: {type(e).__name__}: {e}" for src, e in attempts)
        if all(isinstance(e, BlobNotFound) for _, e in attempts):
            err: BlobError = BlobNotFound(f"no source has {addr} ({lines})")
        else:
            err = BlobUnavailable(f"no source served a verified copy of {addr} ({lines})")
        err.attempts = attempts  # type: ignore[attr-defined]
        return err

    def _budget_for(self, index: int, budget: FetchBudget | None) -> FetchBudget | None:
        """Source ``index``'s part of ``budget``: an equal share of the time left among the remote sources not
        tried yet (the local cache takes none)."""
        if budget is None or self.sources[index] is self.cache:
            return budget
        left = sum(1 for s in self.sources[index:] if s is not self.cache)
        return budget.share(left)

    def get_with_source(
        self, address: AddressLike, kind: BlobKind | str | None = None, *, budget: FetchBudget | None = None
    ) -> tuple[bytes, BlobSource]:
        """The verified bytes and the source that served them. With ``budget`` every source gets a fair share of
        its time and its full byte cap."""
        addr = parse_address(address)
        want = None if kind is None else parse_kind(kind)
        attempts: list[tuple[BlobSource, BaseException]] = []
        for i, src in enumerate(self.sources):
            try:
                data = src.get(addr, want, budget=self._budget_for(i, budget))
            except (BlobNotFound, BlobCorrupt, BlobUnavailable, BlobTooLarge) as exc:
                attempts.append((src, exc))
                if self.on_failure is not None and src is not self.cache:
                    self.on_failure(src, exc)
                continue
            if self.cache is not None and src is not self.cache:
                k = want
                if k is None:  # the source verified the bytes under the kind it knows; find which one it was
                    k = SHA256 if sha256_address(data) == addr else STATE
                try:
                    self.cache.write(data, k, expected=addr)
                except (OSError, BlobError, StateFormatError):
                    pass  # a full or broken cache, or a malformed state (the caller judges it), must not lose the read
            return data, src
        raise self._fail(addr, attempts)

    def get(
        self, address: AddressLike, kind: BlobKind | str | None = None, *, budget: FetchBudget | None = None
    ) -> bytes:
        return self.get_with_source(address, kind, budget=budget)[0]

    def fetch_into(
        self,
        store: LocalBlobStore,
        address: AddressLike,
        kind: BlobKind | str | None = None,
        *,
        budget: FetchBudget | None = None,
    ) -> BlobInfo:
        """Streams the first verified copy into ``store``."""
        addr = parse_address(address)
        want = None if kind is None else parse_kind(kind)
        attempts: list[tuple[BlobSource, BaseException]] = []
        for i, src in enumerate(self.sources):
            try:
                return src.fetch_into(store, addr, want, budget=self._budget_for(i, budget))
            except (BlobNotFound, BlobCorrupt, BlobUnavailable, BlobTooLarge, StateFormatError) as exc:
                attempts.append((src, exc))
                if self.on_failure is not None and src is not self.cache:
                    self.on_failure(src, exc)
        raise self._fail(addr, attempts)


__all__ = [
    "DEFAULT_MAX_BLOB_BYTES",
    "SHA256",
    "STATE",
    "BadAddress",
    "BlobCorrupt",
    "BlobError",
    "BlobInfo",
    "BlobKind",
    "BlobNotFound",
    "BlobSource",
    "BlobTooLarge",
    "BlobUnavailable",
    "BlobWriter",
    "HttpBlobClient",
    "LocalBlobStore",
    "MirroredBlobReader",
    "StateFormatError",
    "StateRootHasher",
    "VerifiedBlob",
    "address_of",
    "check_state_layout",
    "parse_address",
    "parse_kind",
    "sha256_address",
    "state_address",
]
