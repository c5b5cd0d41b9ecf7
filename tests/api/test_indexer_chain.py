"""The chain indexer on a real anvil devnet: a job posted through the API, accepted with the API's call data,
committed, audited and finalized; the DB's view equals the contract's; reorgs are rolled back and re-applied;
a restart mid-stream resumes from the cursor with no duplicate and no gap. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import secrets
from types import SimpleNamespace

import pytest
from api_helpers import Market
from eth_abi import encode as abi_encode
from eth_utils import keccak
from fastapi.testclient import TestClient
from sqlalchemy import select

from marketplace_api.context import AppContext
from marketplace_api.core.config import Settings
from marketplace_api.indexer import DbIndexHandler
from marketplace_api.main import create_app
from marketplace_api.models import ChainEventRow, JobSnapshot
from protocol import merkle
from protocol.anvil import increase_time, mine_past
from protocol.blockheader import seed_header
from protocol.chain import ChainClient
from protocol.eip712 import Bid, Domain, JobOrder
from protocol.events import EventFollower
from protocol.spec import parse_spec
from protocol.tx import send

pytestmark = pytest.mark.chain
ETHER = 10**18


def chain_now(w3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


@pytest.fixture
def live(w3, deployment, actors, tmp_path, db_url, anvil):
    """The API on the devnet's deployment (clock = chain time) and an indexer handler + follower factory."""
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url, deployment=deployment.path, indexer=False)
    ctx = AppContext.from_settings(settings)
    ctx.clock = lambda: chain_now(w3)
    app = create_app(ctx=ctx)
    client = ChainClient(anvil.url, deployment, receipt_timeout=20)
    handler = DbIndexHandler(ctx.sessions, client)
    # the test drives the follower itself; this stands in for the API's IndexerThread (ranking then uses
    # the indexed stake positions, /health reports it)
    ctx.indexer = SimpleNamespace(running=True, last_error=None, block_number=None)
    domain = Domain(deployment.chain_id, deployment.address_of("JobMarket"))

    def follower(**kw) -> EventFollower:
        return EventFollower(client, tmp_path / "cursor.json", handler=handler, confirmations=0, batch_blocks=50, **kw)

    with TestClient(app) as http:
        yield Market(http, ctx, domain, actors.submitter, actors.solver, actors.challenger, actors.deployer), follower


def db_events(ctx) -> list[tuple[int, int, str, str]]:
    with ctx.sessions() as s:
        rows = s.execute(
            select(ChainEventRow.block_number, ChainEventRow.log_index, ChainEventRow.block_hash, ChainEventRow.tx_hash)
        ).all()
    return sorted(tuple(r) for r in rows)


def canonical(w3, deployment) -> list[tuple[int, int, str, str]]:
    logs = w3.eth.get_logs(
        {
            "fromBlock": deployment.start_block,
            "toBlock": w3.eth.block_number,
            "address": list(deployment.addresses.values()),
        }
    )
    return sorted(
        (
            int(x["blockNumber"]),
            int(x["logIndex"]),
            "0x" + bytes(x["blockHash"]).hex(),
            "0x" + bytes(x["transactionHash"]).hex(),
        )
        for x in logs
    )


