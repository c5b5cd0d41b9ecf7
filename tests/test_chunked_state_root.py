"""The on-chain state root (ChunkedStateRoot.sol, through a harness on anvil) equals protocol/state.py's on real
checkpoints fed in the pieces a publishing solver sends, and on sizes around chunk and power-of-two borders."""

from __future__ import annotations

import random

import pytest
from harnesses import deploy_harness

from protocol.engine import load_dataset
from protocol.engine.examples import load_example
from protocol.engine.runner import initial_state
from protocol.state import CHUNK_SIZE, chunked_root, serialize_bytes
from protocol.tx import send

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def harness(w3, dev):
    return deploy_harness(w3, dev[0], "ChunkedStateRootHarness")


def test_real_checkpoint_fed_in_pieces_equals_protocol_state_root(w3, dev, harness):
    spec = load_example("mlp_digits")
    blob = serialize_bytes(initial_state(spec, load_dataset(spec.dataset)))
    piece = 8 * CHUNK_SIZE
    pieces = [blob[i : i + piece] for i in range(0, len(blob), piece)]
    for i, p in enumerate(pieces):
        send(w3, dev[0], harness.functions.feed(7, p, i == len(pieces) - 1))
    assert harness.functions.root(7).call() == chunked_root([blob])


def test_sizes_around_chunk_borders_equal_protocol_state_root(harness):
    rng = random.Random(3)
    for n in (0, 1, 4095, 4096, 4097, 3 * 4096, 5 * 4096 + 9, 16 * 4096, 17 * 4096 - 1, rng.randint(1, 40_000)):
        data = rng.randbytes(n)
        assert harness.functions.rootOf(data).call() == chunked_root([data]), n
