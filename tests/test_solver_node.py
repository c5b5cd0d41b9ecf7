"""The solver node in-process on anvil (devnet parameters) against the marketplace API over HTTP:

* an honest solver bids (signed bid + signed ETA, profile published), wins (the test plays the submitter:
  order via the API, accept via the API's accept-call), trains, commits with its checkpoint server as uri,
  mirrors leaves + checkpoints, serves them, and after the audit window finalizes and withdraws its pay; its
  trajectory root equals ``veritrain train`` on the same spec;
* bad orders (spec blob missing, spec blob corrupt, unsupported model, wrong C_init) are skipped with a logged
  reason, nothing is bid, nothing is staked on them;
* the RPC dies right after the commit transaction left (a proxy drops the connection and refuses every
  request): the tick fails with a clear RpcUnavailable, the node keeps its state, and once the RPC is back it
  finds its commit on chain (no second commit, no stake lost).
"""

from __future__ import annotations

import json
import logging
import urllib.request

import pytest
from solver_world import ETHER, RpcProxy, World, build_world
from typer.testing import CliRunner

from protocol.anvil import Anvil, increase_time
from protocol.blobstore import HttpBlobClient
from protocol.errors import RpcUnavailable
from protocol.trajectory import Trajectory
from solver.node import SolverConfig, SolverNode
from veritrain.cli import app as cli_app

pytestmark = pytest.mark.chain

COMMITTED, FINALIZED = 2, 4


@pytest.fixture(scope="module")
def world(forge_build, tmp_path_factory):
    with Anvil() as anvil:
        w = build_world(tmp_path_factory.mktemp("solver-world"), anvil)
        yield w
        w.close()


@pytest.fixture(scope="module")
def proxy(world):
    p = RpcProxy(world.anvil.url)
    yield p
    p.close()


@pytest.fixture(scope="module")
def node(world: World, proxy: RpcProxy, tmp_path_factory):
    solver = world.accounts[2]
    world.mint(solver.address, 5_000 * ETHER)
    cfg = SolverConfig(
        rpc=proxy.url,
        deployment=world.deployment,
        api=world.api_url,
        data_dir=tmp_path_factory.mktemp("solver-node"),
        account=solver,
        stake=1_000 * ETHER,
        price_floor=20 * ETHER,
        max_steps=1_000,
        models=("mlp",),
        chain_retries=2,
    )
    n = SolverNode(cfg)
    n.client.backoff = 0.05
    n.start()
    yield n
    n.stop()


def tick_until(node: SolverNode, cond, what: str, max_ticks: int = 200):
    for _ in range(max_ticks):
        node.tick()
        if value := cond():
            return value
    pytest.fail(f"{what}: not reached after {max_ticks} ticks")


