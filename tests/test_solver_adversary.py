"""The adversaries really do what they are named: each runs through the solver's real
training path (:class:`solver.training.JobRun`: real segments, real checkpoints in a blob store, a persistent
trajectory) and the test inspects what it would commit and what it serves, replaying segments with the engine
the way a verifier does.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from protocol.blobstore import LocalBlobStore
from protocol.engine import load_dataset
from protocol.engine.examples import load_example, shortened
from protocol.engine.runner import StateMismatch, initial_state, run_segment
from protocol.metrics import Registry
from protocol.state import deserialize, state_root
from solver.adversary import (
    ADVERSARIES,
    Bomb,
    Fake,
    Hang,
    Lazy,
    Malformed,
    Noise,
    Stall,
    Trickle,
    UnknownAdversary,
    Withhold,
    make_adversary,
)
from solver.node import mirrorable
from solver.server import create_server_app
from solver.training import JobRun

JOB = bytes.fromhex("ab" * 32)
N = 8


@pytest.fixture(scope="module")
def spec():
    s = shortened(load_example("mlp_digits"), 80, 10)  # 8 segments of 10 steps
    return s.with_init_root(state_root(initial_state(s, load_dataset(s.dataset))))


@pytest.fixture(scope="module")
def dataset(spec):
    return load_dataset(spec.dataset)


def run(spec, dataset, tmp_path, adversary=None, name="run") -> JobRun:
    r = JobRun(
        JOB, spec, dataset, LocalBlobStore(tmp_path / name / "blobs"), tmp_path / name / "job", adversary=adversary
    )
    r.run()
    return r


@pytest.fixture(scope="module")
def honest(spec, dataset, tmp_path_factory) -> list[bytes]:
    r = run(spec, dataset, tmp_path_factory.mktemp("honest"))
    leaves = r.leaves()
    r.close()
    return leaves


def replay(r: JobRun, spec, dataset, index: int) -> bytes:
    """What a verifier gets replaying segment ``index`` from the checkpoint the solver stored as its pre-state."""
    pre_root = r.init_root if index == 0 else r.trajectory.leaf(index - 1)
    pre = deserialize(r.store.get(pre_root, "state"), expected_root=pre_root)
    return state_root(run_segment(spec, pre, dataset))


def test_honest_leaves_replay(spec, dataset, tmp_path, honest):
    r = run(spec, dataset, tmp_path)
    assert r.leaves() == honest
    assert all(replay(r, spec, dataset, i) == honest[i] for i in (0, 3, N - 1))


def test_fake_makes_up_leaves_after_a_quarter_of_the_steps(spec, dataset, tmp_path, honest):
    r = run(spec, dataset, tmp_path, Fake())  # default: after total_steps / 4 = 20 steps → from segment 2
    leaves = r.leaves()
    assert len(leaves) == N and leaves[:2] == honest[:2]
    assert all(a != b for a, b in zip(leaves[2:], honest[2:], strict=True))
    assert all(r.store.has(x, "state") for x in leaves[:2])
    assert not any(r.store.has(x, "state") for x in leaves[2:])  # nothing trained behind them
    assert replay(r, spec, dataset, 2) == honest[2] != leaves[2]  # the first made-up leaf fails replay
    later = run(spec, dataset, tmp_path, Fake(after_step=60), name="late")
    assert later.leaves()[:6] == honest[:6] and later.leaves()[6] != honest[6]


def test_noise_breaks_exactly_one_segment(spec, dataset, tmp_path, honest):
    r = run(spec, dataset, tmp_path, Noise(segment=3))
    leaves = r.leaves()
    assert leaves[:3] == honest[:3] and leaves[3] != honest[3]
    assert replay(r, spec, dataset, 3) == honest[3] != leaves[3]  # segment 3 fails replay
    for i in (4, 5, N - 1):  # later segments are honest training on top of the perturbed weights
        assert replay(r, spec, dataset, i) == leaves[i]
    # the default segment is drawn from the job id: fixed per job, in range
    assert Noise().target(JOB, N) == Noise().target(JOB, N) < N
    assert len({Noise().target(bytes([i]) * 32, N) for i in range(16)}) > 1


def test_noise_resumes_to_the_same_lie_after_a_crash(spec, dataset, tmp_path):
    whole = run(spec, dataset, tmp_path, Noise(segment=5), name="whole").root()
    store = LocalBlobStore(tmp_path / "crash" / "blobs")
    first = JobRun(JOB, spec, dataset, store, tmp_path / "crash" / "job", adversary=Noise(segment=5))
    for _ in range(6):
        first.step()
    first.close()  # the process dies here
    second = JobRun(JOB, spec, dataset, store, tmp_path / "crash" / "job", adversary=Noise(segment=5))
    assert second.done == 6 and second.run() == whole


def test_lazy_skips_steps_in_every_segment(spec, dataset, tmp_path, honest):
    r = run(spec, dataset, tmp_path, Lazy())
    leaves = r.leaves()
    for i in range(N):
        st = deserialize(r.store.get(leaves[i], "state"), expected_root=leaves[i])
        assert st.step == (i + 1) * spec.checkpoint_interval  # it claims the full step count
        assert replay(r, spec, dataset, i) != leaves[i]  # but did not take the steps
    assert leaves[0] != honest[0]


def test_withhold_commits_honestly_but_serves_no_pre_state(spec, dataset, tmp_path, honest):
    adv = Withhold()
    r = run(spec, dataset, tmp_path, adv)
    leaves = r.leaves()
    assert leaves == honest  # the commitment itself is true
    withheld = {"0x" + x.hex() for x in adv.withheld(JOB, r.init_root, leaves)}
    assert withheld == {"0x" + x.hex() for x in [r.init_root, *leaves[:-1]]}  # every segment's pre-state
    doc = {
        "job_id": "0x" + JOB.hex(),
        "root": "0x" + r.root().hex(),
        "n": N,
        "leaves": ["0x" + x.hex() for x in leaves],
    }
    app = create_server_app(r.store, {doc["job_id"]: doc}.get, lambda a: a in withheld, Registry(), "0x" + "11" * 20)
    with TestClient(app) as http:
        assert http.get(f"/leaves/{doc['job_id']}").json() == doc
        for address in withheld:
            assert r.store.has(address, "state")  # it has them ...
            assert http.get(f"/blobs/{address}", params={"kind": "state"}).status_code == 404  # ... and refuses
        last = "0x" + leaves[-1].hex()
        assert http.get(f"/blobs/{last}", params={"kind": "state"}).status_code == 200
        assert http.put("/blobs", params={"kind": "state"}, content=b"x").status_code == 405  # read-only
    # nor does it push them to the marketplace mirror
    assert mirrorable(r.store, r.init_root, leaves, lambda a: a in withheld) == [last]
    assert len(mirrorable(r.store, r.init_root, leaves, lambda a: False)) == N + 1
    some = Withhold(segments=[2])
    assert some.withheld(JOB, r.init_root, leaves) == {leaves[1]}


def test_stall_trains_honestly_and_never_answers(spec, dataset, tmp_path, honest):
    r = run(spec, dataset, tmp_path, Stall())
    assert r.leaves() == honest
    assert Stall().answers_disputes is False and make_adversary(None).answers_disputes is True
    # (on chain: tests/test_solver_crash.py::test_stall_adversary_never_answers_and_loses_on_its_clock)


@pytest.mark.parametrize("flavor", Malformed.FLAVORS)
def test_malformed_commits_a_checkpoint_that_hashes_but_is_no_state_of_the_job(spec, dataset, tmp_path, honest, flavor):
    from protocol.engine import EngineError
    from protocol.engine.runner import Trainer
    from protocol.state import StateFormatError, read_layout

    r = run(spec, dataset, tmp_path, Malformed(segment=2, flavor=flavor))
    leaves = r.leaves()
    assert leaves[:2] == honest[:2] and leaves[2] != honest[2] and leaves[3:] == honest[3:]
    blob = r.store.get(leaves[2], "state")  # stored, so served and mirrored like any checkpoint
    assert state_root(deserialize(blob)) == leaves[2]  # it hashes to the committed leaf
    trainer = Trainer(spec, dataset)
    with pytest.raises((StateFormatError, EngineError)):  # and the one check a verifier runs rejects it
        trainer.check_layout(read_layout(blob))
        trainer.load(deserialize(blob))


def test_lying_servers_trickle_hang_and_bomb(spec, dataset, tmp_path):
    """The three hostile servers lie like ``noise`` and answer reads badly (driven through real sockets in
    tests/test_hostile_solvers.py); here: their mode reaches the server and the lie is in the leaves."""
    for cls, mode in ((Trickle, "trickle"), (Hang, "hang"), (Bomb, "bomb")):
        adv = cls(segment=1)
        assert adv.serve_mode == mode and not adv.honest and mode in adv.describe()
    r = run(spec, dataset, tmp_path, Bomb(segment=1))
    assert replay(r, spec, dataset, 1) != r.leaves()[1]


def test_adversary_names():
    assert set(ADVERSARIES) == {
        "fake", "noise", "lazy", "withhold", "stall", "malformed", "trickle", "hang", "bomb", "baitswitch", "noclip",
        "constlr", "unfreeze",
    }  # fmt: skip
    assert make_adversary(None).honest and not make_adversary("lazy").honest
    assert make_adversary("noise", segment=2).target(JOB, N) == 2
    with pytest.raises(UnknownAdversary, match="unknown adversary 'evil'; choose one of: fake, noise"):
        make_adversary("evil")


@pytest.fixture(scope="module")
def finetune_spec():
    """A spec version 2 job whose every option is load-bearing: a warm-up schedule (step 0 runs at a tenth of
    the peak lr), clipping that every step hits, a frozen first layer."""
    s = shortened(load_example("mlp_digits"), 24, 4, version=2, clip_grad_norm=0.05, freeze=["layers.0.*"],
                  schedule={"warmup_steps": 10, "decay": "cosine"})  # fmt: skip
    return s.with_init_root(state_root(initial_state(s, load_dataset(s.dataset))))


@pytest.mark.parametrize("name", ["noclip", "constlr", "unfreeze"])
def test_spec_corner_cutters_fail_replay_of_every_segment(finetune_spec, dataset, tmp_path, name):
    spec = finetune_spec
    honest = run(spec, dataset, tmp_path, name="honest")
    cheat = run(spec, dataset, tmp_path, make_adversary(name), name=name)
    assert cheat.init_root == honest.init_root  # the same C_init: the lie starts with the first step
    leaves = cheat.leaves()
    assert all(a != b for a, b in zip(leaves, honest.leaves(), strict=True))
    assert all(cheat.store.has(x, "state") for x in leaves)  # it serves every checkpoint it claims
    for i in (0, 3):
        try:
            assert replay(cheat, spec, dataset, i) != leaves[i]  # what a verifier's replay finds
        except StateMismatch:
            # its later pre-states hold optimizer buffers of frozen parameters: not a state of this job, which
            # a verifier reports as unavailable (evidence against the solver)
            assert name == "unfreeze" and i > 0
    if name == "unfreeze":
        w0 = deserialize(cheat.store.get(leaves[0], "state")).tensors["param/layers.0.weight"]
        init = deserialize(cheat.store.get(cheat.init_root, "state")).tensors["param/layers.0.weight"]
        assert not (w0 == init).all()
    honest.close()
    cheat.close()
