"""``veritrain audit``: the auditor rebuilds disputes and jobs from raw chain data and checks every rule.

Real disputes are played on anvil by the node-side players (tests/dispute_scenarios.py): a lying solver
slashed, an honest solver wrongly challenged (the challenger's bond slashed), a withholding solver
(UNAVAILABLE votes), a stalling solver (timeout), and one where an arbiter never reveals (its stake forfeited
to the majority). The audit must pass on each, from the chain and from an exported record, and must fail,
naming the violated rule, on records doctored one fact at a time.
"""

from __future__ import annotations

import copy
import json

import pytest
from dispute_scenarios import (
    ETHER,
    honest_replay,
    make_players,
    make_world,
    new_job,
    play,
    start,
    withheld_replay,
)
from eth_utils import keccak
from typer.testing import CliRunner

from protocol import merkle
from protocol.anvil import increase_time, mine_past
from protocol.audit import (
    DisputeRecord,
    JobRecord,
    audit_dispute,
    audit_job,
    read_dispute,
    read_job,
)
from protocol.audit.record import ARBITER_TAG, BOND_TAG, UNAVAILABLE, dispute_key, to_hex
from protocol.blockheader import seed_header
from protocol.chain import ChainClient
from protocol.trajectory import Trajectory
from protocol.tx import send
from veritrain.cli import app as cli

pytestmark = pytest.mark.chain

SOLVER_WON, CHALLENGER_WON = 1, 2


@pytest.fixture(scope="module")
def world(anvil, w3, deployment, contracts, actors, tmp_path_factory):
    return make_world(
        anvil, w3, deployment, contracts, actors, tmp_path_factory.mktemp("arbiters"), solver_topup=3_000 * ETHER
    )


@pytest.fixture(scope="module")
def reader(anvil, deployment) -> ChainClient:
    """The auditor's client: no key, only the RPC and the deployment."""
    return ChainClient(anvil.url, deployment, None, retries=2)


@pytest.fixture(scope="module")
def played(w3, deployment, contracts, actors, world) -> dict[str, tuple[int, bytes]]:
    """Plays the five disputes once for the module: name → (dispute id, job id)."""
    out = {}
    # a lying solver; the audit is drawn first so the job audit has sampled segments to check
    job_id, leaves = new_job(w3, deployment, contracts, actors, world, n=13, lie_from=9)
    seed_block = contracts.market.functions.getJob(job_id).call().seedBlock
    mine_past(w3, seed_block)
    send(w3, actors.deployer, contracts.market.functions.drawAudit(job_id, seed_header(w3, seed_block)))
    from dispute_scenarios import Game

    game = Game(job_id=job_id, leaves=leaves, bad_leaf=9)
    players = make_players(world, actors, {job_id: leaves}, honest_replay)
    game.dispute_id = players.challenger.open(job_id)
    play(w3, contracts, game, players)
    out["cheater-slashed"] = (game.dispute_id, job_id)

    game, players = start(w3, deployment, contracts, actors, world, n=8, lie_from=None, bad_leaf=5)
    play(w3, contracts, game, players)
    out["false-accuser-slashed"] = (game.dispute_id, game.job_id)

    game, players = start(
        w3, deployment, contracts, actors, world, n=8, lie_from=None, bad_leaf=0, replay=withheld_replay
    )
    play(w3, contracts, game, players)
    out["unavailable"] = (game.dispute_id, game.job_id)

    game, players = start(w3, deployment, contracts, actors, world, n=5, lie_from=None, bad_leaf=2)
    assert players.challenger.step(game.dispute_id, game.bad_leaf) == "wait"
    increase_time(w3, int(contracts.game.functions.params().call().clockBudget) + 1)
    assert players.challenger.step(game.dispute_id, game.bad_leaf) == "timeout"
    out["timeout"] = (game.dispute_id, game.job_id)

    # an arbiter that never reveals: the others resolve after the reveal deadline
    game, players = start(w3, deployment, contracts, actors, world, n=6, lie_from=3, bad_leaf=3)
    silent: list[str] = []

    def silence_first_arbiter(g, current):
        if g.moves[-1][1] == "draw-committee" and not silent:
            silent.append(contracts.game.functions.committee(g.dispute_id).call()[0])
            current.arbiters = [a for a in current.arbiters if a.client.address != silent[0]]
        return None

    play(w3, contracts, game, players, on_move=silence_first_arbiter)
    assert silent
    out["silent-arbiter"] = (game.dispute_id, game.job_id)
    return out


