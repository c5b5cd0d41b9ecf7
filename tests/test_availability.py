"""Availability challenges on a real chain: a staker names a committed leaf it could not fetch; the
solver's DisputeDefender publishes that checkpoint's bytes on the StatePublisher (resuming after a crash mid-way)
and confirms, the job reopens and everyone reads the bytes back from calldata, checked against the committed
root; a solver that does not answer loses its stake on its clock. The fee an answered challenge holds is paid
to the solver once the job finalizes, and back to the challenger when the job ends slashed."""

from __future__ import annotations

import copy
import json
import os

import pytest
from dispute_scenarios import make_world, new_job
from web3.logs import DISCARD

from protocol.anvil import increase_time
from protocol.audit import audit_dispute, read_dispute
from protocol.audit.record import DisputeRecord
from protocol.constants import JobState, Outcome, Phase
from protocol.publication import CHUNK, PublicationError, publish_leaf, read_published, settle_fees
from protocol.state import chunked_root
from protocol.trajectory import Trajectory
from solver.defence import DisputeDefender
from verifier.challenge import Challenger

pytestmark = pytest.mark.chain

N, LEAF = 5, 3


@pytest.fixture(scope="module")
def world(anvil, w3, deployment, contracts, actors, tmp_path_factory):
    return make_world(anvil, w3, deployment, contracts, actors, tmp_path_factory.mktemp("availability"))


def _states(n: int) -> list[bytes]:
    # several publish pieces each (two of 32 chunks and a short rest), distinct per leaf
    return [os.urandom(2 * 32 * CHUNK + 1000 + i) for i in range(n)]


def _job(w3, deployment, contracts, actors, world, states):
    leaves = [chunked_root([s], threads=False) for s in states]
    job_id, _ = new_job(w3, deployment, contracts, actors, world, n=len(states), lie_from=None, leaves=leaves)
    by_root = dict(zip(leaves, states, strict=True))
    client_for, _ = world
    defender = DisputeDefender(client_for(actors.solver), lambda job: Trajectory.in_memory(leaves), None, by_root.get)
    return job_id, leaves, defender


def _request(contracts, world, actors, job_id, leaf) -> int:
    client_for, _ = world
    challenger = client_for(actors.challenger)
    receipt = challenger.transact(contracts.game.functions.requestAvailability(job_id, leaf))
    (ev,) = contracts.game.events.AvailabilityRequested().process_receipt(receipt, errors=DISCARD)
    return int(ev["args"]["disputeId"])


def test_solver_publishes_resuming_after_a_crash_and_everyone_reads_it_back(w3, deployment, contracts, actors, world):
    states = _states(N)
    job_id, leaves, defender = _job(w3, deployment, contracts, actors, world, states)
    dispute_id = _request(contracts, world, actors, job_id, LEAF)
    d = contracts.game.functions.getDispute(dispute_id).call()
    assert (d.phase, d.lo, d.availability) == (Phase.AWAITING_DATA, LEAF, True)
    assert contracts.market.functions.getJob(job_id).call().state == JobState.DISPUTED

    # the solver feeds the first piece and is killed
    client_for, _ = world
    solver = client_for(actors.solver)
    pub = contracts.publisher
    traj = Trajectory.in_memory(leaves)
    solver.transact(pub.functions.publish(job_id, LEAF, states[LEAF][: 32 * CHUNK], False, []))
    assert pub.functions.bytesFed(job_id, LEAF, actors.solver.address).call() == 32 * CHUNK
    assert read_published(solver, job_id, LEAF) is None, "nothing is published until the last piece"

    # a fresh defender (the restarted process) resumes from what the chain says it fed, and confirms
    assert defender.step(dispute_id) == "publish"
    d = contracts.game.functions.getDispute(dispute_id).call()
    assert (d.phase, d.outcome) == (Phase.RESOLVED, Outcome.PUBLISHED)
    assert contracts.market.functions.getJob(job_id).call().state == JobState.COMMITTED, "the job reopened"
    got = read_published(client_for(actors.verifiers[0]), job_id, LEAF)
    assert got == states[LEAF], "the bytes come back exactly, from calldata"
    assert publish_leaf(solver, job_id, LEAF, states[LEAF], traj.proof(LEAF, N)) == 0, "published once"
    bond = contracts.game.functions.disputeBondFor(
        contracts.market.functions.getJob(job_id).call().stake, contracts.market.functions.getJob(job_id).call().price
    ).call()
    (resolved,) = contracts.game.events.DisputeResolved().get_logs(
        argument_filters={"disputeId": dispute_id}, from_block=deployment.start_block
    )
    assert resolved["args"]["outcome"] == Outcome.PUBLISHED
    fee = bond * deployment.params["game"]["availabilityFeeBps"] // 10_000
    assert fee > 0
    locked = contracts.stakes.functions.positionOf(actors.challenger.address).call().locked
    assert locked >= fee, "the fee is held until the job ends"
    with pytest.raises(Exception, match="JobNotEnded"):
        settle_fees(solver, job_id)  # whether the solver lied is not known yet

    increase_time(
        w3, int(contracts.market.functions.getJob(job_id).call().auditEnd) - w3.eth.get_block("latest")["timestamp"] + 1
    )
    solver.transact(contracts.market.functions.finalize(job_id))
    claimable = contracts.stakes.functions.positionOf(actors.solver.address).call().claimable
    assert settle_fees(solver, job_id) == [(dispute_id, actors.solver.address, fee)]
    assert contracts.stakes.functions.positionOf(actors.solver.address).call().claimable == claimable + fee
    assert settle_fees(solver, job_id) == [], "settled once"
    record = read_dispute(client_for(actors.deployer), dispute_id)
    verdict = audit_dispute(record)
    assert verdict.ok, json.dumps(verdict.to_json(), indent=1)
    details = {c.rule: c.detail for c in verdict.checks}
    assert "published at block" in details["availability.published"]
    assert details["availability.fee"] == f"fee {fee} to the solver", details
    # the auditor re-checks the publication from chain data: calldata that does not hash to the root, a root
    # that is not the named leaf, or no publication at all (then the contract's Published is wrong)
    for doctor, rule in (
        ("bytes", "availability.published"),
        ("root", "availability.published"),
        (None, "outcome.majority"),
        ("fee", "availability.fee"),
    ):
        data = copy.deepcopy(record.to_json())
        if doctor == "bytes":
            root = data["publication"]["root"]  # another root: its last hex digit changed (the root is random)
            data["publication"]["bytes_root"] = root[:-1] + ("1" if root[-1] == "0" else "0")
        elif doctor == "fee":  # the fee paid back to the challenger although the job finalized
            for tx in data["txs"]:
                for ev in tx["events"]:
                    if ev["name"] == "AvailabilityFeeSettled":
                        ev["args"]["to"] = actors.challenger.address
        elif doctor == "root":
            data["publication"]["root"] = "0x" + "11" * 32
        else:
            data["publication"] = None
        assert audit_dispute(DisputeRecord.from_json(data)).first_violation.rule == rule, doctor


