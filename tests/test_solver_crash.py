"""The solver survives ``kill -9`` (DESIGN §11), as a real ``veritrain solver`` subprocess on anvil:

* killed while training → restarted → resumes from its last checkpoint (not from scratch), reaches the same
  trajectory root as an uninterrupted run, and commits before the deadline;
* killed during a dispute (a wrongful challenge, played in-process by the test with
  ``verifier.challenge.Challenger`` and three ``verifier.arbiter.Arbiter`` s that really replay the segment
  from the mirrored checkpoint) → restarted within its chess clock → it picks the game up where the chain
  says it is and wins; then it finalizes the job and is paid.

Plus, in-process: the ``stall`` adversary never answers and loses on its clock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from solver_world import ETHER, World, build_world

from protocol.anvil import Anvil, increase_time, mine
from protocol.blobstore import HttpBlobClient
from protocol.chain import ChainClient
from protocol.constants import Phase
from protocol.engine import load_dataset, train_to_dir
from protocol.engine.runner import run_segment
from protocol.game import IDLE
from protocol.node import read_ready_file
from protocol.state import deserialize, state_root
from solver.adversary import Stall
from solver.node import SolverConfig, SolverNode
from verifier.arbiter import Arbiter
from verifier.challenge import Challenger

pytestmark = pytest.mark.chain

COMMITTED, DISPUTED, FINALIZED, SLASHED = 2, 3, 4, 5
SOLVER_WON, CHALLENGER_WON = 1, 2


@pytest.fixture(scope="module")
def world(forge_build, tmp_path_factory):
    with Anvil() as anvil:
        w = build_world(tmp_path_factory.mktemp("crash-world"), anvil)
        w.stake_verifier(w.accounts[3], 1_000 * ETHER)  # the challenger
        for v in w.accounts[4:8]:
            w.stake_verifier(v, 500 * ETHER)
        yield w
        w.close()


class SolverProcess:
    """``veritrain solver`` in its own process group; its key comes from $VERITRAIN_KEY."""

    def __init__(self, world: World, data_dir: Path, account) -> None:
        self.world, self.data_dir, self.account = world, data_dir, account
        self.proc: subprocess.Popen | None = None

    def start(self) -> dict:
        argv = [
            sys.executable, "-m", "veritrain.cli", "solver",
            "--rpc", self.world.anvil.url,
            "--deployment", str(self.world.deployment.path),
            "--api", self.world.api_url,
            "--data-dir", str(self.data_dir),
            "--models", "mlp", "--stake", "1000", "--price-floor", "20", "--max-steps", "2000",
            "--poll-interval", "0.2", "--threads", "1",
        ]  # fmt: skip
        env = {**os.environ, "VERITRAIN_KEY": "0x" + bytes(self.account.key).hex()}
        log = open(self.data_dir.parent / f"{self.data_dir.name}.stderr", "ab")
        self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            info = read_ready_file(self.data_dir)
            if info and info.get("pid") == self.proc.pid:
                return info
            if self.proc.poll() is not None:
                pytest.fail(f"veritrain solver exited with {self.proc.returncode}: {self.stderr()[-3000:]}")
            time.sleep(0.1)
        pytest.fail(f"veritrain solver did not get ready: {self.stderr()[-3000:]}")

    def stderr(self) -> str:
        return (self.data_dir.parent / f"{self.data_dir.name}.stderr").read_text(errors="replace")

    def events(self, name: str) -> list[dict]:
        path = self.data_dir / "node.log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue  # a line cut by kill -9
            if doc.get("event") == name:
                out.append(doc)
        return out

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@pytest.fixture(scope="module")
def solver(world: World, tmp_path_factory):
    account = world.accounts[9]
    world.mint(account.address, 5_000 * ETHER)
    proc = SolverProcess(world, tmp_path_factory.mktemp("solver-proc") / "data", account)
    _current.append(proc)
    proc.start()
    yield proc
    proc.stop()


_current: list[SolverProcess] = []


def wait_for(cond, what: str, timeout: float = 120.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := cond():
            return value
        time.sleep(interval)
    tail = _current[-1].stderr()[-4000:] if _current else ""
    pytest.fail(f"timed out waiting for {what}; solver stderr:\n{tail}")


def win_job(world: World, solver_address: str, spec) -> str:
    job_id = world.post_order(spec)
    wait_for(lambda: any(b["bid"]["solver"] == solver_address for b in world.bids(job_id)), "the solver's bid")
    world.accept(job_id, solver_address)
    return job_id


def test_kill_9_during_training_resumes_and_commits_the_same_root(world: World, solver: SolverProcess, tmp_path):
    wide = {"kind": "mlp", "input_dim": 64, "hidden": [512, 512], "num_classes": 10, "activation": "relu"}
    spec = world.spec(600, 50, seed=21, model=wide)  # 12 segments of a few ms per step
    job_id = win_job(world, solver.account.address, spec)
    wait_for(lambda: len([e for e in solver.events("segment") if e.get("job_id") == job_id]) >= 3, "3 segments")
    solver.kill9()
    done_before = len([e for e in solver.events("segment") if e.get("job_id") == job_id])
    assert done_before < 12 and world.job(job_id).state == 1  # killed mid-training, nothing committed
    reference = train_to_dir(spec, load_dataset(spec.dataset), tmp_path / "ref", evaluate=False)
    solver.start()
    wait_for(lambda: world.job(job_id).state == COMMITTED, "the commit after the restart", timeout=180)
    job = world.job(job_id)
    assert bytes(job.trajectoryRoot) == reference.trajectory_root
    assert bytes(job.finalStateRoot) == reference.final_state_root
    (resumed,) = [e for e in solver.events("training-resumed") if e.get("job_id") == job_id]
    assert resumed["leaves"] >= done_before - 1 > 0  # from the last checkpoint on disk, not from scratch
    wait_for(lambda: [e for e in solver.events("committed") if e.get("job_id") == job_id], "the commit log line")
    assert int(job.committedAt) < int(job.deadline)


def test_kill_9_during_a_dispute_restart_within_the_clock_wins(world: World, solver: SolverProcess, tmp_path):
    spec = world.spec(160, 20, seed=22)  # 8 leaves
    job_id = win_job(world, solver.account.address, spec)
    wait_for(lambda: world.job(job_id).state == COMMITTED, "the commit", timeout=120)
    dataset = load_dataset(spec.dataset)
    mirror = HttpBlobClient(world.api_url)

    def replay(pre: bytes, index: int) -> bytes | None:
        try:
            pre_state = deserialize(mirror.get("0x" + pre.hex(), "state"), expected_root=pre)
        except Exception:
            return None
        return state_root(run_segment(spec, pre_state, dataset))

    def client(acct) -> ChainClient:
        return ChainClient(world.anvil.url, world.deployment, acct, poll_interval=0.05, retries=2)

    wait_for(lambda: world.http("GET", f"/jobs/{job_id}/leaves")[0] == 200, "the mirrored leaf list")
    challenger = Challenger(client(world.accounts[3]))
    arbiters = [Arbiter(client(v), replay, tmp_path / f"{v.address}.json") for v in world.accounts[4:8]]
    dispute_id = challenger.open(bytes.fromhex(job_id[2:]))
    accused = 5  # an honest leaf: the challenge is wrong
    game = world.contract("DisputeGame")
    killed_at: float | None = None
    restarted = False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        d = game.functions.getDispute(dispute_id).call()
        if d.phase == Phase.RESOLVED:
            break
        if not restarted and killed_at is None and d.phase == Phase.AWAITING_REVEAL and d.lo == 4:
            solver.kill9()  # mid-descent: the solver owes a reveal
            killed_at = time.monotonic()
            continue
        if killed_at is not None and not restarted:
            # still owing the reveal, or it landed just before the kill (then it owes the next one after a choice)
            assert game.functions.getDispute(dispute_id).call().phase in (Phase.AWAITING_REVEAL, Phase.AWAITING_CHOICE)
            solver.start()
            restarted = True
        moved = challenger.step(dispute_id, accused) not in IDLE
        for a in arbiters:
            moved = a.step(dispute_id) not in IDLE or moved
        if not moved:
            if d.phase == Phase.AWAITING_COMMITTEE:
                mine(world.w3)
            elif d.phase == Phase.VOTING:
                increase_time(world.w3, int(world.params["game"]["commitPeriod"]))
            else:
                time.sleep(0.1)  # the solver's turn
    d = game.functions.getDispute(dispute_id).call()
    assert d.phase == Phase.RESOLVED and d.outcome == SOLVER_WON, d
    assert restarted and (d.lo, d.hi) == (accused, accused + 1)
    moves = [e for e in solver.events("dispute-move") if e.get("dispute_id") == dispute_id]
    assert [m["move"] for m in moves].count("open-leaf") == 1
    assert int(d.solverClock) > 0  # it answered within its clock
    # the job is open again; after the window the solver finalizes it and is paid
    assert world.job(job_id).state == COMMITTED
    increase_time(world.w3, int(world.params["market"]["auditWindow"]) + int(world.params["market"]["disputeGrace"]))
    wait_for(lambda: world.job(job_id).state == FINALIZED, "finalize by the solver", timeout=60)
    wait_for(lambda: solver.events("dispute-resolved"), "the solver's record of the outcome", timeout=30)
    assert solver.events("dispute-resolved")[-1]["outcome"] == "solver_won"


def test_stall_adversary_never_answers_and_loses_on_its_clock(world: World, tmp_path, solver: SolverProcess):
    solver.stop()  # only the staller bids now
    account = world.accounts[2]
    world.mint(account.address, 5_000 * ETHER)
    node = SolverNode(
        SolverConfig(
            rpc=world.anvil.url,
            deployment=world.deployment,
            api=world.api_url,
            data_dir=tmp_path / "staller",
            account=account,
            stake=1_000 * ETHER,
            price_floor=20 * ETHER,
            models=("mlp",),
            adversary=Stall(),
        )
    )
    node.start()
    try:
        spec = world.spec(40, 10, seed=23)
        job_id = world.post_order(spec)
        for _ in range(100):
            node.tick()
            if node.db.job(job_id) is not None:
                break
        world.accept(job_id, account.address)
        for _ in range(200):
            node.tick()
            if node.db.job(job_id).status == "committed":
                break
        challenger = Challenger(ChainClient(world.anvil.url, world.deployment, world.accounts[3]))
        dispute_id = challenger.open(bytes.fromhex(job_id[2:]))
        for _ in range(5):
            node.tick()
        d = world.contract("DisputeGame").functions.getDispute(dispute_id).call()
        assert d.phase == Phase.AWAITING_REVEAL  # the staller made no move
        increase_time(world.w3, int(world.params["game"]["clockBudget"]) + 1)
        assert challenger.step(dispute_id, 1) == "timeout"
        node.tick()
        assert world.job(job_id).state == SLASHED
        assert node.db.job(job_id).outcome == "slashed"
    finally:
        node.stop()