def test_job_lifecycle_indexed_equals_contract_view(w3, deployment, contracts, actors, live):
    market, follower = live
    f = follower()
    f.poll_once()
    c = market.client
    # post: spec + dataset blobs, a signed order, a signed bid with ETA
    dataset = market.upload(b"lifecycle dataset")
    doc = market.spec_doc(dataset, total_steps=24, checkpoint_interval=4)
    spec_hash = market.upload(parse_spec(doc).canonical_json())
    order = JobOrder(
        actors.submitter.address,
        bytes.fromhex(spec_hash[2:]),
        bytes.fromhex(dataset[2:]),
        bytes.fromhex(doc["init_state_root"][2:]),
        24,
        4,
        100 * ETHER,
        chain_now(w3) + 86_400,
        secrets.randbits(64),
    )
    r = c.post(
        "/jobs",
        json={"order": order.as_json(), "signature": "0x" + order.sign(market.domain, actors.submitter).hex()},
    )
    assert r.status_code == 201, r.text
    job_id = r.json()["job_id"]
    price = 80 * ETHER
    bid = Bid(
        actors.solver.address,
        bytes.fromhex(job_id[2:]),
        price,
        contracts.market.functions.requiredStake(price).call(),
        chain_now(w3) + 3_600,
        secrets.randbits(64),
        600,
    )
    from protocol.eip712 import BidEta

    eta = BidEta(actors.solver.address, bid.digest(market.domain), 600)
    r = c.post(
        f"/jobs/{job_id}/bids",
        json={
            "bid": bid.as_json(),
            "signature": "0x" + bid.sign(market.domain, actors.solver).hex(),
            "eta_seconds": 600,
            "eta_signature": "0x" + eta.sign(market.domain, actors.solver).hex(),
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["feasible"], r.json()  # the solver's stake is indexed and free

    # accept: the submitter signs and sends exactly the API's call data
    call = c.get(f"/jobs/{job_id}/accept-call").json()
    tx = {
        "from": actors.submitter.address,
        "to": call["to"],
        "data": call["data"],
        "chainId": call["chain_id"],
        "nonce": w3.eth.get_transaction_count(actors.submitter.address),
        "gas": 1_000_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
    }
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(actors.submitter.sign_transaction(tx).raw_transaction)
    )
    assert receipt["status"] == 1
    f.poll_once()
    assert c.get(f"/jobs/{job_id}").json()["status"] == "matched"
    assert c.get("/jobs", params={"status": "matched"}).json()["items"][0]["job_id"] == job_id
    r = c.post(f"/jobs/{job_id}/bids", json=market.bid(job_id, solver=actors.challenger, eta=60)[1])
    assert (r.status_code, r.json()["error"]) == (409, "job_taken")

    # commit, audit, attest, finalize
    leaves, state = [], bytes.fromhex(doc["init_state_root"][2:])
    for _ in range(6):
        state = keccak(abi_encode(["string", "bytes32"], ["step", state]))
        leaves.append(state)
    tree = merkle.build_tree(leaves)
    jid = bytes.fromhex(job_id[2:])
    send(
        w3,
        actors.solver,
        contracts.market.functions.commit(
            jid, merkle.tree_root(tree), 6, leaves[-1], merkle.inclusion_path(tree, 5, 6), "http://solver.test"
        ),
    )
    seed_block = contracts.market.functions.getJob(jid).call().seedBlock
    mine_past(w3, seed_block)
    send(w3, actors.challenger, contracts.market.functions.drawAudit(jid, seed_header(w3, seed_block)))
    f.poll_once()
    detail = c.get(f"/jobs/{job_id}").json()
    assert detail["status"] == "committed" and detail["trajectory"]["root"] == "0x" + merkle.tree_root(tree).hex()
    assert detail["trajectory"]["uri"] == "http://solver.test"
    assigned = contracts.market.functions.assignedVerifiers(jid).call()
    assert detail["audit"]["verifiers"] == assigned
    signers = {a.address: a for a in (actors.challenger, *actors.verifiers)}
    for v in assigned:
        send(w3, signers[v], contracts.market.functions.attest(jid))
    increase_time(w3, deployment.params["market"]["auditWindow"])
    send(w3, actors.submitter, contracts.market.functions.finalize(jid))
    f.poll_once()

    detail = c.get(f"/jobs/{job_id}").json()
    on_chain = contracts.market.functions.getJob(jid).call()
    assert detail["status"] == "finalized" and on_chain.state == 4
    ch = detail["chain"]
    assert (
        ch["solver"],
        ch["submitter"],
        int(ch["price"]),
        int(ch["stake"]),
        ch["num_leaves"],
        ch["trajectory_root"],
        ch["audit_end"],
        ch["seed"],
    ) == (
        on_chain.solver,
        on_chain.submitter,
        on_chain.price,
        on_chain.stake,
        on_chain.numLeaves,
        "0x" + on_chain.trajectoryRoot.hex(),
        on_chain.auditEnd,
        "0x" + on_chain.seed.hex(),
    )
    assert sorted(detail["audit"]["attested"]) == sorted(assigned)
    # every staker the indexer saw: its newest snapshot equals positionOf now
    for who in (actors.solver, actors.challenger, *actors.verifiers):
        pos = contracts.stakes.functions.positionOf(who.address).call()
        got = c.get(f"/stakers/{who.address}").json()
        assert (int(got["free"]), int(got["locked"]), int(got["claimable"]), got["verifier"]) == (
            pos.free,
            pos.locked,
            pos.claimable,
            pos.verifier,
        )
    finalized = contracts.market.events.JobFinalized().get_logs(from_block=deployment.start_block)
    assert c.get(f"/solvers/{actors.solver.address}").json()["record"]["jobs_finalized"] == len(finalized) >= 1
    assert db_events(market.ctx) == canonical(w3, deployment)  # every event once, none missing


def test_reorg_is_rolled_back_and_reapplied(w3, deployment, contracts, actors, dev, live):
    market, follower = live
    f = follower()
    f.poll_once()
    who = dev[9]
    for _ in range(3):  # three blocks, each a deposit by dev[9]
        send(w3, actors.deployer, contracts.token.functions.mint(who.address, 10 * ETHER))
    send(w3, who, contracts.token.functions.approve(contracts.stakes.address, 2**256 - 1))
    send(w3, who, contracts.stakes.functions.deposit(5 * ETHER))
    f.poll_once()
    free = lambda: contracts.stakes.functions.positionOf(who.address).call().free  # noqa: E731
    assert int(market.client.get(f"/stakers/{who.address}").json()["free"]) == free()
    before = free() - 5 * ETHER
    head = w3.eth.block_number
    # replace the deposit block with one that deposits 7 instead
    nonce = w3.eth.get_transaction_count(who.address, head - 1)
    tx = contracts.stakes.functions.deposit(7 * ETHER).build_transaction(
        {"from": who.address, "nonce": nonce, "gas": 300_000}
    )
    raw = who.sign_transaction(tx).raw_transaction.to_0x_hex()
    w3.provider.make_request("anvil_reorg", [1, [[raw, 0]]])
    f.poll_once()
    got = market.client.get(f"/stakers/{who.address}").json()
    assert int(got["free"]) == before + 7 * ETHER == free()
    deposits = contracts.stakes.events.Deposited().get_logs(
        from_block=deployment.start_block, argument_filters={"account": who.address}
    )
    assert [h["args"]["amount"] for h in got["history"] if h["name"] == "Deposited"] == [
        str(d["args"]["amount"]) for d in deposits
    ]
    assert str(5 * ETHER) not in [h["args"]["amount"] for h in got["history"][-2:]]
    assert db_events(market.ctx) == canonical(w3, deployment)


def test_restart_mid_stream_has_no_duplicate_and_no_gap(w3, deployment, contracts, actors, dev, live):
    market, follower = live
    f = follower()
    f.poll_once()
    for i in range(3):
        send(w3, actors.deployer, contracts.token.functions.mint(dev[8].address, ETHER + i))
    # crash between apply and cursor write: apply the next blocks, but the cursor file stays behind
    cursor_before = f.cursor_path.read_bytes()
    f.poll_once()
    f.cursor_path.write_bytes(cursor_before)
    for i in range(2):
        send(w3, actors.deployer, contracts.token.functions.mint(dev[8].address, 2 * ETHER + i))
    g = follower()  # a new process: rolls back past the cursor, re-applies
    g.poll_once()
    assert db_events(market.ctx) == canonical(w3, deployment)
    with market.ctx.sessions() as s:
        snaps = s.execute(select(JobSnapshot.job_id, JobSnapshot.block_number)).all()
    assert len(snaps) == len(set(snaps))


def test_dispute_is_indexed_move_by_move(w3, deployment, contracts, actors, live):
    """A lying solver disputed down to the leaf, the leaf opened, a committee drawn, votes committed and
    revealed, the dispute resolved: GET /disputes/{id} lists every move of the game (tx hash, block, log index,
    the clocks as getDispute reads them at that block) and the outcome; the job is slashed in the DB too."""
    from web3.logs import DISCARD

    market, follower = live
    f = follower()
    f.poll_once()
    c = market.client
    game, jm = contracts.game, contracts.market
    init = keccak(text="C_init")

    def step(pre: bytes) -> bytes:  # the toy transition of the forge Fixture
        return keccak(abi_encode(["string", "bytes32"], ["step", pre]))

    n, wrong = 13, 9
    honest, leaves, state = [], [], init
    for i in range(n):
        state = step(state)
        honest.append(state)
        leaves.append(keccak(abi_encode(["string", "bytes32"], ["lie", state])) if i >= wrong else state)

    order = JobOrder(
        actors.submitter.address,
        keccak(text="spec"),
        keccak(text="dataset"),
        init,
        n * 5,
        5,
        100 * ETHER,
        chain_now(w3) + 86_400,
        secrets.randbits(64),
    )
    job_id = order.digest(market.domain)
    bid = Bid(
        actors.solver.address,
        job_id,
        100 * ETHER,
        jm.functions.requiredStake(100 * ETHER).call(),
        chain_now(w3) + 3_600,
        secrets.randbits(64),
        3_600,
    )
    send(
        w3,
        actors.submitter,
        jm.functions.acceptBid(
            order.as_abi_tuple(),
            order.sign(market.domain, actors.submitter),
            bid.as_abi_tuple(),
            bid.sign(market.domain, actors.solver),
        ),
    )
    tree = merkle.build_tree(leaves)
    send(
        w3,
        actors.solver,
        jm.functions.commit(
            job_id, merkle.tree_root(tree), n, leaves[-1], merkle.inclusion_path(tree, n - 1, n), "http://solver.test"
        ),
    )
    seed_block = jm.functions.getJob(job_id).call().seedBlock
    mine_past(w3, seed_block)
    send(w3, actors.challenger, jm.functions.drawAudit(job_id, seed_header(w3, seed_block)))

    receipts = [send(w3, actors.challenger, game.functions.openDispute(job_id))]
    (opened,) = game.events.DisputeOpened().process_receipt(receipts[0], errors=DISCARD)
    dispute_id = opened["args"]["disputeId"]
    f.poll_once()  # index part of the way: the rest must extend the same dispute
    assert c.get(f"/disputes/{dispute_id}").json()["phase"] == "awaiting_reveal"
    while (d := game.functions.getDispute(dispute_id).call()).phase == 1:  # AWAITING_REVEAL
        left, right = merkle.children(tree, d.lo, d.hi)
        receipts.append(send(w3, actors.solver, game.functions.reveal(dispute_id, left, right)))
        mid = d.lo + merkle.split_point(d.hi - d.lo)
        receipts.append(send(w3, actors.challenger, game.functions.choose(dispute_id, wrong >= mid)))
    assert (d.lo, d.hi) == (wrong, wrong + 1)
    receipts.append(
        send(
            w3,
            actors.solver,
            game.functions.openLeaf(
                dispute_id, leaves[wrong], leaves[wrong - 1], merkle.inclusion_path(tree, wrong - 1, n)
            ),
        )
    )
    seed_block = game.functions.getDispute(dispute_id).call().seedBlock
    mine_past(w3, seed_block)
    receipts.append(send(w3, actors.submitter, game.functions.drawCommittee(dispute_id, seed_header(w3, seed_block))))
    committee = game.functions.committee(dispute_id).call()
    signers = {a.address: a for a in (actors.challenger, *actors.verifiers)}
    result, salts = step(leaves[wrong - 1]), {a: secrets.token_bytes(32) for a in committee}
    assert result == honest[wrong]
    for a in committee:
        commitment = game.functions.voteCommitment(result, salts[a], a).call()
        receipts.append(send(w3, signers[a], game.functions.commitVote(dispute_id, commitment)))
    for a in committee:
        receipts.append(send(w3, signers[a], game.functions.revealVote(dispute_id, result, salts[a])))
    final = game.functions.getDispute(dispute_id).call()
    assert final.phase == 6 and final.outcome == 2  # RESOLVED, CHALLENGER_WON
    f.poll_once()

    r = c.get(f"/disputes/{dispute_id}")
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["phase"], got["outcome"], got["job_id"]) == ("resolved", "challenger_won", "0x" + job_id.hex())
    assert (got["solver"], got["challenger"]) == (actors.solver.address, actors.challenger.address)
    assert (got["lo"], got["hi"], got["num_leaves"]) == (wrong, wrong + 1, n)
    assert (got["pre_state_root"], got["post_state_root"]) == (
        "0x" + leaves[wrong - 1].hex(),
        "0x" + leaves[wrong].hex(),
    )
    assert sorted(got["committee"]) == sorted(committee)
    assert (got["solver_clock"], got["challenger_clock"]) == (final.solverClock, final.challengerClock)

    # every DisputeGame log of every move is a move of the API's answer, and every move is a real log of one
    # of the dispute's transactions (the JobMarket / StakeManager logs about the dispute come along), in order
    game_address = game.address.lower()
    logs = {
        ("0x" + bytes(log["transactionHash"]).hex(), int(log["blockNumber"]), int(log["logIndex"])): log
        for rc in receipts
        for log in rc["logs"]
    }
    moves = got["moves"]
    keys = [(m["tx_hash"], m["block_number"], m["log_index"]) for m in moves]
    assert keys == sorted(keys, key=lambda k: (k[1], k[2])) and len(set(keys)) == len(keys)
    assert set(keys) <= set(logs)
    assert {k for k, log in logs.items() if log["address"].lower() == game_address} <= set(keys)
    assert {rc["transactionHash"].hex().removeprefix("0x") for rc in receipts} == {
        k[0].removeprefix("0x") for k in keys
    }  # every move's transaction is there
    names = [m["name"] for m in moves]
    rounds = merkle.leaf_depth(wrong, n)
    k = len(committee)
    assert names == [
        "JobDisputed",
        "DisputeOpened",
        *["ChildrenRevealed", "SideChosen"] * rounds,
        "LeafOpened",
        "CommitteeDrawn",
        *["VoteCommitted"] * k,
        *["VoteRevealed"] * k,
        "DisputeResolved",
    ], names
    resolved = moves[-1]["args"]
    assert (resolved["outcome"], resolved["winner"], resolved["loser"]) == (
        "challenger_won",  # enum arguments are served by name (protocol/constants.py), not as integers
        actors.challenger.address,
        actors.solver.address,
    )
    assert int(resolved["slashed"]) == bid.stake and sorted(resolved["majorityArbiters"]) == sorted(committee)
    for m in moves:  # the clocks are the contract's at the end of the move's block
        at = game.functions.getDispute(dispute_id).call(block_identifier=m["block_number"])
        assert (m["solver_clock"], m["challenger_clock"]) == (at.solverClock, at.challengerClock), m
        assert m["block_time"] == w3.eth.get_block(m["block_number"])["timestamp"]
    assert c.get("/disputes", params={"job_id": "0x" + job_id.hex()}).json()["items"][0]["outcome"] == "challenger_won"
    assert c.get(f"/jobs/0x{job_id.hex()}").json()["status"] == "slashed"
    assert db_events(market.ctx) == canonical(w3, deployment)