def test_honest_solver_bids_wins_trains_commits_and_is_paid(world: World, node: SolverNode, tmp_path):
    stakes, token = world.contract("StakeManager"), world.contract("VeriToken")
    pos = stakes.functions.positionOf(node.address).call()
    assert pos.free + pos.locked == 1_000 * ETHER  # staked at start from its token balance
    # its signed capability profile is published
    status, solver_doc = world.http("GET", f"/solvers/{node.address}")
    assert status == 200 and solver_doc["profile"]["profile"]["throughput"]["mlp"] > 0

    spec = world.spec(160, 20)  # 8 leaves
    job_id = world.post_order(spec)
    tick_until(node, lambda: node.db.job(job_id) is not None, "bid")
    row = node.db.job(job_id)
    assert row.status == "bid", row.reason
    (bid,) = world.bids(job_id)
    assert bid["bid"]["solver"] == node.address and int(bid["bid"]["price"]) == 20 * ETHER
    assert bid["eta_source"] == "signed" and bid["eta_seconds"] == row.eta_s > 0

    world.accept(job_id, node.address)
    tick_until(node, lambda: node.db.job(job_id).status == "committed", "commit")
    job = world.job(job_id)
    assert job.state == COMMITTED and job.numLeaves == 8

    # the same spec through `veritrain train` reaches the same root
    spec_file = tmp_path / "spec.json"
    spec_file.write_bytes(spec.canonical_json())
    result = CliRunner().invoke(cli_app, ["train", str(spec_file), "--out", str(tmp_path / "train"), "--json"])
    assert result.exit_code == 0, result.output
    reference = json.loads(result.output.strip().splitlines()[-1])
    assert "0x" + bytes(job.trajectoryRoot).hex() == reference["trajectory_root"] == node.db.job(job_id).root
    assert "0x" + bytes(job.finalStateRoot).hex() == reference["final_state_root"]

    # commit uri = its checkpoint server, which serves the leaf list and every checkpoint
    (event,) = (
        world.contract("JobMarket")
        .events.JobCommitted()
        .get_logs(from_block=0, argument_filters={"jobId": bytes.fromhex(job_id[2:])})
    )
    uri = event["args"]["uri"]
    assert uri == node.url
    with urllib.request.urlopen(f"{uri}/leaves/{job_id}") as resp:
        served = json.loads(resp.read())
    assert served["root"] == reference["trajectory_root"] and served["n"] == 8
    Trajectory.from_leaf_list([bytes.fromhex(x[2:]) for x in served["leaves"]], bytes(job.trajectoryRoot), 8)
    with HttpBlobClient(uri) as solver_blobs:
        for leaf in served["leaves"]:
            assert len(solver_blobs.get(leaf, "state")) > 0  # verified against the state root
        with pytest.raises(Exception):  # noqa: B017 - read-only server
            solver_blobs.put_state(solver_blobs.get(served["leaves"][0], "state"))
    # ... and mirrored them to the marketplace
    tick_until(node, lambda: node.db.job(job_id).mirrored, "mirror")
    status, mirrored = world.http("GET", f"/jobs/{job_id}/leaves")
    assert status == 200 and mirrored["leaves"] == served["leaves"]
    assert mirrored["root"] == served["root"] and mirrored["n"] == 8
    # the mirror takes only the committed list
    wrong = [served["leaves"][1], served["leaves"][0], *served["leaves"][2:]]
    status, err = world.http("PUT", f"/jobs/{job_id}/leaves", {"leaves": wrong})
    assert status == 422 and err["error"] == "root_mismatch"
    status, err = world.http("PUT", f"/jobs/{job_id}/leaves", {"leaves": served["leaves"][:-1]})
    assert status == 422 and err["error"] == "root_mismatch"
    status, err = world.http("PUT", f"/jobs/{job_id}/leaves", {"leaves": ["0x12"]})
    assert status == 422 and err["error"] == "bad_leaf"
    status, err = world.http("PUT", f"/jobs/0x{'77' * 32}/leaves", {"leaves": served["leaves"]})
    assert status == 409 and err["error"] == "not_committed"
    assert world.http("GET", f"/jobs/0x{'77' * 32}/leaves")[0] == 404
    assert world.http("PUT", f"/jobs/{job_id}/leaves", {"leaves": served["leaves"]})[0] == 200  # idempotent
    with HttpBlobClient(world.api_url) as api_blobs:
        for leaf in [spec.init_state_root, *served["leaves"]]:
            assert api_blobs.has(leaf, "state")

    # after the audit window the node finalizes and withdraws its pay
    balance = token.functions.balanceOf(node.address).call()
    increase_time(world.w3, int(world.params["market"]["auditWindow"]) + 1)
    tick_until(node, lambda: node.db.job(job_id).status == "done", "finalize")
    assert node.db.job(job_id).outcome == "finalized" and world.job(job_id).state == FINALIZED
    (fin,) = (
        world.contract("JobMarket")
        .events.JobFinalized()
        .get_logs(from_block=0, argument_filters={"jobId": bytes.fromhex(job_id[2:])})
    )
    paid = fin["args"]["solverPaid"]
    assert paid > 0
    assert token.functions.balanceOf(node.address).call() - balance == paid
    assert stakes.functions.positionOf(node.address).call().locked == 0

    with urllib.request.urlopen(f"{node.url}/metrics") as resp:
        metrics = resp.read().decode()
    assert "veritrain_solver_checkpoints_total 8" in metrics
    assert "veritrain_solver_bids_total 1" in metrics
    assert 'veritrain_solver_jobs{state="done"} 1' in metrics
    assert node.max_duty_gap_s < 10  # dispute duties were checked between segments


def test_bad_orders_are_skipped_with_a_reason(world: World, node: SolverNode, caplog):
    stakes = world.contract("StakeManager")
    before = stakes.functions.positionOf(node.address).call()
    # 1. the spec blob vanished from the marketplace store after the order was posted
    missing_spec = world.spec(40, 10, seed=7)
    missing = world.post_order(missing_spec)
    world.api_ctx.blobs.delete("0x" + missing_spec.spec_hash().hex())
    # 2. the stored spec blob is corrupt (the API will not serve bytes that do not match the address)
    corrupt_spec = world.spec(40, 10, seed=8)
    corrupt = world.post_order(corrupt_spec)
    world.api_ctx.blobs.path("0x" + corrupt_spec.spec_hash().hex(), "sha256").write_bytes(b"{not json")
    # 3. a model this solver does not run
    cnn = world.post_order(world.spec(8, 4, example="cnn_digits"))
    # 4. an order whose spec is fine but asks too many steps
    long = world.post_order(world.spec(2_000, 100))
    with caplog.at_level(logging.INFO, logger="veritrain.solver"):
        tick_until(node, lambda: all(node.db.job(j) for j in (missing, corrupt, cnn, long)), "skips")
    reasons = {j: node.db.job(j) for j in (missing, corrupt, cnn, long)}
    assert {r.status for r in reasons.values()} == {"skipped"}
    assert "missing" in reasons[missing].reason
    assert "corrupt" in reasons[corrupt].reason or "malformed" in reasons[corrupt].reason
    assert "unsupported model 'cnn'" in reasons[cnn].reason
    assert "--max-steps" in reasons[long].reason
    skipped = [r for r in caplog.records if getattr(r, "event", None) == "order-skipped"]
    assert {r.job_id for r in skipped} >= {missing, corrupt, cnn, long}
    for j in (missing, corrupt, cnn, long):
        assert world.bids(j) == []  # nothing bid
    node.tick()  # each is logged once, not on every poll
    assert len([r for r in caplog.records if getattr(r, "event", None) == "order-skipped"]) == len(skipped)
    after = stakes.functions.positionOf(node.address).call()
    assert (after.free, after.locked) == (before.free, before.locked)


