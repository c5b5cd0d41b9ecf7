"""The on-chain Philox4x32-10 and its streams (contracts/src/libraries/Philox.sol, through PhiloxHarness on anvil)
equal protocol/engine/rng.py word for word: Random123's known answers, random counters and keys, the stream tag
(SHA-256 of purpose and index), stream words across block boundaries, uniforms' 53-bit mantissas and sort keys.
Stage 2 of the committee-free exact-mode settlement."""

from __future__ import annotations

import numpy as np
import pytest
from harnesses import deploy_harness

from protocol.engine.rng import Stream, philox4x32, stream_tag

pytestmark = pytest.mark.chain

KAT = [  # Random123's kat_vectors for philox4x32 with 10 rounds
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.fixture(scope="module")
def harness(w3, dev):
    return deploy_harness(w3, dev[0], "PhiloxHarness")


def _blocks(harness, inputs: np.ndarray) -> np.ndarray:
    out = harness.functions.blocks(inputs.astype(">u4").tobytes()).call()
    return np.frombuffer(out, dtype=">u4").reshape(-1, 4).astype(np.uint32)


def _engine_block(row: np.ndarray) -> np.ndarray:
    ctr = [np.array([x], dtype=np.uint64) for x in row[:4]]
    return philox4x32(*ctr, int(row[4]), int(row[5]))[0]


def test_block_function_matches_random123_and_the_engine(harness):
    kat = np.array([[*c, *k] for c, k, _ in KAT], dtype=np.uint32)
    assert _blocks(harness, kat).tolist() == [list(e) for _, _, e in KAT]
    rng = np.random.default_rng(16)
    inputs = rng.integers(0, 1 << 32, size=(2000, 6), dtype=np.uint64).astype(np.uint32)
    for lo in range(0, len(inputs), 500):
        part = inputs[lo : lo + 500]
        want = np.stack([_engine_block(row) for row in part])
        assert np.array_equal(_blocks(harness, part), want)


@pytest.mark.parametrize(
    ("purpose", "index"), [("init", 0), ("batch", 7), ("dropout/layer.0", 123456), ("", 0), ("batch", (1 << 64) - 1)]
)
def test_stream_tag_matches(harness, purpose, index):
    assert tuple(harness.functions.streamTag(purpose.encode(), index).call()) == stream_tag(purpose, index)


@pytest.mark.parametrize(
    ("seed", "purpose", "index"),
    [(0, "init", 0), (0x1234_5678_9ABC_DEF0, "batch", 42), ((1 << 64) - 1, "dropout/fc1", 9)],
)
def test_stream_words_uniforms_and_keys_match(harness, seed, purpose, index):
    js = [0, 1, 2, 3, 4, 5, 7, 8, 1023, 4096, 99_999, (1 << 32) * 4 + 3]  # across block and high-counter boundaries
    words, mantissas, keys = harness.functions.stream(seed, purpose.encode(), index, js).call()
    s = Stream(seed, purpose, index)
    assert words == [int(s.words(1, start=j)[0]) for j in js]
    for j, m, k in zip(js, mantissas, keys, strict=True):
        w = s.words(2, start=2 * j).astype(np.uint64)
        assert m == (int(w[0]) >> 5) * (1 << 26) + (int(w[1]) >> 6)
        assert k == (int(w[0]) << 32) | int(w[1])
        if j < 100_000:
            assert m * 2.0**-53 == float(s.uniform(j + 1)[j])
            assert k == int(s.keys64(j + 1)[j])