def test_cancelled_order_is_listed_cancelled_and_reopens_when_the_cancel_is_reorged_out(
    w3, deployment, contracts, actors, live
):
    market, follower = live
    f = follower()
    f.poll_once()
    c = market.client
    dataset = market.upload(b"cancelled order dataset")
    doc = market.spec_doc(dataset, total_steps=8, checkpoint_interval=4)
    spec_hash = market.upload(parse_spec(doc).canonical_json())
    nonce = secrets.randbits(64)
    order = JobOrder(
        actors.submitter.address,
        bytes.fromhex(spec_hash[2:]),
        bytes.fromhex(dataset[2:]),
        bytes.fromhex(doc["init_state_root"][2:]),
        8,
        4,
        10 * ETHER,
        chain_now(w3) + 86_400,
        nonce,
    )
    sig = "0x" + order.sign(market.domain, actors.submitter).hex()
    r = c.post("/jobs", json={"order": order.as_json(), "signature": sig})
    assert r.status_code == 201, r.text
    job_id = r.json()["job_id"]

    def listed(status: str) -> set[str]:
        return {j["job_id"] for j in c.get("/jobs", params={"status": status}).json()["items"]}

    assert c.get(f"/jobs/{job_id}").json()["status"] == "open" and job_id in listed("open")
    send(w3, actors.submitter, contracts.market.functions.cancelNonce(nonce))
    f.poll_once()
    assert c.get(f"/jobs/{job_id}").json()["status"] == "cancelled"
    assert job_id not in listed("open") and job_id in listed("cancelled")
    # the block with the cancel is replaced by an empty one: the order is open again
    w3.provider.make_request("anvil_reorg", [1, []])
    f.poll_once()
    assert c.get(f"/jobs/{job_id}").json()["status"] == "open" and job_id in listed("open")


