"""The verifier node in-process against anvil: :meth:`VerifierNode.tick` of six verifier nodes driven
by the test, jobs committed by the test from a real engine trajectory (``train_to_dir``) served over HTTP by a
blob server with a ``/leaves/{jobId}`` route, the solver's side played by :class:`solver.defence.DisputeDefender`.

* honest trajectory → the assigned verifiers replay every sampled segment, attest, the job finalizes and they
  are paid their fee;
* a doctored leaf → a mismatch → dispute → descent to exactly that leaf (rounds == its RFC 9162 depth) →
  arbitration by replay → the solver is slashed, the challenger paid its share, the submitter refunded;
* the challenger node is torn down mid-descent and rebuilt from its data directory: it still wins;
* ``--adversary accuse`` disputes honest work, really plays, and loses its bond; the honest stake is intact.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from pathlib import Path

import pytest
from fastapi import FastAPI, HTTPException

from protocol import merkle
from protocol.anvil import increase_time, mine
from protocol.audit.record import dispute_bond_for
from protocol.blobserver import blob_router
from protocol.blobstore import LocalBlobStore
from protocol.chain import ChainClient
from protocol.constants import Phase
from protocol.deploy import deploy
from protocol.eip712 import Bid, Domain, JobOrder
from protocol.engine import load_dataset, train_to_dir
from protocol.engine.examples import load_example, shortened
from protocol.node import HttpService
from protocol.replay import leaves_match_root
from protocol.trajectory import Trajectory
from solver.defence import DisputeDefender
from verifier.audit import MATCH, MISMATCH, UNAVAILABLE, AuditResult
from verifier.node import VerifierNode

pytestmark = pytest.mark.chain

ETHER = 10**18
PRICE = 100 * ETHER
FINALIZED, SLASHED, COMMITTED = 4, 5, 2
SOLVER_WON, CHALLENGER_WON = 1, 2
N = 8
_nonce = itertools.count(50_000)


@pytest.fixture(scope="module")
def deployment(w3, dev, tmp_path_factory):
    """Devnet rules with a full audit (every segment sampled) and roomy clocks: the test moves time itself."""
    params = json.loads((Path(__file__).parents[1] / "contracts/params/devnet.json").read_text())
    params["market"].update(auditRateBps=10_000, auditWindow=600)
    params["game"].update(clockBudget=600, commitPeriod=120, revealPeriod=120)
    tmp = tmp_path_factory.mktemp("verifier-deploy")
    (tmp / "params.json").write_text(json.dumps(params))
    return deploy(w3, dev[0], tmp / "params.json", out_path=tmp / "deployment.json")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real 8-segment MLP trajectory (exact mode) and the solver's blob store holding every checkpoint."""
    spec = shortened(load_example("mlp_digits"), 32, 4, model={"kind": "mlp", "input_dim": 64, "hidden": [32],
                                                               "num_classes": 10})  # fmt: skip
    out = tmp_path_factory.mktemp("solver-job")
    result = train_to_dir(spec, load_dataset(spec.dataset), out, evaluate=False)
    store = LocalBlobStore(out / "blobs")
    store.put(result.spec.canonical_json())  # the spec blob, addressed by its hash (= the order's specHash)
    return result, store


@pytest.fixture(scope="module")
def server(trained):
    """The solver's checkpoint server: /blobs (verified store) and /leaves/{jobId} (what the test committed)."""
    _, store = trained
    served: dict[str, list[bytes]] = {}
    app = FastAPI()
    app.include_router(blob_router(store))

    @app.get("/leaves/{job_id}")
    def leaves(job_id: str) -> dict:
        if job_id not in served:
            raise HTTPException(404, "unknown job")
        ls = served[job_id]
        root = merkle.rfc9162_root([merkle.leaf_hash(x) for x in ls])
        return {"job_id": job_id, "root": "0x" + root.hex(), "n": len(ls), "leaves": ["0x" + x.hex() for x in ls]}

    svc = HttpService(app, "127.0.0.1", 0).start()
    svc.served = served
    yield svc
    svc.stop()