def test_a_solver_that_does_not_publish_is_slashed_on_its_clock(w3, deployment, contracts, actors, world):
    """Bait and switch: the solver answers one challenge, then withholds another leaf: it loses the job, and the
    fee the answered challenge held goes back to the challenger."""
    states = _states(N)
    job_id, _, defender = _job(w3, deployment, contracts, actors, world, states)
    answered = _request(contracts, world, actors, job_id, 2)
    assert defender.step(answered) == "publish"
    client_for, _ = world
    before = contracts.stakes.functions.positionOf(actors.challenger.address).call()
    dispute_id = _request(contracts, world, actors, job_id, 1)
    challenger = Challenger(client_for(actors.challenger))
    assert challenger.step(dispute_id, 1) == "wait"
    increase_time(w3, int(deployment.params["game"]["clockBudget"]) + 1)
    assert challenger.step(dispute_id, 1) == "timeout"
    d = contracts.game.functions.getDispute(dispute_id).call()
    assert d.outcome == Outcome.CHALLENGER_WON
    assert contracts.market.functions.getJob(job_id).call().state == JobState.SLASHED
    verdict = audit_dispute(read_dispute(client_for(actors.deployer), dispute_id))
    assert verdict.ok, json.dumps(verdict.to_json(), indent=1)
    (settled,) = settle_fees(client_for(actors.challenger), job_id)
    assert settled[:2] == (answered, actors.challenger.address)
    after = contracts.stakes.functions.positionOf(actors.challenger.address).call()
    assert (after.free, after.locked) == (before.free + settled[2], before.locked - settled[2]), "the fee came back"
    verdict = audit_dispute(read_dispute(client_for(actors.deployer), answered))
    assert verdict.ok, json.dumps(verdict.to_json(), indent=1)
    assert "to the challenger" in {c.rule: c.detail for c in verdict.checks}["availability.fee"]


def test_reader_refuses_calldata_that_is_not_the_published_leaf(w3, deployment, contracts, actors, world):
    """An RPC node lying about a publish transaction's input is caught by the root check."""
    states = _states(N)
    job_id, _, defender = _job(w3, deployment, contracts, actors, world, states)
    dispute_id = _request(contracts, world, actors, job_id, 0)
    assert defender.step(dispute_id) == "publish"
    client_for, _ = world
    reader = client_for(actors.verifiers[1])
    real = reader.w3.eth.get_transaction

    def forged(tx_hash):
        tx = dict(real(tx_hash))
        fn, args = contracts.publisher.decode_function_input(tx["input"])
        data = bytes(args["data"])
        args["data"] = bytes([data[0] ^ 1]) + data[1:]
        tx["input"] = contracts.publisher.encode_abi("publish", args=list(args.values()))
        return tx

    reader.w3.eth.get_transaction = forged  # type: ignore[method-assign]
    with pytest.raises(PublicationError, match="not the published root"):
        read_published(reader, job_id, 0)
