"""Whatever another party serves — malformed state bytes, a server that trickles, hangs or never stops — the
reader ends in bounded time and memory with a typed error, and a good mirror still gets its turn.

* a hypothesis test feeds random and adversarial manifests (re-encoded so they still hash to their own root)
  to the one validation of untrusted state bytes (:func:`protocol.state.read_layout`,
  :meth:`Trainer.check_layout`, :func:`protocol.state.deserialize`): a typed error or a valid state of the
  job, never another exception, never more memory than the bytes themselves;
* the solver's real checkpoint server in its ``trickle``, ``hang`` and ``bomb`` modes, over real sockets,
  against :class:`protocol.blobstore.HttpBlobClient` / :class:`protocol.replay.Sources` with a
  :class:`protocol.budget.FetchBudget`.
"""

from __future__ import annotations

import json
import struct
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.blobserver import create_blob_app
from protocol.blobstore import HttpBlobClient, LocalBlobStore, MirroredBlobReader
from protocol.budget import FetchBudget
from protocol.engine import EngineError, load_dataset
from protocol.engine.examples import load_example, shortened
from protocol.engine.runner import Trainer, initial_state
from protocol.errors import BlobError, BlobTimeout, BlobTooLarge, BlobUnavailable, BudgetExhausted
from protocol.metrics import Registry
from protocol.node import HttpService
from protocol.replay import Evidence, JobRef, Sources, Unavailable, _fetch_evidence
from protocol.state import StateFormatError, deserialize, read_layout, serialize_bytes, state_root
from solver.server import create_server_app


@pytest.fixture(scope="module")
def job():
    spec = shortened(load_example("mlp_digits"), 20, 10)
    data = load_dataset(spec.dataset)
    spec = spec.with_init_root(state_root(initial_state(spec, data)))
    trainer = Trainer(spec, data)
    trainer.init()
    trainer.train_steps(10)
    return spec, data, trainer, serialize_bytes(trainer.state())


def _manifest(blob: bytes) -> dict:
    mlen = struct.unpack("<Q", blob[4:12])[0]
    return json.loads(blob[12 : 12 + mlen])


def _with_manifest(blob: bytes, manifest: dict) -> bytes:
    mlen = struct.unpack("<Q", blob[4:12])[0]
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return blob[:4] + struct.pack("<Q", len(raw)) + raw + blob[12 + mlen :]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.sampled_from([2**63, -(2**63) - 1, 10**400, 0, -1, 1, 2**31])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
PATHS = st.sampled_from(
    [
        ("step",),
        ("meta", "loss"),
        ("meta", "engine"),
        ("meta", "spec_hash"),
        ("meta", "extra"),
        ("meta", "rng"),
        ("meta", "data"),
        ("tensors", 0, "shape"),
        ("tensors", 0, "dtype"),
        ("tensors", 0, "name"),
        ("tensors", 1, "offset"),
        ("tensors", 1, "nbytes"),
        ("tensors", -1, "shape", 0),
        ("tensors",),
        ("version",),
    ]
)


def _set(doc, path, value):
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


def _validate(trainer, blob: bytes):
    """What a verifier does with a pre-state blob that hashed to its address."""
    layout = read_layout(blob)
    trainer.check_layout(layout)
    state = deserialize(blob, expected_root=state_root(deserialize(blob)))
    trainer.load(state)
    return state


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(PATHS, json_values), min_size=1, max_size=3), flips=st.lists(st.integers(0, 10**6)))
def test_untrusted_state_bytes_give_a_typed_error_or_a_valid_state(job, edits, flips):
    spec, data, trainer, good = job
    manifest = _manifest(good)
    for path, value in edits:
        try:
            _set(manifest, path, value)
        except (KeyError, IndexError, TypeError):
            continue
    try:
        blob = bytearray(_with_manifest(good, manifest))
    except (ValueError, RecursionError):  # not even JSON-encodable: never reaches anyone
        return
    for f in flips:
        blob[f % len(blob)] ^= 0xFF
    blob = bytes(blob)
    tracemalloc.start()
    try:
        state = _validate(trainer, blob)
    except (StateFormatError, EngineError):
        state = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 4 * len(good) + (8 << 20), f"validation of {len(blob)} bytes peaked at {peak} bytes"
    if state is not None:  # it was accepted: then it is a state of this job a replay can run from
        assert set(state.tensors) == set(trainer.expected_tensors(state.step))


def test_deeply_nested_manifest_is_a_format_error_not_a_crash(job):
    _, _, trainer, good = job
    raw = b"[" * 200_000 + b"]" * 200_000
    blob = good[:4] + struct.pack("<Q", len(raw)) + raw
    with pytest.raises(StateFormatError, match="nests"):
        read_layout(blob)


# --------------------------------------------------------------------------- hostile servers, real sockets


@pytest.fixture()
def servers(tmp_path, job):
    """A good mirror holding the checkpoint, and the solver server in each hostile mode."""
    _, _, _, good = job
    store = LocalBlobStore(tmp_path / "blobs")
    address = store.put_state(good)
    mirror = HttpService(create_blob_app(store)).start()
    started = {"mirror": mirror}
    for mode in ("trickle", "hang", "bomb"):
        app = create_server_app(store, lambda _j: None, lambda _a: False, Registry(), "0x" + "11" * 20, mode)
        started[mode] = HttpService(app).start()
    yield address, started, store
    for s in started.values():
        s.stop()