def client_for(anvil, deployment, account) -> ChainClient:
    return ChainClient(anvil.url, deployment, account, poll_interval=0.02, retries=2)


def commit_job(anvil, w3, deployment, contracts, actors, trained, server, leaves: list[bytes]) -> bytes:
    """Submitter's order + solver's bid matched on chain, then the solver commits ``leaves`` with the server's
    URL as ``uri``. Returns the job id."""
    result, _ = trained
    spec = result.spec
    domain = Domain(chain_id=w3.eth.chain_id, verifying_contract=deployment.address_of("JobMarket"))
    now = int(w3.eth.get_block("latest")["timestamp"])
    order = JobOrder(
        submitter=actors.submitter.address,
        specHash=spec.spec_hash(),
        datasetHash=bytes.fromhex(spec.dataset.digest[2:]),
        initStateRoot=result.init_state_root,
        totalSteps=spec.total_steps,
        checkpointInterval=spec.checkpoint_interval,
        maxPrice=PRICE,
        deadline=now + 86_400,
        nonce=next(_nonce),
    )
    market = contracts.market
    bid = Bid(
        solver=actors.solver.address,
        orderHash=order.digest(domain),
        price=PRICE,
        stake=market.functions.requiredStake(PRICE).call(),
        expiry=now + 3_600,
        nonce=next(_nonce),
        workTime=3_600,
    )
    sub = client_for(anvil, deployment, actors.submitter)
    sub.transact(
        market.functions.acceptBid(
            order.as_abi_tuple(),
            order.sign(domain, actors.submitter),
            bid.as_abi_tuple(),
            bid.sign(domain, actors.solver),
        )
    )
    job_id = order.digest(domain)
    traj = Trajectory.in_memory(leaves)
    server.served["0x" + job_id.hex()] = list(leaves)
    solver = client_for(anvil, deployment, actors.solver)
    solver.transact(market.functions.commit(job_id, traj.root(), len(leaves), leaves[-1], traj.proof(len(leaves) - 1),
                                            server.url))  # fmt: skip
    return job_id


@pytest.fixture(scope="module")
def world(anvil, w3, deployment, contracts, actors, trained, server, tmp_path_factory):
    root = tmp_path_factory.mktemp("verifiers")
    accounts = [actors.challenger, *actors.verifiers]
    defender = DisputeDefender(client_for(anvil, deployment, actors.solver), lambda job: Trajectory.in_memory(
        server.served["0x" + job.hex()]))  # fmt: skip

    def node(account, adversary=None) -> VerifierNode:
        return VerifierNode(client_for(anvil, deployment, account), root / account.address, None,
                            adversary=adversary)  # fmt: skip

    return {"accounts": accounts, "node": node, "defender": defender, "root": root}


def drive(w3, contracts, job_id, nodes, defender, *, until, timeout=180.0, on_loop=None) -> None:
    """Ticks every node and the solver's defender, mining a block per round; once the job is committed with no
    dispute and every assigned verifier attested (or nobody will), moves the clock past the audit window."""
    market, game = contracts.market, contracts.game
    deadline = time.monotonic() + timeout
    window = int(market.functions.params().call().auditWindow)
    while time.monotonic() < deadline:
        for n in nodes:
            n.tick()
        did = game.functions.latestDisputeOf(job_id).call()
        if did:
            defender.step(did)
        job = market.functions.getJob(job_id).call()
        if until(job):
            return
        if on_loop is not None:
            nodes = on_loop(nodes) or nodes
        if job.state == COMMITTED and job.seed != b"\x00" * 32:
            assigned = market.functions.assignedVerifiers(job_id).call()
            quiet = all(not n._tasks for n in nodes)
            disputes_done = not did or game.functions.getDispute(did).call().phase == Phase.RESOLVED
            honest = {n.me for n in nodes if n.adversary is None}
            attested = all(market.functions.hasAttested(job_id, a).call() for a in assigned if a in honest)
            if quiet and disputes_done and attested:
                increase_time(w3, window + 1)
                continue
        mine(w3)
        time.sleep(0.05)
    pytest.fail(f"job 0x{job_id.hex()} did not reach the expected state in {timeout}s: {job}")


