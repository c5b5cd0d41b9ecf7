"""Canonical state serialisation and state_root (protocol/state.py) against a straightforward RFC 9162 reference."""

from __future__ import annotations

import hashlib
import json
import struct

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.blobstore import check_state_layout
from protocol.state import (
    CHUNK_SIZE,
    StateFormatError,
    StateRootMismatch,
    TrainingState,
    chunked_root,
    deserialize,
    serialize_bytes,
    state_root,
)


def reference_root(data: bytes) -> bytes:
    """RFC 9162 §2.1.1 read literally: MTH over 4096-byte chunks, split at the largest power of two < n."""
    chunks = [data[i : i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE)]

    def mth(d: list[bytes]) -> bytes:
        if not d:
            return hashlib.sha256(b"").digest()
        if len(d) == 1:
            return hashlib.sha256(b"\x00" + d[0]).digest()
        k = 1
        while k * 2 < len(d):
            k *= 2
        return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()

    return mth(chunks)


DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
]


@st.composite
def states(draw):
    n = draw(st.integers(0, 6))
    names = draw(st.lists(st.text("abcdefghij._", min_size=1, max_size=12), min_size=n, max_size=n, unique=True))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    tensors = {}
    for name in names:
        dtype = draw(st.sampled_from(DTYPES))
        shape = tuple(draw(st.lists(st.integers(0, 40), min_size=0, max_size=3)))
        if dtype.is_floating_point:
            t = torch.randn(shape, generator=gen).to(dtype)
        else:
            t = torch.randint(0, 2 if dtype == torch.bool else 100, shape, generator=gen).to(dtype)
        tensors[name] = t
    if draw(st.booleans()):  # sometimes one big tensor, so chunks span tensors and blocks
        tensors["zz_big"] = torch.randn(draw(st.integers(1, 300_000)), generator=gen)
    meta = draw(st.dictionaries(st.text("xyz", min_size=1, max_size=3), st.integers(-5, 5), max_size=3))
    return TrainingState(tensors=tensors, step=draw(st.integers(0, 10**9)), meta=meta)


@settings(max_examples=60, deadline=None)
@given(states())
def test_state_root_equals_straightforward_rfc9162(state):
    data = serialize_bytes(state)
    expected = reference_root(data)
    assert state_root(state) == expected
    assert state_root(state, threads=False) == expected


@settings(max_examples=60, deadline=None)
@given(states())
def test_serialise_deserialise_serialise_is_byte_identical(state):
    data = serialize_bytes(state)
    back = deserialize(data, expected_root=state_root(state))
    assert serialize_bytes(back) == data
    assert back.step == state.step and back.meta == state.meta
    for name, t in state.tensors.items():
        assert back.tensors[name].dtype == t.dtype and back.tensors[name].shape == t.shape
        assert torch.equal(back.tensors[name], t)


@settings(max_examples=30, deadline=None)
@given(states(), st.randoms())
def test_dict_insertion_order_does_not_change_the_root(state, rnd):
    items = list(state.tensors.items())
    rnd.shuffle(items)
    shuffled = TrainingState(tensors=dict(items), step=state.step, meta=dict(reversed(list(state.meta.items()))))
    assert state_root(shuffled) == state_root(state)
    assert serialize_bytes(shuffled) == serialize_bytes(state)


def test_chunked_root_over_buffer_boundaries_equals_joined_bytes():
    pieces = [b"a" * 10, b"", b"b" * 4090, b"c" * (3 * CHUNK_SIZE + 5), b"d" * (1 << 20), b"e"]
    assert chunked_root(pieces) == reference_root(b"".join(pieces))
    assert chunked_root([]) == hashlib.sha256(b"").digest()


def test_non_contiguous_and_strided_tensors_serialise_as_their_values():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    a = TrainingState({"w": base.t()}, step=1)
    b = TrainingState({"w": base.t().contiguous()}, step=1)
    assert serialize_bytes(a) == serialize_bytes(b)


def _sample_bytes() -> bytes:
    return serialize_bytes(TrainingState({"w": torch.ones(3), "b": torch.zeros(2, dtype=torch.int64)}, step=4))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: b"XXXX" + d[4:], "VTS1"),
        (lambda d: d[:-1], "truncated"),
        (lambda d: d + b"\x00", "trailing"),
        (lambda d: d[:4] + struct.pack("<Q", 10**9) + d[12:], "past the end"),
        (lambda d: d[:12] + d[12:].replace(b'"step":4', b'"step": 4', 1)[: len(d) - 12], "JSON"),
    ],
)
def test_malformed_bytes_raise_a_clear_typed_error(mutate, message):
    with pytest.raises(StateFormatError, match=message):
        deserialize(mutate(_sample_bytes()))


def _with_manifest(data: bytes, edit) -> bytes:
    """``data`` with its manifest replaced by ``edit(manifest dict)``, re-encoded canonically."""
    mlen = struct.unpack("<Q", data[4:12])[0]
    manifest = json.loads(data[12 : 12 + mlen])
    edit(manifest)
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return data[:4] + struct.pack("<Q", len(raw)) + raw + data[12 + mlen :]


def _duplicate_name(m):
    m["tensors"][1]["name"] = m["tensors"][0]["name"]


def _bool_shape(m):
    m["tensors"][0]["shape"] = [True, 2]


def _huge_shape(m):
    m["tensors"][0]["shape"] = [2**62, 2**62]


def _bool_version(m):  # true == 1 in Python, but other bytes: it would parse and hash to another root
    m["version"] = True


@pytest.mark.parametrize(
    "edit, message",
    [(_duplicate_name, "strictly ascending"), (_bool_shape, "shape"), (_huge_shape, "inconsistent|truncated"),
     (_bool_version, "unsupported state format")],
)  # fmt: skip
def test_manifest_rules_are_the_same_for_deserialize_and_the_blob_store(edit, message):
    bad = _with_manifest(_sample_bytes(), edit)
    with pytest.raises(StateFormatError, match=message):
        deserialize(bad)
    with pytest.raises(StateFormatError, match=message):
        check_state_layout(bad)


def test_wrong_expected_root_is_rejected():
    data = _sample_bytes()
    with pytest.raises(StateRootMismatch):
        deserialize(data, expected_root=b"\x11" * 32)


def test_unsupported_entries_are_rejected():
    with pytest.raises(StateFormatError, match="not a torch.Tensor"):
        serialize_bytes(TrainingState({"w": [1, 2]}, step=0))  # type: ignore[dict-item]
    with pytest.raises(StateFormatError, match="unsupported dtype"):
        serialize_bytes(TrainingState({"w": torch.zeros(2, dtype=torch.complex64)}, step=0))