def test_leaf_list_mirror_takes_a_long_trajectory(w3, deployment, contracts, actors, live):
    """A leaf list of a long job (3,000 checkpoints: ~200 KB of JSON, over the 64 KiB JSON limit) is mirrored
    under its own body limit, checked against the committed root and served back whole."""
    market, follower = live
    f = follower()
    c, jm = market.client, contracts.market
    init = keccak(text="C_init long")
    n = 3000
    leaves, state = [], init
    for _ in range(n):
        state = keccak(abi_encode(["string", "bytes32"], ["step", state]))
        leaves.append(state)
    order = JobOrder(
        actors.submitter.address, keccak(text="spec"), keccak(text="dataset"), init, n, 1, 10 * ETHER,
        chain_now(w3) + 86_400, secrets.randbits(64),
    )  # fmt: skip
    job_id = order.digest(market.domain)
    bid = Bid(
        actors.solver.address, job_id, 10 * ETHER, jm.functions.requiredStake(10 * ETHER).call(),
        chain_now(w3) + 3_600, secrets.randbits(64), 3_600,
    )  # fmt: skip
    send(w3, actors.submitter, jm.functions.acceptBid(
        order.as_abi_tuple(), order.sign(market.domain, actors.submitter),
        bid.as_abi_tuple(), bid.sign(market.domain, actors.solver),
    ))  # fmt: skip
    tree = merkle.build_tree(leaves)
    proof = merkle.inclusion_path(tree, n - 1, n)
    send(w3, actors.solver, jm.functions.commit(job_id, merkle.tree_root(tree), n, leaves[-1], proof, "http://s.test"))
    f.poll_once()
    body = {"leaves": ["0x" + x.hex() for x in leaves]}
    assert len(json.dumps(body)) > 64 * 1024
    jid = "0x" + job_id.hex()
    r = c.put(f"/jobs/{jid}/leaves", json=body)
    assert r.status_code == 200, r.text
    got = c.get(f"/jobs/{jid}/leaves").json()
    assert got["n"] == n and got["leaves"] == body["leaves"]
    assert got["root"] == "0x" + merkle.tree_root(tree).hex()
    # a wrong list of the same length is refused whatever its size; other JSON keeps the 64 KiB limit
    body["leaves"][1234] = "0x" + "00" * 32
    assert c.put(f"/jobs/{jid}/leaves", json=body).status_code == 422
    assert c.post("/jobs", json={"padding": "x" * (65 * 1024)}).status_code == 413