def balances(contracts, addrs) -> dict[str, int]:
    token, stakes = contracts.token, contracts.stakes
    out = {}
    for a in addrs:
        p = stakes.functions.positionOf(a).call()
        out[a] = token.functions.balanceOf(a).call() + p.free + p.locked + p.unbonding + p.claimable
    return out


def side_choices(contracts, dispute_id: int) -> int:
    return len(contracts.game.events.SideChosen().get_logs(from_block=0, argument_filters={"disputeId": dispute_id}))


def test_honest_job_is_attested_and_finalized(anvil, w3, deployment, contracts, actors, trained, server, world):
    result, _ = trained
    job_id = commit_job(anvil, w3, deployment, contracts, actors, trained, server, result.leaves)
    nodes = [world["node"](a) for a in world["accounts"]]
    before = balances(contracts, [actors.solver.address])
    drive(w3, contracts, job_id, nodes, world["defender"], until=lambda j: j.state == FINALIZED)
    assigned = contracts.market.functions.assignedVerifiers(job_id).call()
    assert len(assigned) == 2
    by_addr = {n.me: n for n in nodes}
    for a in assigned:
        row = by_addr[a]._job_row("0x" + job_id.hex())
        audit = AuditResult.from_json(json.loads(row["audit"]))
        assert audit.segments == {i: MATCH for i in range(N)}  # full audit: every segment replayed, all matched
        assert row["plan"] == "assigned" and row["attested"] == 1
        assert by_addr[a].metrics.attestations.value() == 1
    assert contracts.game.functions.latestDisputeOf(job_id).call() == 0
    assert balances(contracts, [actors.solver.address])[actors.solver.address] >= before[actors.solver.address]
    for n in nodes:
        n.close()


def test_doctored_leaf_is_disputed_to_its_depth_and_slashed_with_a_restart(
    anvil, w3, deployment, contracts, actors, trained, server, world
):
    result, _ = trained
    doctored = list(result.leaves)
    bad = 5
    doctored[bad] = hashlib.sha256(b"not the state after segment 5").digest()
    assert not leaves_match_root(doctored, N, Trajectory.in_memory(result.leaves).root())
    job_id = commit_job(anvil, w3, deployment, contracts, actors, trained, server, doctored)
    nodes = [world["node"](a) for a in world["accounts"]]
    addrs = [n.me for n in nodes] + [actors.solver.address, actors.submitter.address]
    before = balances(contracts, addrs)
    restarted: list[str] = []

    def restart_challenger_mid_descent(current):
        did = contracts.game.functions.latestDisputeOf(job_id).call()
        if not did or restarted or side_choices(contracts, did) != 1:
            return None
        challenger = contracts.game.functions.getDispute(did).call().challenger
        victim = next(n for n in current if n.me == challenger)
        victim.close()  # the process dies: only its data directory and the chain survive
        restarted.append(challenger)
        account = next(a for a in world["accounts"] if a.address == challenger)
        current[current.index(victim)] = world["node"](account)  # in place: the test reads `nodes` afterwards
        return current

    drive(w3, contracts, job_id, nodes, world["defender"], until=lambda j: j.state == SLASHED,
          on_loop=restart_challenger_mid_descent)  # fmt: skip
    did = contracts.game.functions.latestDisputeOf(job_id).call()
    d = contracts.game.functions.getDispute(did).call()
    assert restarted == [d.challenger]
    assert d.outcome == CHALLENGER_WON and (d.lo, d.hi) == (bad, bad + 1)
    assert side_choices(contracts, did) == merkle.leaf_depth(bad, N) == 3
    assert d.reveals == 3 and d.votesForChallenger == 3  # the committee replayed and agreed
    # the assigned verifiers' audits: segment 5 mismatched, segment 6 (pre-state = the doctored leaf) unavailable
    for a in contracts.market.functions.assignedVerifiers(job_id).call():
        node = next(n for n in nodes if n.me == a)
        row = node._job_row("0x" + job_id.hex())
        if row is not None and row["audit"]:
            segs = AuditResult.from_json(json.loads(row["audit"])).segments
            assert segs[bad] == MISMATCH and segs[bad + 1] == UNAVAILABLE
            assert all(segs[i] == MATCH for i in range(N) if i not in (bad, bad + 1))
    # money: the solver lost its job stake, the challenger got its share, the submitter its price back
    job = contracts.market.functions.getJob(job_id).call()
    params = deployment.params["market"]
    after = balances(contracts, addrs)
    assert before[actors.solver.address] - after[actors.solver.address] == job.stake
    assert after[d.challenger] - before[d.challenger] >= job.stake * params["slashWinnerBps"] // 10_000
    assert after[actors.submitter.address] - before[actors.submitter.address] == PRICE
    for n in nodes:
        n.close()


