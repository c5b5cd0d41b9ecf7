"""protocol.events.EventFollower on a real anvil devnet: order, reorgs, outages, restarts.

(a) a job's whole lifecycle is seen exactly once, in chain order; (b) reorgs made with ``anvil_reorg`` (same
height, other transactions) and with ``evm_snapshot``/``evm_revert`` (a shorter chain, then a different
one) roll the handler back to the common ancestor and re-apply; (c) anvil is stopped mid-follow and
restarted on the same port with its ``--state`` file: the follower keeps polling through the outage and
resumes; (d) a new follower instance on the same cursor file continues, also after a crash between a
handler ``apply`` and the cursor write. In every case the record equals the canonical chain's events
(independently read with ``eth_getLogs``) with no duplicates.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3 import Web3

from protocol import merkle
from protocol.anvil import Anvil, dev_accounts, increase_time, mine, mine_past
from protocol.chain import ChainClient
from protocol.deploy import Deployment, deploy
from protocol.eip712 import Bid, Domain, JobOrder
from protocol.errors import CursorError
from protocol.events import ChainEvent, EventDecoder, EventFollower

pytestmark = pytest.mark.chain

ETHER = 10**18
PRICE = 100 * ETHER
INIT_ROOT = keccak(text="C_init")


# --------------------------------------------------------------------- helpers


class Recorder:
    """A handler that stores events by (tx hash, log index) and notes duplicates and rollbacks."""

    def __init__(self) -> None:
        self.events: dict[tuple[bytes, int], ChainEvent] = {}
        self.duplicates: list[ChainEvent] = []
        self.rollbacks: list[int] = []
        self.lock = threading.Lock()

    def apply(self, events: Sequence[ChainEvent], block_number: int, block_hash: bytes) -> None:
        with self.lock:
            assert events, "apply is called only for blocks with events"
            for e in events:
                assert (e.block_number, e.block_hash) == (block_number, block_hash)
                if e.key in self.events:
                    self.duplicates.append(e)
                self.events[e.key] = e

    def rollback(self, block_number: int) -> None:
        with self.lock:
            self.rollbacks.append(block_number)
            self.events = {k: e for k, e in self.events.items() if e.block_number <= block_number}

    def ordered(self) -> list[tuple[int, int, bytes, bytes]]:
        with self.lock:
            return sorted((e.block_number, e.log_index, e.block_hash, e.tx_hash) for e in self.events.values())


def canonical(w3: Web3, deployment: Deployment, start: int) -> list[tuple[int, int, bytes, bytes]]:
    """Every protocol log from ``start`` to the head, read directly with one eth_getLogs."""
    logs = w3.eth.get_logs(
        {"fromBlock": start, "toBlock": w3.eth.block_number, "address": list(deployment.addresses.values())}
    )
    return sorted(
        (int(x["blockNumber"]), int(x["logIndex"]), bytes(x["blockHash"]), bytes(x["transactionHash"])) for x in logs
    )


def assert_matches_chain(rec: Recorder, w3: Web3, deployment: Deployment, start: int) -> None:
    assert rec.duplicates == []
    assert rec.ordered() == canonical(w3, deployment, start)


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def follower(client: ChainClient, path, rec: Recorder, **kw: Any) -> EventFollower:
    kw.setdefault("confirmations", 0)
    kw.setdefault("batch_blocks", 50)
    return EventFollower(client, path, handler=rec, **kw)


def signed_raw(client: ChainClient, account, fn, nonce: int) -> str:
    """A signed transaction (hex) calling ``fn`` with an explicit nonce and gas, for ``anvil_reorg``."""
    tx = fn.build_transaction({"from": account.address, "nonce": nonce, "gas": 200_000})
    return account.sign_transaction(tx).raw_transaction.to_0x_hex()


@pytest.fixture(scope="module")
def clients(anvil, deployment, actors) -> dict[str, ChainClient]:
    """A ChainClient per role (the conftest actors are already staked)."""
    roles = {"deployer": actors.deployer, "submitter": actors.submitter, "solver": actors.solver}
    roles |= {f"verifier{i}": v for i, v in enumerate((actors.challenger, *actors.verifiers))}
    return {role: ChainClient(anvil.url, deployment, acct, receipt_timeout=20) for role, acct in roles.items()}


# --------------------------------------------------------------------- (a) lifecycle


def test_follower_sees_a_job_lifecycle_once_in_order(w3, deployment, actors, clients, tmp_path):
    rec = Recorder()
    f = follower(clients["deployer"], tmp_path / "cursor.json", rec)
    f.poll_once()  # deployment, binding and the actors' staking so far
    assert any(e.name == "Deposited" and e.contract == "StakeManager" for e in rec.events.values())

    submitter, solver, market = clients["submitter"], clients["solver"], clients["submitter"].job_market
    receipts = []
    now = int(w3.eth.get_block("latest")["timestamp"])
    domain = Domain(chain_id=deployment.chain_id, verifying_contract=market.address)
    order = JobOrder(
        actors.submitter.address, keccak(text="spec"), keccak(text="data"), INIT_ROOT, 24, 4, PRICE, now + 86_400, 7
    )
    bid = Bid(actors.solver.address, order.digest(domain), PRICE, submitter.call(market.functions.requiredStake(PRICE)),
              now + 3_600, 8, 600)  # fmt: skip
    receipts.append(
        submitter.transact(
            market.functions.acceptBid(
                order.as_abi_tuple(),
                order.sign(domain, actors.submitter),
                bid.as_abi_tuple(),
                bid.sign(domain, actors.solver),
            )
        )
    )
    f.poll_once()
    job_id = order.digest(domain)
    leaves, state = [], INIT_ROOT
    for _ in range(6):
        state = keccak(abi_encode(["string", "bytes32"], ["step", state]))
        leaves.append(state)
    tree = merkle.build_tree(leaves)
    receipts.append(
        solver.transact(
            market.functions.commit(
                job_id,
                merkle.tree_root(tree),
                6,
                leaves[-1],
                merkle.inclusion_path(tree, 5, 6),
                "http://solver.invalid",
            )
        )
    )
    seed_block = solver.call(market.functions.getJob(job_id)).seedBlock
    mine_past(w3, seed_block)
    receipts.append(solver.transact(market.functions.drawAudit(job_id, solver.seed_header(seed_block))))
    f.poll_once()
    by_address = {c.account.address: c for c in clients.values()}
    for verifier in solver.call(market.functions.assignedVerifiers(job_id)):
        receipts.append(by_address[verifier].transact(market.functions.attest(job_id)))
    increase_time(w3, deployment.params["market"]["auditWindow"])
    receipts.append(submitter.transact(market.functions.finalize(job_id)))
    assert f.poll_once() > 0
    assert f.poll_once() == 0  # nothing new

    assert_matches_chain(rec, w3, deployment, deployment.start_block)
    lifecycle = [(bytes(r["transactionHash"]), int(x["logIndex"])) for r in receipts for x in r["logs"]]
    assert all(key in rec.events for key in lifecycle)
    job_events = [e.name for e in sorted(rec.events.values(), key=lambda e: (e.block_number, e.log_index))
                  if e.contract == "JobMarket" and e.args.get("jobId") == job_id]  # fmt: skip
    assert job_events[0] == "JobMatched" and job_events[1] == "JobCommitted" and job_events[2] == "AuditDrawn"
    assert job_events[-1] == "JobFinalized" and job_events.count("Attested") == len(receipts) - 4
    matched = next(e for e in rec.events.values() if e.name == "JobMatched")
    assert matched.args["jobId"] == job_id and matched.args["solver"] == actors.solver.address
    assert rec.rollbacks == [deployment.start_block - 1]  # only the start-up rollback, a no-op


# --------------------------------------------------------------------- (b) reorgs


def test_anvil_reorg_rolls_back_to_the_ancestor_and_reapplies(w3, deployment, dev, clients, tmp_path, caplog):
    minter = clients["deployer"]
    token = minter.token
    rec = Recorder()
    f = follower(minter, tmp_path / "cursor.json", rec)
    f.poll_once()
    for i in range(4):  # 4 blocks, one Transfer each
        minter.transact(token.functions.mint(dev[9].address, 1000 + i))
    f.poll_once()
    head = w3.eth.block_number
    old = {e.key for e in rec.events.values() if e.block_number > head - 3}
    assert len(old) == 3

    # replace the last 3 blocks: new block 0 and 2 carry other mints, block 1 is empty
    nonce = w3.eth.get_transaction_count(minter.account.address, head - 3)
    replacement = [
        [signed_raw(minter, minter.account, token.functions.mint(dev[8].address, 7), nonce), 0],
        [signed_raw(minter, minter.account, token.functions.mint(dev[8].address, 8), nonce + 1), 2],
    ]
    before = bytes(w3.eth.get_block(head)["hash"])
    w3.provider.make_request("anvil_reorg", [3, replacement])
    assert w3.eth.block_number == head and bytes(w3.eth.get_block(head)["hash"]) != before

    caplog.set_level(logging.WARNING, logger="veritrain.events")
    f.poll_once()
    assert rec.rollbacks[-1] == head - 3  # the common ancestor
    assert any("reorg" in r.getMessage() for r in caplog.records)
    assert not old & set(rec.events)  # the replaced blocks' events are gone
    new = [e for e in rec.events.values() if e.block_number > head - 3]
    assert sorted((e.block_number - (head - 3), e.args["value"]) for e in new) == [(1, 7), (3, 8)]
    assert_matches_chain(rec, w3, deployment, deployment.start_block)

    # with confirmations, a reorg above the confirmed height costs the follower nothing
    rec2 = Recorder()
    f2 = follower(minter, tmp_path / "cursor2.json", rec2, confirmations=3)
    f2.poll_once()
    assert f2.cursor.block == w3.eth.block_number - 3
    head = w3.eth.block_number
    nonce = w3.eth.get_transaction_count(minter.account.address, head - 2)
    tx = signed_raw(minter, minter.account, token.functions.mint(dev[8].address, 9), nonce)
    w3.provider.make_request("anvil_reorg", [2, [[tx, 1]]])
    minter.reset_nonce()  # the reorg rewrote our transactions (only a test does that on purpose)
    mine(w3, 3)
    f2.poll_once()
    assert rec2.rollbacks == [deployment.start_block - 1]
    assert_matches_chain(rec2, w3, deployment, deployment.start_block)


def test_snapshot_revert_reorg_to_a_shorter_then_different_chain(w3, deployment, dev, clients, tmp_path):
    minter = clients["deployer"]
    token = minter.token
    rec = Recorder()
    f = follower(minter, tmp_path / "cursor.json", rec, window=8)
    f.poll_once()
    base = w3.eth.block_number
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    for i in range(5):
        minter.transact(token.functions.mint(dev[9].address, 100 + i))
    f.poll_once()
    assert f.cursor.block == base + 5

    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    minter.reset_nonce()
    assert w3.eth.block_number == base
    f.poll_once()  # the chain is now shorter than the cursor
    assert rec.rollbacks[-1] == base and f.cursor.block == base
    assert_matches_chain(rec, w3, deployment, deployment.start_block)

    for i in range(2):  # a different continuation
        minter.transact(token.functions.mint(dev[7].address, 200 + i))
    f.poll_once()
    assert [e.args["value"] for e in rec.events.values() if e.block_number > base] == [200, 201]
    assert_matches_chain(rec, w3, deployment, deployment.start_block)


# --------------------------------------------------------------------- (c) outage


def test_follower_keeps_polling_through_an_rpc_outage_and_resumes(forge_build, tmp_path, caplog):
    state = tmp_path / "anvil-state.json"
    deployer, other = dev_accounts(2)
    node = Anvil(extra_args=("--state", str(state))).start()
    stop = threading.Event()
    thread: threading.Thread | None = None
    try:
        deployment = deploy(node.web3(), deployer, out_path=tmp_path / "deployment.json")
        client = ChainClient(node.url, deployment, deployer, retries=2, backoff=0.05, max_backoff=0.2)
        rec = Recorder()
        f = follower(client, tmp_path / "cursor.json", rec)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                f.run(stop, interval=0.05, max_pause=0.3)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        caplog.set_level(logging.WARNING)
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        for i in range(3):
            client.transact(client.token.functions.mint(other.address, 1 + i))
        w3 = node.web3()
        wait_for(lambda: rec.ordered() == canonical(w3, deployment, deployment.start_block), what="first events")
        seen = len(rec.events)

        port = node.port
        node.stop()  # anvil writes its --state file on exit
        wait_for(lambda: any("keeping the cursor" in r.getMessage() for r in caplog.records), what="outage logged")
        time.sleep(0.3)  # a few more failing polls
        assert thread.is_alive() and not errors
        assert len(rec.events) == seen

        node.requested_port = port
        node.start()  # same port, same chain (block hashes included) from the state file
        for i in range(3):
            client.transact(client.token.functions.mint(other.address, 10 + i))
        w3 = node.web3()
        wait_for(lambda: rec.ordered() == canonical(w3, deployment, deployment.start_block), what="resumed events")
        stop.set()
        thread.join(5)
        assert not thread.is_alive() and not errors
        assert len(rec.events) == seen + 3 and rec.duplicates == []
        assert rec.rollbacks == [deployment.start_block - 1]  # the restart was not mistaken for a reorg
        assert sum("RPC" in r.getMessage() and "retry" in r.getMessage() for r in caplog.records) >= 2
    finally:
        stop.set()
        if thread is not None:
            thread.join(5)
        node.stop()


# --------------------------------------------------------------------- (d) follower restart


class Crash(Exception):
    pass


def test_new_follower_instance_continues_from_the_cursor(w3, deployment, dev, clients, tmp_path):
    minter = clients["deployer"]
    token = minter.token
    path = tmp_path / "cursor.json"
    rec = Recorder()
    follower(minter, path, rec).poll_once()
    for i in range(3):
        minter.transact(token.functions.mint(dev[9].address, 300 + i))

    # a process that crashes right after its handler stored block k, before the cursor says so
    applies = 0

    class CrashingHandler:
        def apply(self, events, block_number, block_hash):
            nonlocal applies
            rec.apply(events, block_number, block_hash)
            applies += 1
            if applies == 2:
                raise Crash

        def rollback(self, block_number):
            rec.rollback(block_number)

    with pytest.raises(Crash):
        follower(minter, path, CrashingHandler()).poll_once()
    on_disk = json.loads(path.read_text())
    crashed_block = max(e.block_number for e in rec.events.values())
    assert on_disk["block"] == crashed_block - 1  # the handler is one block ahead of the cursor

    for i in range(12):
        minter.transact(token.functions.mint(dev[9].address, 400 + i))
    # a new instance with a small window: the older blocks go through ranged eth_getLogs
    again = follower(minter, path, rec, window=2, batch_blocks=4)
    again.poll_once()
    assert rec.rollbacks[-1] == crashed_block - 1  # start-up rollback to the cursor dropped block k ...
    assert_matches_chain(rec, w3, deployment, deployment.start_block)  # ... and it was applied again once
    assert json.loads(path.read_text())["block"] == w3.eth.block_number
    assert len(json.loads(path.read_text())["recent"]) == 2

    # a third instance: nothing to do, nothing duplicated
    assert follower(minter, path, rec).poll_once() == 0
    assert_matches_chain(rec, w3, deployment, deployment.start_block)

    # a cursor of another deployment is refused
    data = json.loads(path.read_text())
    data["chainId"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(CursorError, match="another deployment"):
        follower(minter, path, Recorder()).poll_once()


def test_decoder_covers_every_event_of_the_five_contracts(clients):
    decoder = EventDecoder(clients["deployer"])
    assert len(decoder.addresses) == 5
    names = {e["name"] for c in clients["deployer"].contracts.values() for e in c.abi if e.get("type") == "event"}
    assert {"JobMatched", "JobCommitted", "DisputeOpened", "DisputeResolved", "Deposited", "Transfer"} <= names
    assert {"AvailabilityRequested", "StateBytes", "StatePublished"} <= names
