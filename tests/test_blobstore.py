"""Blob store (DESIGN §9): local store, HTTP server and client, mirrors.

Each failure is a clear typed error and leaves nothing half-written: corrupt blobs, truncated writes, unknown
addresses, oversized uploads, malformed addresses, tampering servers.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
import uvicorn
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient

from protocol import blobstore
from protocol.blobserver import create_blob_app
from protocol.blobstore import (
    SHA256,
    STATE,
    HttpBlobClient,
    LocalBlobStore,
    MirroredBlobReader,
    StateRootHasher,
    check_state_layout,
    parse_address,
    sha256_address,
    state_address,
)
from protocol.errors import (
    BadAddress,
    BlobCorrupt,
    BlobNotFound,
    BlobTooLarge,
    BlobUnavailable,
    VeritrainError,
)
from protocol.state import (
    StateFormatError,
    TrainingState,
    chunked_root,
    deserialize,
    serialize,
    serialize_bytes,
    state_root,
)

# --------------------------------------------------------------------------- helpers


def make_state(n: int = 1000, seed: int = 0) -> TrainingState:
    g = torch.Generator().manual_seed(seed)
    return TrainingState(
        tensors={
            "w": torch.randn(n, generator=g),
            "b": torch.arange(7, dtype=torch.int64),
            "m": torch.randn(3, 5, generator=g).to(torch.bfloat16),
        },
        step=42,
        meta={"cursor": 3},
    )


def debris(store: LocalBlobStore) -> list[str]:
    """Every file in the store that is not a finished blob (temp files, partials)."""
    out = []
    for kind_dir in store.root.iterdir():
        for p in kind_dir.iterdir():
            if p.name.startswith("."):
                out.append(f"{kind_dir.name}/{p.name}")
    return out


def all_files(store: LocalBlobStore) -> list[str]:
    return sorted(f"{d.name}/{p.name}" for d in store.root.iterdir() for p in d.iterdir())


def flip_byte(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if at is None else at
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "store")


@pytest.fixture(scope="module")
def state_bytes() -> bytes:
    return serialize_bytes(make_state())


@pytest.fixture(scope="module")
def big_state_bytes() -> bytes:
    """~1.2 MiB: more than one 256-chunk parallel block, a short last chunk."""
    return serialize_bytes(make_state(n=310_000, seed=1))


def client_for(app: FastAPI, base: str = "http://blobs.test", **kw) -> HttpBlobClient:
    tc = TestClient(app, base_url=base, raise_server_exceptions=False)
    return HttpBlobClient(base, retries=kw.pop("retries", 1), backoff=0.0, http_client=tc, **kw)


# --------------------------------------------------------------------------- addresses and hashing


def test_addresses_normalise_and_bad_ones_are_typed():
    h = hashlib.sha256(b"x").hexdigest()
    assert parse_address("0x" + h.upper()) == "0x" + h
    assert parse_address(h) == "0x" + h
    assert parse_address(bytes.fromhex(h)) == "0x" + h
    for bad in ["", "0x", "0x123", "0x" + h + "00", "0x" + "g" * 64, "../" + h[:61], b"\x00" * 31, 7]:
        with pytest.raises(BadAddress) as err:
            parse_address(bad)  # type: ignore[arg-type]
        assert isinstance(err.value, ValueError) and isinstance(err.value, VeritrainError)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 5, 256 * 4096, 256 * 4096 + 1, 700 * 4096 + 9])
def test_streaming_state_root_equals_chunked_root(size):
    rng = random.Random(size)
    data = rng.randbytes(size)
    h = StateRootHasher()
    pos = 0
    while pos < size:
        step = rng.choice([1, 100, 4095, 4096, 5000, 70_000])
        h.update(data[pos : pos + step])
        pos += step
    assert h.digest() == chunked_root([data])
    assert h.size == size


def test_state_layout_check_agrees_with_deserialize(state_bytes):
    check_state_layout(state_bytes)
    deserialize(state_bytes)
    mlen = int.from_bytes(state_bytes[4:12], "little")
    bad = [
        b"",
        b"XXXX" + state_bytes[4:],
        state_bytes[:-1],  # truncated tensor
        state_bytes + b"\x00",  # trailing byte
        state_bytes[:4] + (mlen + 10**6).to_bytes(8, "little") + state_bytes[12:],  # manifest past the end
        state_bytes.replace(b'"step":42', b'"step": 4', 1),  # not canonical JSON
    ]
    for blob in bad:
        with pytest.raises(StateFormatError):
            check_state_layout(blob)
        with pytest.raises(StateFormatError):
            deserialize(blob)


# --------------------------------------------------------------------------- local store


def test_sha256_round_trip_idempotent_and_delete(store):
    data = os.urandom(10_000)
    addr = store.put(data)
    assert addr == "0x" + hashlib.sha256(data).hexdigest()
    assert store.get(addr) == data == store.get(addr, "sha256")
    assert store.has(addr) and store.has(addr, SHA256) and not store.has(addr, STATE)
    assert store.put(data) == addr  # idempotent
    assert store.put(iter([data[:3], memoryview(data)[3:]])) == addr  # streamed pieces
    assert all_files(store) == [f"sha256/{addr[2:]}"]
    assert store.info(addr).size == 10_000
    assert [b.address for b in store.iter_blobs()] == [addr]
    with store.open(addr) as blob:
        assert blob.read() == data and blob.kind is SHA256
    assert store.delete(addr) and not store.delete(addr)
    assert not store.has(addr)
    assert store.put(b"") == sha256_address(b"")
    assert store.get(sha256_address(b"")) == b""


def test_state_round_trip_from_bytes_and_buffers(store, state_bytes):
    state = make_state()
    root = "0x" + state_root(state).hex()
    assert store.put_state(state_bytes) == root
    assert store.put_state(serialize(state)) == root  # the solver's zero-copy path
    assert store.kind_of(root) is STATE and not store.has(root, SHA256)
    got = store.get(root, "state")
    assert got == state_bytes == store.get(root)  # kind found on disk when not given
    back = deserialize(got, expected_root=bytes.fromhex(root[2:]))
    assert torch.equal(back.tensors["w"], state.tensors["w"]) and back.step == 42
    assert store.verify(root).size == len(state_bytes)
    assert all_files(store) == [f"state/{root[2:]}"]


def test_big_state_streams_and_verifies(store, big_state_bytes):
    root = store.put_state(big_state_bytes)
    assert root == state_address(big_state_bytes)
    with store.open(root, STATE) as blob:
        assert blob.size == len(big_state_bytes)
        assert b"".join(blob.iter_bytes(chunk_size=77_777)) == big_state_bytes


def test_invalid_state_and_expected_mismatch_store_nothing(store, state_bytes):
    with pytest.raises(StateFormatError):
        store.put_state(b"not a state at all")
    with pytest.raises(StateFormatError):
        store.put_state(state_bytes[:-5])
    with pytest.raises(BlobCorrupt, match="expected"):
        store.put(b"abc", expected=sha256_address(b"abd"))
    with pytest.raises(BlobCorrupt):
        store.put_state(state_bytes, expected=sha256_address(state_bytes))  # right bytes, wrong kind of address
    assert all_files(store) == []


@pytest.mark.parametrize("kind", ["sha256", "state"])
def test_corrupt_blob_on_disk_is_never_returned(store, state_bytes, kind):
    addr = store.write(state_bytes, kind).address
    path = store.path(addr, kind)
    flip_byte(path)
    for read in (
        lambda: store.get(addr),
        lambda: store.get(addr, kind),
        lambda: store.open(addr),
        lambda: store.verify(addr),
    ):
        with pytest.raises(BlobCorrupt, match="corrupt") as err:
            read()
        assert isinstance(err.value, ValueError)
    path.write_bytes(state_bytes[:100])  # truncated on disk
    with pytest.raises(BlobCorrupt):
        store.get(addr)
    store.write(state_bytes, kind)  # re-putting heals the copy
    assert store.get(addr) == state_bytes


def test_file_changed_while_streaming_raises_at_the_end(store):
    data = os.urandom(3 * blobstore.IO_CHUNK)
    addr = store.put(data)
    with store.open(addr) as blob:
        it = blob.iter_bytes()
        next(it)
        flip_byte(blob.path, at=len(data) - 1)
        with pytest.raises(BlobCorrupt, match="changed on disk"):
            list(it)


def test_unknown_address_is_blob_not_found(store):
    addr = sha256_address(b"never stored")
    for call in (store.get, store.open, store.info, store.verify, store.kind_of):
        with pytest.raises(BlobNotFound) as err:
            call(addr)
        assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, VeritrainError)
    assert not store.has(addr)
    with pytest.raises(BadAddress):
        store.get("0xnope")
    with pytest.raises(BadAddress):
        store.get(addr, "md5")


def _failing_after(data: bytes, n: int) -> Iterator[bytes]:
    yield data[:n]
    raise ConnectionResetError("peer went away mid-upload")


@pytest.mark.parametrize("kind", ["sha256", "state"])
def test_truncated_write_leaves_nothing(store, state_bytes, kind):
    with pytest.raises(ConnectionResetError):
        store.write(_failing_after(state_bytes, len(state_bytes) // 2), kind)
    assert all_files(store) == []

    class HalfFile:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, n: int) -> bytes:
            self.calls += 1
            if self.calls > 1:
                raise OSError("disk read error")
            return state_bytes[: len(state_bytes) // 2]

    with pytest.raises(OSError, match="disk read error"):
        store.write(HalfFile(), kind)  # type: ignore[arg-type]
    assert all_files(store) == []
    assert not store.has(state_address(state_bytes)) and not store.has(sha256_address(state_bytes))


def test_crash_during_fsync_or_rename_leaves_nothing(store, monkeypatch):
    def boom(*a):
        raise OSError("simulated crash")

    with monkeypatch.context() as m:
        m.setattr(blobstore.os, "replace", boom)
        with pytest.raises(OSError, match="simulated crash"):
            store.put(b"hello")
    with monkeypatch.context() as m:
        m.setattr(blobstore.os, "fsync", boom)
        with pytest.raises(OSError, match="simulated crash"):
            store.put(b"hello")
    assert all_files(store) == []
    assert store.get(store.put(b"hello")) == b"hello"


def test_kill_9_debris_is_ignored_and_swept(store):
    stale = store.root / "state" / ".tmp-abc.part"
    stale.write_bytes(b"half a checkpoint")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = store.root / "sha256" / ".tmp-def.part"
    fresh.write_bytes(b"someone else's write in progress")
    assert list(store.iter_blobs()) == []
    assert store.sweep_temp(max_age_s=3600) == 1
    assert debris(store) == ["sha256/.tmp-def.part"]


def test_oversized_blob_is_refused_before_writing(tmp_path, monkeypatch):
    store = LocalBlobStore(tmp_path / "s", max_blob_bytes=1000)
    created = []
    real_mkstemp = blobstore.tempfile.mkstemp
    monkeypatch.setattr(blobstore.tempfile, "mkstemp", lambda **kw: created.append(1) or real_mkstemp(**kw))
    with pytest.raises(BlobTooLarge) as err:
        store.put(b"x" * 1001)
    assert isinstance(err.value, ValueError) and created == []  # no file was even opened
    with pytest.raises(BlobTooLarge):
        store.put(iter([b"x" * 600, b"x" * 600]))  # a stream: refused at the crossing, temp removed
    assert all_files(store) == []
    assert store.get(store.put(b"x" * 1000)) == b"x" * 1000


# --------------------------------------------------------------------------- HTTP server (in-process)


@pytest.fixture
def app(store) -> FastAPI:
    return create_blob_app(store, max_upload_bytes=2 << 20)


@pytest.fixture
def http(app) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def test_server_round_trip_both_kinds(http, store, state_bytes):
    data = b"spec bytes"
    r = http.put("/blobs", content=data)
    assert r.status_code == 200
    addr = sha256_address(data)
    assert r.json() == {"address": addr, "size": len(data), "kind": "sha256"}
    r = http.post("/blobs", params={"kind": "state"}, content=state_bytes)
    root = state_address(state_bytes)
    assert r.json() == {"address": root, "size": len(state_bytes), "kind": "state"}
    g = http.get(f"/blobs/{addr}")
    assert g.status_code == 200 and g.content == data and g.headers["x-blob-kind"] == "sha256"
    g = http.get(f"/blobs/{root}", params={"kind": "state"})
    assert g.content == state_bytes and g.headers["content-length"] == str(len(state_bytes))
    h = http.head(f"/blobs/{root}")
    assert h.status_code == 200 and h.headers["content-length"] == str(len(state_bytes))
    assert h.headers["x-blob-kind"] == "state"
    assert http.get(f"/blobs/{root}", params={"kind": "sha256"}).status_code == 404
    r = http.put("/blobs", params={"expected": addr}, content=data)
    assert r.status_code == 200
    assert store.get(addr) == data


def test_server_errors_are_json(http, store, state_bytes):
    unknown = sha256_address(b"nothing")
    r = http.get(f"/blobs/{unknown}")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert http.head(f"/blobs/{unknown}").status_code == 404
    for bad in ["0x123", "zz" * 32, "0x" + "0" * 66]:
        r = http.get(f"/blobs/{bad}")
        assert r.status_code == 400 and r.json()["error"] == "bad_address"
    r = http.put("/blobs", params={"expected": "0xnope"}, content=b"a")
    assert r.status_code == 400 and r.json()["error"] == "bad_address"
    r = http.put("/blobs", params={"kind": "md5"}, content=b"a")
    assert r.status_code == 422 and "detail" in r.json()
    r = http.put("/blobs", params={"kind": "state"}, content=b"definitely not a state")
    assert r.status_code == 400 and r.json()["error"] == "invalid_state"
    r = http.put("/blobs", params={"expected": sha256_address(b"b")}, content=b"a")
    assert r.status_code == 400 and r.json()["error"] == "address_mismatch"
    assert all_files(store) == []


def test_server_refuses_oversized_uploads_while_streaming(http, store):
    big = b"z" * ((2 << 20) + 1)
    r = http.put("/blobs", content=big)
    assert r.status_code == 413 and r.json()["error"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer, cut off at the limit
        for _ in range(5):
            yield b"z" * (1 << 20)

    r = http.put("/blobs", content=chunks())
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    assert all_files(store) == []


def test_server_refuses_to_serve_a_corrupt_blob(http, store, state_bytes):
    root = store.put_state(state_bytes)
    flip_byte(store.path(root, STATE))
    r = http.get(f"/blobs/{root}")
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "blob_corrupt" and "corrupt" in body["detail"]
    assert state_bytes[:100] not in r.content


# --------------------------------------------------------------------------- HTTP client


def test_client_put_get_fetch_into(app, tmp_path, state_bytes, big_state_bytes):
    client = client_for(app)
    info = client.put(b"dataset")
    assert info.address == sha256_address(b"dataset")
    assert client.get(info.address) == b"dataset" == client.get(info.address, "sha256")
    root = client.put_state(state_bytes).address
    assert root == state_address(state_bytes)
    assert client.get(root) == state_bytes  # kind from the server's header
    assert client.head(root).size == len(state_bytes) and client.has(root)
    assert not client.has(sha256_address(b"nope")) and client.head(sha256_address(b"nope")) is None
    p = tmp_path / "ckpt.bin"
    p.write_bytes(big_state_bytes)
    big = client.put(p, "state")
    local = LocalBlobStore(tmp_path / "local")
    assert client.fetch_into(local, big.address, "state") == big
    assert local.get(big.address) == big_state_bytes
    assert debris(local) == []
    with pytest.raises(StateFormatError):
        client.put(b"not a state", "state")
    with pytest.raises(BlobCorrupt):
        client.put(b"a", expected=sha256_address(b"b"))


def test_client_errors(app, store, tmp_path):
    client = client_for(app)
    unknown = sha256_address(b"never")
    with pytest.raises(BlobNotFound):
        client.get(unknown)
    local = LocalBlobStore(tmp_path / "local")
    with pytest.raises(BlobNotFound):
        client.fetch_into(local, unknown)
    with pytest.raises(BadAddress):
        client.get("0x1234")
    small = LocalBlobStore(tmp_path / "small", max_blob_bytes=10)
    addr = client.put(b"more than ten bytes").address
    with pytest.raises(BlobTooLarge):
        client.fetch_into(small, addr)
    assert all_files(local) == [] and all_files(small) == []
    with pytest.raises(BlobTooLarge):
        client.put(b"q" * ((2 << 20) + 1))  # the server's limit
    # a corrupt copy on the server: the client gets BlobCorrupt, not the bytes
    flip_byte(store.path(addr, SHA256))
    with pytest.raises(BlobCorrupt):
        client.get(addr)


def tampering_app(real: LocalBlobStore, declared_kind: str | None = None) -> FastAPI:
    """A malicious mirror: serves every blob with one byte changed (and a correct Content-Length)."""
    app = FastAPI()

    @app.get("/blobs/{address}")
    def get(address: str, kind: str | None = None) -> Response:
        data = bytearray(real.get(address, kind))
        data[len(data) // 2] ^= 0xFF
        k = declared_kind or real.kind_of(address).value
        return Response(bytes(data), media_type="application/octet-stream", headers={"x-blob-kind": k})

    return app


@pytest.mark.parametrize("kind", ["sha256", "state"])
def test_client_rejects_tampered_bytes(store, tmp_path, state_bytes, kind):
    addr = store.write(state_bytes, kind).address
    client = client_for(tampering_app(store))
    with pytest.raises(BlobCorrupt, match="hash to"):
        client.get(addr, kind)
    with pytest.raises(BlobCorrupt):
        client.get(addr)  # kind taken from the header: still checked
    local = LocalBlobStore(tmp_path / "local")
    with pytest.raises(BlobCorrupt):
        client.fetch_into(local, addr, kind)
    assert all_files(local) == []
    # lying about the kind does not help either
    liar = client_for(tampering_app(store, declared_kind="state" if kind == "sha256" else "sha256"))
    with pytest.raises((BlobCorrupt, StateFormatError)):
        liar.get(addr)


def test_client_retries_then_gives_up():
    data = b"flaky"
    addr = sha256_address(data)
    calls = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused")
        if len(calls) == 2:
            return httpx.Response(503, json={"error": "busy", "detail": "try later"})
        return httpx.Response(200, content=data, headers={"x-blob-kind": "sha256"})

    c = HttpBlobClient(
        "http://m", retries=3, backoff=0.0, http_client=httpx.Client(transport=httpx.MockTransport(flaky))
    )
    assert c.get(addr) == data and len(calls) == 3

    calls.clear()
    down = httpx.Client(transport=httpx.MockTransport(lambda r: calls.append(1) or httpx.Response(502)))
    c = HttpBlobClient("http://m", retries=2, backoff=0.0, http_client=down)
    with pytest.raises(BlobUnavailable, match="after 3 tries") as err:
        c.get(addr)
    assert isinstance(err.value, ConnectionError) and len(calls) == 3


# --------------------------------------------------------------------------- mirrors


def test_mirror_falls_back_to_the_first_verified_copy(tmp_path, state_bytes):
    solver_store = LocalBlobStore(tmp_path / "solver")
    market_store = LocalBlobStore(tmp_path / "market")
    root = solver_store.put_state(state_bytes)
    market_store.put_state(state_bytes)
    mine = LocalBlobStore(tmp_path / "mine")  # the verifier's own store: empty at first
    withholding = client_for(create_blob_app(LocalBlobStore(tmp_path / "empty")), base="http://solver-withholds")
    tampering = client_for(tampering_app(solver_store), base="http://solver-tampers")
    market = client_for(create_blob_app(market_store), base="http://market")
    reader = MirroredBlobReader([mine, withholding, tampering, market], cache=mine)

    data, source = reader.get_with_source(root, STATE)
    assert data == state_bytes and source is market
    assert mine.get(root, STATE) == state_bytes  # cached
    assert reader.get_with_source(root)[1] is mine  # now served locally

    other = LocalBlobStore(tmp_path / "other")
    assert MirroredBlobReader([withholding, tampering, market]).fetch_into(other, root, STATE).address == root
    assert other.get(root) == state_bytes and debris(other) == []

    flip_byte(mine.path(root, STATE))  # a rotten local copy is skipped too
    assert MirroredBlobReader([mine, market]).get(root) == state_bytes

    unknown = sha256_address(b"nobody has this")
    with pytest.raises(BlobNotFound, match="no source"):
        MirroredBlobReader([LocalBlobStore(tmp_path / "e2"), withholding]).get(unknown)
    with pytest.raises(BlobUnavailable) as err:
        MirroredBlobReader([withholding, tampering]).get(root, STATE)
    kinds = [type(e) for _, e in err.value.attempts]
    assert kinds == [BlobNotFound, BlobCorrupt]


# --------------------------------------------------------------------------- a real socket


@pytest.fixture
def live_server(tmp_path) -> Iterator[tuple[str, LocalBlobStore]]:
    store = LocalBlobStore(tmp_path / "served")
    config = uvicorn.Config(create_blob_app(store, 8 << 20), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", store
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_real_http_server_round_trip(live_server, tmp_path, big_state_bytes):
    url, served = live_server
    with HttpBlobClient(url, timeout=10, retries=1, backoff=0.0) as client:
        p = tmp_path / "ckpt.bin"
        p.write_bytes(big_state_bytes)
        info = client.put(p, STATE)  # streamed upload from a file
        assert served.verify(info.address).size == len(big_state_bytes)
        local = LocalBlobStore(tmp_path / "local")
        assert client.fetch_into(local, info.address).address == info.address  # streamed download
        assert local.get(info.address, STATE) == big_state_bytes
        assert client.get(info.address, STATE) == big_state_bytes
        assert client.has(info.address, STATE) and not client.has(info.address, SHA256)
        r = httpx.put(f"{url}/blobs", content=b"x" * ((8 << 20) + 1), timeout=10)
        assert r.status_code == 413 and r.json()["error"] == "too_large"
        with pytest.raises(BlobNotFound):
            client.get(sha256_address(b"missing"))
    assert debris(served) == [] and len(list(served.iter_blobs())) == 1
    # nobody listening: connection refused, retried, then a clear error
    with HttpBlobClient(url.rsplit(":", 1)[0] + ":1", timeout=1, retries=1, backoff=0.0) as dead:
        with pytest.raises(BlobUnavailable):
            dead.get(info.address)