@pytest.mark.parametrize("mode, error", [("trickle", BlobTimeout), ("hang", BlobTimeout), ("bomb", BlobTooLarge)])
def test_each_hostile_server_costs_at_most_its_budget(servers, mode, error, job):
    address, started, _ = servers
    budget = FetchBudget.within(4.0, max_bytes=len(job[3]) + 4096, min_rate=16 * 1024, grace_s=1.0)
    t0 = time.monotonic()
    with HttpBlobClient(started[mode].url, timeout=10.0, retries=3) as client, pytest.raises(error):
        client.get(address, "state", budget=budget)
    assert time.monotonic() - t0 < 4.0 + 1.5  # the deadline held (plus one read of slack)


@pytest.mark.parametrize("mode", ["trickle", "hang", "bomb"])
def test_the_mirror_gets_its_turn_after_a_hostile_solver(servers, mode, job, tmp_path):
    address, started, _ = servers
    budget = FetchBudget.within(8.0, max_bytes=len(job[3]) + 4096, min_rate=16 * 1024, grace_s=1.0)
    solver = HttpBlobClient(started[mode].url, timeout=10.0, retries=2)
    mirror = HttpBlobClient(started["mirror"].url, timeout=10.0)
    cache = LocalBlobStore(tmp_path / f"cache-{mode}")
    reader = MirroredBlobReader([cache, solver, mirror], cache=cache)
    t0 = time.monotonic()
    assert reader.get(address, "state", budget=budget) == job[3]
    assert time.monotonic() - t0 < 8.0
    solver.close()
    mirror.close()


@pytest.mark.parametrize("mode", ["trickle", "bomb"])
def test_a_hostile_response_ends_when_its_reader_gives_up(servers, mode, job):
    """Once the reader has hung up, the server stops sending. uvicorn's ``send`` returns at once on a closed
    connection, so an endless body that did not watch for the disconnect spun on for ever at a full core in
    the solver's process, starving the verifiers beside it on a two-core machine (CI's hostile-solver market)."""
    address, started, _ = servers
    budget = FetchBudget.within(2.0, max_bytes=len(job[3]) + 4096, min_rate=16 * 1024, grace_s=1.0)
    for _ in range(3):
        with HttpBlobClient(started[mode].url, timeout=10.0, retries=0) as client, pytest.raises(BlobError):
            client.get(address, "state", budget=budget)
    time.sleep(0.5)  # the server sees the disconnects
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(1.0)  # this process runs the servers' threads and nothing else now
    busy = (time.process_time() - cpu) / (time.monotonic() - wall)
    assert busy < 0.3, f"the {mode} server still burns {busy:.0%} of a core after its readers left"


@pytest.mark.parametrize("mode", ["trickle", "hang"])
def test_a_download_given_less_than_a_fair_time_is_no_evidence_against_its_server(servers, mode, job, tmp_path):
    """A reader that was late (its deadline left the server less than the grace period plus the blob's cap at
    the minimum rate) learns nothing from the server not finishing: ``unchecked``, never ``timeout`` (which
    would cost an honest solver an availability challenge, or its challenger the fee). Given a fair time, the
    same stalled server is ``timeout``."""
    address, started, _ = servers
    cap = len(job[3]) + 4096
    for seconds, min_rate, evidence, error in (
        (0.5, 16 * 1024, Evidence.UNCHECKED, BudgetExhausted),  # fair: 1 s + cap / 16 KiB/s > 0.5 s
        (2.5, 1 << 20, Evidence.TIMEOUT, BlobTimeout),  # fair: 1 s + cap / 1 MiB/s < 2.5 s
    ):
        budget = FetchBudget.within(seconds, max_bytes=cap, min_rate=min_rate, grace_s=1.0)
        assert budget.late(time.monotonic()) is (evidence is Evidence.UNCHECKED)
        cache = LocalBlobStore(tmp_path / f"cache-{mode}-{seconds}")
        with HttpBlobClient(started[mode].url, timeout=10.0, retries=0) as client:
            reader = MirroredBlobReader([cache, client], cache=cache)
            with pytest.raises(BlobError) as err:
                reader.get(address, "state", budget=budget)
        (_, cause) = err.value.attempts[-1]  # type: ignore[attr-defined]  # the server, after the cache
        assert type(cause) is error, (mode, seconds, cause)
        assert _fetch_evidence(err.value) is evidence, (mode, seconds, err.value)


def test_an_endless_leaf_list_is_cut_at_what_n_leaves_can_weigh(servers, tmp_path):
    _, started, _ = servers
    ref = JobRef(
        job_id=b"\x01" * 32, spec_hash=b"\x02" * 32, solver="0x" + "11" * 20, submitter="0x" + "22" * 20,
        uri=started["bomb"].url, num_leaves=8, trajectory_root=b"\x03" * 32, init_state_root=b"\x04" * 32,
    )  # fmt: skip
    sources = Sources(tmp_path / "v", None, timeout=5.0)
    tracemalloc.start()
    try:
        with pytest.raises(Unavailable) as err:
            sources.leaves(ref, FetchBudget.within(5.0, max_bytes=1 << 62))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        sources.close()
    assert err.value.evidence is Evidence.TIMEOUT
    assert peak < 4 << 20, peak  # 8 leaves weigh < 5 KB: the bomb was cut off after ~64 KiB, not at MemoryError
    assert isinstance(BlobTooLarge("x"), BlobUnavailable | ValueError)