def test_rpc_dying_mid_commit_loses_nothing(world: World, node: SolverNode, proxy: RpcProxy):
    stakes = world.contract("StakeManager")
    spec = world.spec(40, 10, seed=11)
    job_id = world.post_order(spec)
    tick_until(node, lambda: node.db.job(job_id) is not None, "bid")
    world.accept(job_id, node.address)
    tick_until(node, lambda: node.db.job(job_id).status == "trained", "trained")
    proxy.drop_after_send = True  # the commit is forwarded and mined, then the RPC dies
    with pytest.raises(RpcUnavailable, match="unavailable"):
        node.tick()
    assert proxy.sent_while_dropping, "the commit transaction never left the node"
    assert world.job(job_id).state == COMMITTED  # it was mined
    with pytest.raises(RpcUnavailable):
        node.tick()  # still down: the tick fails clearly, the state stays on disk
    assert node.db.job(job_id).status == "trained"
    proxy.up()
    tick_until(node, lambda: node.db.job(job_id).status == "committed", "commit found after the outage")
    commits = (
        world.contract("JobMarket")
        .events.JobCommitted()
        .get_logs(from_block=0, argument_filters={"jobId": bytes.fromhex(job_id[2:])})
    )
    assert len(commits) == 1  # not committed twice
    pos = stakes.functions.positionOf(node.address).call()
    assert pos.locked == world.job(job_id).stake and pos.free + pos.locked >= 1_000 * ETHER


def test_dispute_on_an_older_job_is_answered_while_training_a_new_one(world: World, node: SolverNode):
    """A wrongful challenge on a committed job is defended down to the leaf while one tick trains another job:
    the duties run between optimizer steps, so the gap stays far below the chess-clock budget."""
    import threading
    import time

    from protocol.chain import ChainClient
    from protocol.constants import Phase
    from verifier.challenge import Challenger

    old = world.post_order(world.spec(40, 10, seed=31))  # 4 leaves
    tick_until(node, lambda: node.db.job(old) is not None, "bid on the old job")
    world.accept(old, node.address)
    tick_until(node, lambda: node.db.job(old).status == "committed", "old job committed")
    wide = {"kind": "mlp", "input_dim": 64, "hidden": [512, 512], "num_classes": 10, "activation": "relu"}
    new = world.post_order(world.spec(500, 250, seed=32, model=wide))  # 2 long segments (seconds to tens of seconds)
    tick_until(node, lambda: node.db.job(new) is not None, "bid on the new job")
    world.accept(new, node.address)

    world.stake_verifier(world.accounts[3], 1_000 * ETHER)
    challenger = Challenger(ChainClient(world.anvil.url, world.deployment, world.accounts[3], poll_interval=0.05))
    dispute_id = challenger.open(bytes.fromhex(old[2:]))
    game = world.contract("DisputeGame")
    reached: list[float] = []

    def challenge() -> None:  # the challenger plays on its own thread while the node is inside one tick
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if game.functions.getDispute(dispute_id).call().phase >= Phase.AWAITING_COMMITTEE:
                reached.append(time.monotonic())
                return
            challenger.step(dispute_id, 2)
            time.sleep(0.05)

    node.cfg.duty_interval_s, node.cfg.train_slice_s = 0.25, 120.0
    node.max_duty_gap_s = 0.0
    player = threading.Thread(target=challenge, daemon=True)
    player.start()
    node.tick()  # trains the whole new job in this one tick
    trained_at = time.monotonic()
    player.join(60)
    assert node.db.job(new).status == "trained"
    assert reached and reached[0] < trained_at, "the dispute waited for the training to finish"
    d = game.functions.getDispute(dispute_id).call()
    assert (d.lo, d.hi) == (2, 3) and d.postStateRoot != b"\x00" * 32  # revealed down to the leaf and opened it
    budget = int(world.params["game"]["clockBudget"])
    print(f"worst gap between dispute-duty checks while training: {node.max_duty_gap_s:.3f}s (clock {budget}s)")
    assert node.max_duty_gap_s < budget / 10, node.max_duty_gap_s
    assert budget - int(d.solverClock) < budget / 3  # the solver spent little of its clock
    node.cfg.duty_interval_s, node.cfg.train_slice_s = 1.0, 2.0