def test_accuse_adversary_disputes_honest_work_and_loses_its_bond(
    anvil, w3, deployment, contracts, actors, trained, server, world
):
    result, _ = trained
    job_id = commit_job(anvil, w3, deployment, contracts, actors, trained, server, result.leaves)
    accuser_account = world["accounts"][0]
    nodes = [world["node"](accuser_account, adversary="accuse")] + [world["node"](a) for a in world["accounts"][1:]]
    accuser = nodes[0]
    addrs = [n.me for n in nodes] + [actors.solver.address]
    before = balances(contracts, addrs)
    drive(w3, contracts, job_id, nodes, world["defender"], until=lambda j: j.state == FINALIZED)
    disputes = contracts.game.events.DisputeOpened().get_logs(from_block=0, argument_filters={"jobId": job_id})
    assert [e["args"]["challenger"] for e in disputes] == [accuser.me]  # it really opened one ...
    did = disputes[0]["args"]["disputeId"]
    d = contracts.game.functions.getDispute(did).call()
    assert d.outcome == SOLVER_WON  # ... played it to a leaf, and the committee's replay sided with the solver
    assert side_choices(contracts, did) == merkle.leaf_depth(int(d.lo), N)
    bond = contracts.game.functions.getDispute(did).call().bond
    job = contracts.market.functions.getJob(job_id).call()
    assert bond == dispute_bond_for(deployment.params["game"], job.stake, job.price)
    after = balances(contracts, addrs)
    assert before[accuser.me] - after[accuser.me] == int(bond)
    assert after[actors.solver.address] >= before[actors.solver.address]  # no honest stake lost (paid + bond share)
    assert accuser.metrics.disputes.value(outcome="lost") == 1
    for n in nodes:
        n.close()


def test_challenger_without_free_stake_for_the_bond_does_not_send_the_challenge(
    anvil, w3, deployment, contracts, actors, trained, server, world, caplog
):
    # last in the module: the accuser keeps only the minimum verifier stake free, below this job's bond
    result, _ = trained
    job_id = commit_job(anvil, w3, deployment, contracts, actors, trained, server, result.leaves)
    job = contracts.market.functions.getJob(job_id).call()
    bond = dispute_bond_for(deployment.params["game"], job.stake, job.price)
    accuser_account = world["accounts"][0]
    free = contracts.stakes.functions.positionOf(accuser_account.address).call().free
    keep = int(deployment.params["stake"]["minVerifierStake"])
    assert keep < bond <= free
    client_for(anvil, deployment, accuser_account).transact(contracts.stakes.functions.requestWithdrawal(free - keep))
    nodes = [world["node"](accuser_account, adversary="accuse")] + [world["node"](a) for a in world["accounts"][1:]]
    caplog.set_level("ERROR", logger="verifier.node")
    drive(w3, contracts, job_id, nodes, world["defender"], until=lambda j: j.state == FINALIZED)
    assert not contracts.game.events.DisputeOpened().get_logs(from_block=0, argument_filters={"jobId": job_id})
    unfunded = [r for r in caplog.records if r.getMessage() == "dispute-unfunded"]
    assert unfunded and (unfunded[0].bond, unfunded[0].free) == (bond, keep)
    for n in nodes:
        n.close()
