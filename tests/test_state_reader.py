"""StateReader.sol against protocol/state_reader.py on real training states: every tensor's manifest entry is found
where the serialisation holds it, any byte range reads back exactly, and nothing that is not the state's is
accepted (DESIGN §3, §8)."""

from __future__ import annotations

import random

import pytest
from harnesses import deploy_harness

from protocol.repro.elements import DTYPE_CODES
from protocol.revert import ContractRevert, default_decoder
from protocol.state import CHUNK_SIZE, serialize_bytes
from protocol.state_reader import StateOpener

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def reader(w3, dev):
    return deploy_harness(w3, dev[0], "StateReader", decode_tuples=True)


def _states():
    from protocol.engine.data import load_dataset
    from protocol.engine.examples import load_example, shortened
    from protocol.engine.runner import Trainer

    lm = load_example("tiny_lm")
    for spec in (shortened(load_example("mlp_digits"), 2, 1), shortened(lm, 2, 1)):
        t = Trainer(spec, load_dataset(spec.dataset))
        t.init()
        t.train_steps(1)  # the optimizer's buffers exist: a longer manifest (the LM's spans several chunks)
        yield type(spec.model).__name__, serialize_bytes(t.state())


def _call(fn):
    try:
        return fn.call()
    except Exception as exc:  # the node's revert, decoded by name
        decoded = default_decoder("StateReader").from_exception(exc)
        if decoded is None:
            raise
        raise decoded from None


def test_every_tensor_of_a_real_state_is_found_and_read_back(reader):
    rng = random.Random(5)
    for what, blob in _states():
        s = StateOpener(blob)
        root, count = s.root(), (len(blob) + CHUNK_SIZE - 1) // CHUNK_SIZE
        dtypes = {"float32": "torch.float32", "int64": "torch.int64", "int32": "torch.int32"}
        for e in s.entries:
            got = reader.functions.tensor(root, s.manifest_opening(e["name"]), e["name"]).call()
            t = s.tensor(e["name"])
            code = DTYPE_CODES.index(dtypes[e["dtype"]]) if e["dtype"] in dtypes else 255
            assert (got.start, got.nbytes, got.dtype, list(got.shape), got.chunkCount) == (
                t.start, t.nbytes, code, e["shape"], count), (what, e)  # fmt: skip
        for _ in range(6):  # ranges anywhere, some across a chunk boundary
            start = rng.randrange(len(blob) - 64)
            if rng.random() < 0.5:
                start = (start // CHUNK_SIZE + 1) * CHUNK_SIZE - rng.randrange(1, 31)
                start = min(start, len(blob) - 40)
            n = rng.randrange(1, 41)
            assert (
                reader.functions.read(root, count, start, n, s.range_opening(start, n)).call()
                == blob[start : start + n]
            )
        print(f"{what}: {len(s.entries)} tensors, manifest {s.manifest_len} bytes, {count} chunks")


def test_what_is_not_the_states_is_refused(reader):
    _, blob = next(iter(_states()))
    s = StateOpener(blob)
    root, count = s.root(), (len(blob) + CHUNK_SIZE - 1) // CHUNK_SIZE
    name = s.entries[3]["name"]
    opening, at, last = s.manifest_opening(name)
    first, data, paths = opening
    bent = bytearray(data[0])
    bent[100] ^= 1
    for args, error in (
        ((root, ((first, [bytes(bent), *data[1:]], paths), at, last), name), "ChunkNotInState"),
        ((root, (opening, at, last), s.entries[4]["name"]), "EntryNotInManifest"),  # another name at that entry
        ((root, (opening, at + 1, last), name), "EntryNotInManifest"),  # not at an entry's start
        ((root, (opening, at, at), name), "EntryNotInManifest"),  # not the last entry
        ((b"\x07" * 32, (opening, at, last), name), "ChunkNotInState"),  # another state's root
    ):
        with pytest.raises(ContractRevert) as err:
            _call(reader.functions.tensor(*args))
        assert err.value.name == error, (args[2], err.value)
    with pytest.raises(ContractRevert) as err:  # a chunk presented at another index
        first, data, paths = s.range_opening(5 * CHUNK_SIZE, 8)
        _call(reader.functions.read(root, count, 6 * CHUNK_SIZE, 8, (first + 1, data, paths)))
    assert err.value.name == "ChunkNotInState"