@pytest.fixture(scope="module")
def records(played, reader) -> dict[str, DisputeRecord]:
    return {name: read_dispute(reader, dispute_id) for name, (dispute_id, _) in played.items()}


SCENARIOS = ["cheater-slashed", "false-accuser-slashed", "unavailable", "timeout", "silent-arbiter"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_audit_passes_on_real_disputes(records, name):
    rec = records[name]
    verdict = audit_dispute(rec)
    assert verdict.ok, json.dumps(verdict.to_json(), indent=1)
    assert len(verdict.checks) >= 17 and all(c.ok for c in verdict.checks)
    # an exported record (plain JSON) reloads and audits the same
    again = audit_dispute(DisputeRecord.from_json(json.loads(json.dumps(rec.to_json()))))
    assert again.to_json() == verdict.to_json()


def test_audit_reports_what_happened(records, contracts, actors):
    details = {n: {c.rule: c.detail for c in audit_dispute(r).checks} for n, r in records.items()}
    assert details["cheater-slashed"]["descent.path"].startswith(
        f"{merkle.leaf_depth(9, 13)} round(s) from the root to leaf 9 of 13"
    )
    assert "challenger_won" in details["cheater-slashed"]["outcome.majority"]
    assert "solver_won" in details["false-accuser-slashed"]["outcome.majority"]
    assert "3 UNAVAILABLE" in details["unavailable"]["vote.commit-reveal"]
    assert details["unavailable"]["leaf.pre-state"].startswith("leaf 0: pre-state is C_init")
    assert "the solver to move" in details["timeout"]["clock.timeout"]
    assert "2 matching reveal(s)" in details["silent-arbiter"]["vote.commit-reveal"]
    # the committee was re-drawn exactly (one transaction per block on this anvil)
    assert "equal to drawDistinct re-run" in details["cheater-slashed"]["committee.members"]
    # the lock keys the auditor derives are the contract's (the StakeLocked events of the real dispute)
    rec = records["cheater-slashed"]
    keys = {e.args["key"] for t in rec.txs for e in t.events_named("StakeLocked")}
    assert to_hex(dispute_key(BOND_TAG, rec.dispute_id)) in keys
    assert to_hex(dispute_key(ARBITER_TAG, rec.dispute_id)) in keys
    assert rec.unavailable == to_hex(UNAVAILABLE)


# --------------------------------------------------------------------------------------- doctored records


def doctored(rec: DisputeRecord) -> dict:
    return copy.deepcopy(rec.to_json())


def first_violation(data: dict) -> str:
    verdict = audit_dispute(DisputeRecord.from_json(data))
    assert not verdict.ok
    return verdict.first_violation.rule


def txs_with(data: dict, event: str) -> list[dict]:
    return [t for t in data["txs"] if any(e["name"] == event for e in t["events"])]


def event_of(tx: dict, name: str) -> dict:
    return next(e for e in tx["events"] if e["name"] == name)["args"]


def test_forged_move_fails_reveal_hash(records):
    data = doctored(records["cheater-slashed"])
    tx = txs_with(data, "ChildrenRevealed")[1]
    forged = to_hex(keccak(text="forged child"))
    event_of(tx, "ChildrenRevealed")["left"] = forged
    tx["args"]["left"] = forged
    assert first_violation(data) == "descent.reveal-hash"


def test_proof_for_the_wrong_index_fails_pre_state(records):
    rec = records["cheater-slashed"]
    data = doctored(rec)
    tx = txs_with(data, "LeafOpened")[0]
    index = event_of(tx, "LeafOpened")["index"]
    # the pre-state proof of leaf i-2 (a real proof, for the wrong index) in place of leaf i-1's
    from dispute_scenarios import INIT_ROOT, toy_leaves

    leaves = toy_leaves(INIT_ROOT, 13, lie_from=9)
    wrong = Trajectory.in_memory(leaves).proof(index - 2)
    tx["args"]["preProof"] = [to_hex(h) for h in wrong]
    assert first_violation(data) == "leaf.pre-state"


def test_opened_leaf_at_another_index_fails_path(records):
    data = doctored(records["cheater-slashed"])
    tx = txs_with(data, "LeafOpened")[0]
    event_of(tx, "LeafOpened")["index"] += 1
    assert first_violation(data) == "descent.path"


def test_result_contradicting_the_majority_fails_outcome(records):
    data = doctored(records["cheater-slashed"])
    ev = event_of(txs_with(data, "DisputeResolved")[0], "DisputeResolved")
    ev["outcome"] = SOLVER_WON
    ev["winner"], ev["loser"] = ev["loser"], ev["winner"]
    assert first_violation(data) == "outcome.majority"


def test_unavailable_votes_cannot_be_counted_for_the_solver(records):
    data = doctored(records["unavailable"])
    ev = event_of(txs_with(data, "DisputeResolved")[0], "DisputeResolved")
    assert ev["outcome"] == CHALLENGER_WON
    ev["outcome"] = SOLVER_WON
    assert first_violation(data) == "outcome.majority"


def test_wrong_transfer_amount_fails_credits(records):
    data = doctored(records["cheater-slashed"])
    tx = txs_with(data, "DisputeResolved")[0]
    credit = next(e for e in tx["events"] if e["name"] == "Credited")
    credit["args"]["amount"] += 1
    assert first_violation(data) == "settle.credits"


def test_wrong_burn_fails_burn(records):
    data = doctored(records["false-accuser-slashed"])
    tx = txs_with(data, "DisputeResolved")[0]
    burn = next(e for e in tx["events"] if e["name"] == "Transfer")
    burn["args"]["value"] -= 1
    assert first_violation(data) == "settle.burn"


def test_clock_overrun_fails_clock(records):
    rec = records["cheater-slashed"]
    data = doctored(rec)
    budget = int(rec.params["game"]["clockBudget"])
    # the solver's second reveal arrives after its whole clock (and everything after it later still)
    moves = txs_with(data, "ChildrenRevealed")
    late_from = data["txs"].index(moves[1])
    for tx in data["txs"][late_from:]:
        tx["timestamp"] += budget + 1
    assert first_violation(data) == "clock.moves"


def test_early_timeout_fails_timeout(records):
    data = doctored(records["timeout"])
    tx = txs_with(data, "DisputeResolved")[0]
    tx["timestamp"] = data["txs"][0]["timestamp"] + 5
    assert first_violation(data) == "clock.timeout"


def test_vote_not_matching_its_commitment_fails(records):
    data = doctored(records["false-accuser-slashed"])
    tx = txs_with(data, "VoteRevealed")[0]
    event_of(tx, "VoteRevealed")["salt"] = to_hex(keccak(text="other salt"))
    assert first_violation(data) == "vote.commit-reveal"


def test_excluded_party_on_the_committee_fails(records):
    rec = records["cheater-slashed"]
    data = doctored(rec)
    ev = event_of(txs_with(data, "CommitteeDrawn")[0], "CommitteeDrawn")
    ev["arbiters"][0] = event_of(data["txs"][0], "DisputeOpened")["challenger"]
    assert first_violation(data) == "committee.members"


def test_committee_fallback_when_the_draw_state_is_not_the_previous_block(records):
    """With another StakeManager transaction earlier in the drawing block (a devnet with --block-time), the
    re-draw at the previous block is not exact: each member must still have had draw weight there."""
    data = doctored(records["cheater-slashed"])
    draw = data["committee_draw"]
    draw["exact"], draw["note"], draw["drawn"] = False, "1 StakeManager log from an earlier transaction", []
    verdict = audit_dispute(DisputeRecord.from_json(data))
    assert verdict.ok and "exact re-draw impossible" in {c.rule: c.detail for c in verdict.checks}["committee.members"]
    member = event_of(txs_with(data, "CommitteeDrawn")[0], "CommitteeDrawn")["arbiters"][1]
    draw["weights"][member] = 0
    assert first_violation(data) == "committee.draw-weights"
    # exact re-draw disagreeing with the contract's draw
    data = doctored(records["cheater-slashed"])
    data["committee_draw"]["drawn"].reverse()
    assert first_violation(data) == "committee.members"


def test_forged_committee_seed_fails(records):
    data = doctored(records["cheater-slashed"])
    (number,) = [k for k in data["blocks"]]
    data["blocks"][number]["randao"] = to_hex(keccak(text="another RANDAO value"))
    assert first_violation(data) == "committee.seed"
    # a header the RPC node served that does not hash to the block hash proves no RANDAO value
    data = doctored(records["cheater-slashed"])
    data["blocks"][number]["randao"], data["blocks"][number]["header_error"] = None, "hashes to 0x00"
    assert first_violation(data) == "committee.seed"


def test_draw_with_weights_of_another_block_fails(records):
    """A re-run that read the weights of any block but seedBlock - 2 is no proof the draw was fair."""
    data = doctored(records["cheater-slashed"])
    data["committee_draw"]["weights_block"] += 1
    assert first_violation(data) == "committee.draw-weights"


# --------------------------------------------------------------------------------------------- job audits


def test_job_audit_passes_and_covers_the_draw(played, reader):
    _, job_id = played["cheater-slashed"]
    rec = read_job(reader, job_id)
    verdict = audit_job(rec)
    assert verdict.ok, json.dumps(verdict.to_json(), indent=1)
    detail = {c.rule: c.detail for c in verdict.checks}
    assert "segments [" in detail["job.audit-draw"] and "verifier(s)" in detail["job.audit-draw"]
    assert rec.dispute_ids == [played["cheater-slashed"][0]]
    data = copy.deepcopy(rec.to_json())
    drawn = next(t for t in data["txs"] if any(e["name"] == "AuditDrawn" for e in t["events"]))
    event_of(drawn, "AuditDrawn")["segments"][0] ^= 1
    assert audit_job(JobRecord.from_json(data)).first_violation.rule == "job.audit-draw"
    assert "by the weights at the end of block" in detail["job.draw-weights"]
    for doctor in ("weights_block", "weights"):
        data = copy.deepcopy(rec.to_json())
        if doctor == "weights_block":
            data["audit_draw"]["weights_block"] -= 1  # re-run against weights that could have moved after the seed
        else:
            data["audit_draw"]["weights"] = {}  # the assigned verifiers weighed nothing then
        assert audit_job(JobRecord.from_json(data)).first_violation.rule == "job.draw-weights", doctor
    data = copy.deepcopy(rec.to_json())
    match = next(t for t in data["txs"] if t["function"] == "acceptBid")
    match["args"]["bidSig"], match["args"]["orderSig"] = match["args"]["orderSig"], match["args"]["bidSig"]
    assert audit_job(JobRecord.from_json(data)).first_violation.rule == "job.match"


def test_finalized_job_audit(w3, deployment, contracts, actors, world, reader):
    job_id, _ = new_job(w3, deployment, contracts, actors, world, n=4, lie_from=None)
    seed_block = contracts.market.functions.getJob(job_id).call().seedBlock
    mine_past(w3, seed_block)
    send(w3, actors.deployer, contracts.market.functions.drawAudit(job_id, seed_header(w3, seed_block)))
    accounts = {a.address: a for a in (actors.challenger, *actors.verifiers)}
    assigned = contracts.market.functions.assignedVerifiers(job_id).call()
    send(w3, accounts[assigned[0]], contracts.market.functions.attest(job_id))
    increase_time(w3, int(contracts.market.functions.params().call().auditWindow) + 1)
    send(w3, actors.deployer, contracts.market.functions.finalize(job_id))
    rec = read_job(reader, job_id)
    verdict = audit_job(rec)
    assert verdict.ok, json.dumps(verdict.to_json(), indent=1)
    assert {c.rule: c.detail for c in verdict.checks}["job.settlement"].startswith("finalized: solver")
    data = copy.deepcopy(rec.to_json())
    fin = next(t for t in data["txs"] if t["function"] == "finalize")
    event_of(fin, "JobFinalized")["solverPaid"] += 1
    assert audit_job(JobRecord.from_json(data)).first_violation.rule == "job.settlement"


# ----------------------------------------------------------------------------------------------------- CLI


def test_cli_dispute_exit_codes_and_offline_record(played, anvil, deployment, tmp_path, artifacts_dir):
    runner = CliRunner()
    dispute_id, job_id = played["cheater-slashed"]
    base = ["--rpc", anvil.url, "--deployment", str(deployment.path)]
    export = tmp_path / "record.json"
    res = runner.invoke(cli, ["audit", "dispute", str(dispute_id), *base, "--export", str(export)])
    assert res.exit_code == 0, res.output
    assert "✓ descent.reveal-hash" in res.output and "PASS: all" in res.output
    (artifacts_dir / "audit-dispute.txt").write_text(res.output)  # what an auditor sees
    res = runner.invoke(cli, ["audit", "dispute", str(dispute_id), *base, "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["ok"] is True
    # the exported record checks offline (no RPC at all); doctored, it fails naming the rule
    res = runner.invoke(
        cli, ["audit", "dispute", str(dispute_id), "--record", str(export), "--rpc", "http://127.0.0.1:9"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(export.read_text())
    ev = event_of(txs_with(data, "DisputeResolved")[0], "DisputeResolved")
    ev["slashed"] = 1
    export.write_text(json.dumps(data))
    res = runner.invoke(cli, ["audit", "dispute", str(dispute_id), "--record", str(export), "--json"])
    assert res.exit_code == 1
    assert json.loads(res.output)["first_violation"]["rule"] == "outcome.majority"
    res = runner.invoke(cli, ["audit", "dispute", str(dispute_id), "--record", str(export)])
    assert res.exit_code == 1 and "VIOLATION of outcome.majority" in res.output
    (artifacts_dir / "audit-dispute-doctored.txt").write_text(res.output)
    # could not read: no such dispute, RPC down, bad record
    res = runner.invoke(cli, ["audit", "dispute", "999", *base])
    assert res.exit_code == 2 and "no events of dispute 999" in res.output
    res = runner.invoke(
        cli, ["audit", "dispute", "1", "--rpc", "http://127.0.0.1:9", "--deployment", str(deployment.path)]
    )
    assert res.exit_code == 2 and "unavailable" in res.output
    (tmp_path / "bad.json").write_text("{not json")
    res = runner.invoke(cli, ["audit", "dispute", "1", "--record", str(tmp_path / "bad.json")])
    assert res.exit_code == 2 and "not valid JSON" in res.output
    # the job, with its dispute
    res = runner.invoke(cli, ["audit", "job", to_hex(job_id), *base, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["ok"] and [c["subject"] for c in out["children"]] == [f"dispute {dispute_id}"]
    res = runner.invoke(cli, ["audit", "job", "0x1234", *base])
    assert res.exit_code == 2 and "64 hex" in res.output


# ------------------------------------------------------------------------------------------------ --replay


@pytest.fixture(scope="module")
def engine_job(tmp_path_factory):
    """A real 4-segment job trained by the engine, its blobs (spec, every checkpoint) served over HTTP by the
    blob router, as a solver's checkpoint server does."""
    from fastapi import FastAPI

    from protocol.blobserver import blob_router
    from protocol.blobstore import LocalBlobStore
    from protocol.engine.data import load_dataset
    from protocol.engine.examples import load_example, shortened
    from protocol.engine.runner import run_job
    from protocol.node import HttpService

    spec = shortened(load_example("mlp_digits"), 4, 1)
    store = LocalBlobStore(tmp_path_factory.mktemp("solver-blobs"))
    result = run_job(spec, load_dataset(spec.dataset), store, Trajectory.in_memory())
    assert store.put(spec.canonical_json()) == to_hex(spec.spec_hash())
    app = FastAPI()
    app.include_router(blob_router(store))
    service = HttpService(app).start()
    yield spec, result, service.url
    service.stop()


def opened_leaf_record(w3, deployment, contracts, actors, world, reader, engine_job, *, leaves, bad_leaf):
    """Commits ``leaves`` for the engine job and plays the descent until the solver opens ``bad_leaf``."""
    from dispute_scenarios import Game

    from protocol.constants import Phase

    spec, result, url = engine_job
    job_id, _ = new_job(
        w3, deployment, contracts, actors, world, n=len(leaves), lie_from=None, leaves=leaves,
        init_root=result.init_state_root, spec_hash=spec.spec_hash(), interval=1, uri=url,
    )  # fmt: skip
    game = Game(job_id=job_id, leaves=leaves, bad_leaf=bad_leaf)
    players = make_players(world, actors, {job_id: leaves}, honest_replay)
    game.dispute_id = players.challenger.open(job_id)
    for _ in range(20):
        if contracts.game.functions.getDispute(game.dispute_id).call().phase >= Phase.AWAITING_COMMITTEE:
            break
        players.defender.step(game.dispute_id)
        players.challenger.step(game.dispute_id, bad_leaf)
    return read_dispute(reader, game.dispute_id)


def test_replay_says_which_side_told_the_truth(w3, deployment, contracts, actors, world, reader, engine_job, tmp_path):
    from protocol.audit.replay import replay_dispute

    _, result, _ = engine_job
    lying = list(result.leaves)
    lying[2] = keccak(text="a segment never trained")
    rec = opened_leaf_record(w3, deployment, contracts, actors, world, reader, engine_job, leaves=lying, bad_leaf=2)
    assert audit_dispute(rec).ok  # an unresolved dispute: every rule so far holds
    r = replay_dispute(rec)
    assert (r.index, r.truthful, r.replayed) == (2, "challenger", to_hex(result.leaves[2]))

    rec = opened_leaf_record(
        w3, deployment, contracts, actors, world, reader, engine_job, leaves=list(result.leaves), bad_leaf=3
    )
    r = replay_dispute(rec)
    assert (r.index, r.truthful, r.replayed) == (3, "solver", to_hex(result.leaves[3]))

    # the solver's server gone and no mirror: the inputs cannot be fetched, as an arbiter would vote UNAVAILABLE
    data = rec.to_json()
    for t in data["job_txs"]:
        for e in t["events"]:
            if e["name"] == "JobCommitted":
                e["args"]["uri"] = "http://127.0.0.1:9"
    path = tmp_path / "gone.json"
    path.write_text(json.dumps(data))
    res = CliRunner().invoke(
        cli, ["audit", "dispute", str(rec.dispute_id), "--record", str(path), "--replay", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["replay"]["truthful"] == "unknown"
    assert "UNAVAILABLE" in json.loads(res.output)["replay"]["detail"]


def test_replay_reads_a_pre_state_nobody_serves_from_its_chain_publication(
    w3, deployment, contracts, actors, world, reader, engine_job, tmp_path
):
    """The solver's server keeps the spec but withholds the pre-state: off-chain the replay cannot be done; once
    the pre-state is published on chain (an availability challenge's answer), ``--replay`` reads it from there."""
    from fastapi import FastAPI

    from protocol.audit.replay import replay_dispute
    from protocol.blobserver import blob_router
    from protocol.blobstore import HttpBlobClient, LocalBlobStore
    from protocol.node import HttpService
    from protocol.publication import publish_leaf

    spec, result, url = engine_job
    leaves = list(result.leaves)
    rec = opened_leaf_record(w3, deployment, contracts, actors, world, reader, engine_job, leaves=leaves, bad_leaf=3)
    with HttpBlobClient(url) as full:
        pre_state = full.get(leaves[2], "state")
    spec_only = LocalBlobStore(tmp_path / "spec-only")
    spec_only.put(spec.canonical_json())
    app = FastAPI()
    app.include_router(blob_router(spec_only))
    service = HttpService(app).start()
    try:
        data = rec.to_json()
        for t in data["job_txs"]:
            for e in t["events"]:
                if e["name"] == "JobCommitted":
                    e["args"]["uri"] = service.url
        withheld = DisputeRecord.from_json(data)
        r = replay_dispute(withheld, client=reader)
        assert (r.index, r.truthful) == (3, "unknown"), r

        client_for, _ = world
        job_id = bytes.fromhex(rec.job_id[2:])
        proof = Trajectory.in_memory(leaves).proof(2, len(leaves))
        assert publish_leaf(client_for(actors.verifiers[0]), job_id, 2, pre_state, proof) == len(pre_state)
        assert replay_dispute(withheld).truthful == "unknown", "without a chain client nothing is read from it"
        r = replay_dispute(withheld, client=reader)
        assert (r.index, r.truthful, r.replayed) == (3, "solver", to_hex(leaves[3])), r
        assert "chain publication" in r.detail
    finally:
        service.stop()
