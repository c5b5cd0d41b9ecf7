"""The Python ↔ Solidity boundary, on a real anvil devnet with web3.py 8.

1. EIP-712: eth-account's digests of random JobOrders/Bids equal ``JobMarket.hashOrder``/``hashBid``; a
   Python signature is accepted by ``acceptBid``; a wrong signer is rejected with ``InvalidSignature``,
   decoded by name from the ABI.
2. Merkle: pymerkle inclusion proofs verify on-chain (``RFC9162.verifyInclusion`` through a harness) for
   every index of sizes 1..17 and random (size, index) pairs up to 2^20 leaves; tampered proofs fail;
   pymerkle agrees with the independent pure-Python RFC 9162 code.
3. Lifecycle: a solver commits a lying trajectory, a challenger disputes it down to the first wrong leaf,
   a committee replays the segment, the solver is slashed and the money lands where it should. Gas per
   move is printed and written to ``test-artifacts/dispute-gas.json``.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import time
from collections import defaultdict
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from harnesses import deploy_harness
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from protocol import merkle, sampling
from protocol.anvil import increase_time, mine_past
from protocol.artifacts import load_artifact
from protocol.blockheader import randao_of, seed_header
from protocol.deploy import Deployment, load_deployment
from protocol.eip712 import (
    BID_FIELDS,
    JOB_ORDER_FIELDS,
    Bid,
    Domain,
    JobOrder,
    type_hash,
)
from protocol.errors import ContractRevert
from protocol.revert import default_decoder
from protocol.tx import send

pytestmark = pytest.mark.chain

ETHER = 10**18
PRICE = 100 * ETHER
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
U64 = 2**64 - 1
U256 = 2**256 - 1
INIT_ROOT = keccak(text="C_init")

# JobMarket.JobState / DisputeGame.Phase and Outcome (IJobMarket.sol, IDisputeGame.sol)
MATCHED, COMMITTED, DISPUTED, FINALIZED, SLASHED = 1, 2, 3, 4, 5
AWAITING_REVEAL, AWAITING_CHOICE, AWAITING_LEAF, AWAITING_COMMITTEE, VOTING, RESOLVED = 1, 2, 3, 4, 5, 6
CHALLENGER_WON = 2

HYPOTHESIS = settings(max_examples=30, deadline=None, derandomize=True, database=None)


# --------------------------------------------------------------------- helpers


def chain_time(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def domain_of(w3: Web3, deployment: Deployment) -> Domain:
    return Domain(chain_id=w3.eth.chain_id, verifying_contract=deployment.address_of("JobMarket"))


_nonce = iter(range(1, 10**9))


def make_order(w3: Web3, submitter: str, *, total_steps: int = 64, interval: int = 4) -> JobOrder:
    return JobOrder(
        submitter=submitter,
        specHash=keccak(text="spec"),
        datasetHash=keccak(text="dataset"),
        initStateRoot=INIT_ROOT,
        totalSteps=total_steps,
        checkpointInterval=interval,
        maxPrice=PRICE,
        deadline=chain_time(w3) + 86_400,
        nonce=next(_nonce),
    )


def make_bid(w3: Web3, market, solver: str, order_hash: bytes, price: int = PRICE) -> Bid:
    return Bid(
        solver=solver,
        orderHash=order_hash,
        price=price,
        stake=market.functions.requiredStake(price).call(),
        expiry=chain_time(w3) + 3_600,
        nonce=next(_nonce),
        workTime=3_600,
    )


def toy_step(pre: bytes) -> bytes:
    """The toy transition the forge Fixture uses: keccak256(abi.encode("step", pre))."""
    return keccak(abi_encode(["string", "bytes32"], ["step", pre]))


def toy_leaves(init: bytes, n: int, lie_from: int | None = None) -> list[bytes]:
    """Leaf entries C_1..C_n of the toy trajectory; from ``lie_from`` on each leaf is a lie (as Fixture)."""
    leaves, state = [], init
    for i in range(n):
        state = toy_step(state)
        lie = lie_from is not None and i >= lie_from
        leaves.append(keccak(abi_encode(["string", "bytes32"], ["lie", state])) if lie else state)
    return leaves


def match_job(w3, deployment, contracts, actors, *, total_steps=64, interval=4) -> tuple[bytes, dict]:
    """Submitter signs an order, solver a bid, submitter accepts; returns (jobId, receipt)."""
    domain = domain_of(w3, deployment)
    order = make_order(w3, actors.submitter.address, total_steps=total_steps, interval=interval)
    bid = make_bid(w3, contracts.market, actors.solver.address, order.digest(domain))
    fn = contracts.market.functions.acceptBid(
        order.as_abi_tuple(),
        order.sign(domain, actors.submitter),
        bid.as_abi_tuple(),
        bid.sign(domain, actors.solver),
    )
    receipt = send(w3, actors.submitter, fn)
    (event,) = contracts.market.events.JobMatched().process_receipt(receipt, errors=DISCARD)
    return bytes(event["args"]["jobId"]), receipt


def commit(w3, contracts, solver, job_id: bytes, leaves: list[bytes]) -> dict:
    tree = merkle.build_tree(leaves)
    n = len(leaves)
    fn = contracts.market.functions.commit(
        job_id,
        merkle.tree_root(tree),
        n,
        leaves[-1],
        merkle.inclusion_path(tree, n - 1, n),
        "http://solver.invalid",
    )
    return send(w3, solver, fn)


# ------------------------------------------------------------ 0. deployment


def test_deployment_is_wired_and_recorded(w3, dev, deployment, contracts):
    assert deployment.path is not None and load_deployment(deployment.path) == deployment
    on_disk = json.loads(Path(deployment.path).read_text())
    assert set(on_disk["addresses"]) == {"token", "stakeManager", "jobMarket", "statePublisher", "disputeGame"}
    assert on_disk["chainId"] == w3.eth.chain_id == 31337
    assert on_disk["deployer"] == dev[0].address
    assert 0 < on_disk["startBlock"] <= w3.eth.block_number
    assert contracts.stakes.functions.market().call() == contracts.market.address
    assert contracts.stakes.functions.game().call() == contracts.game.address
    assert contracts.market.functions.game().call() == contracts.game.address
    assert contracts.token.functions.owner().call() == dev[0].address
    market_params = contracts.market.functions.params().call()._asdict()
    assert {k: int(v) for k, v in deployment.params["market"].items()} == market_params
    game_params = contracts.game.functions.params().call()._asdict()
    assert {k: int(v) for k, v in deployment.params["game"].items()} == game_params
    assert contracts.stakes.functions.unbondingDelay().call() == int(deployment.params["stake"]["unbondingDelay"])


# --------------------------------------------------------------- 1. EIP-712

addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)
hashes = st.binary(min_size=32, max_size=32)
u64 = st.integers(0, U64)
u256 = st.integers(0, U256)


def test_type_hashes_and_domain_match_contract(w3, deployment, contracts):
    market = contracts.market
    assert type_hash("JobOrder", JOB_ORDER_FIELDS) == market.functions.JOB_ORDER_TYPEHASH().call()
    assert type_hash("Bid", BID_FIELDS) == market.functions.BID_TYPEHASH().call()
    domain = domain_of(w3, deployment)
    order = make_order(w3, deployment.deployer)
    # EIP-191 v1 header = the domain separator
    assert order.signable(domain).header == market.functions.domainSeparator().call()
    eip5267 = market.functions.eip712Domain().call()
    assert (eip5267[1], eip5267[2], eip5267[3], eip5267[4]) == (
        domain.name,
        domain.version,
        domain.chain_id,
        domain.verifying_contract,
    )


@HYPOTHESIS
@given(
    key=st.integers(1, SECP256K1_N - 1),
    spec=hashes, dataset=hashes, init=hashes,
    steps=u64, interval=u64, max_price=u256, deadline=u64, nonce=u256,
)  # fmt: skip
def test_order_digest_matches_contract(
    w3, deployment, contracts, key, spec, dataset, init, steps, interval, max_price, deadline, nonce
):
    signer = Account.from_key(key.to_bytes(32, "big"))
    order = JobOrder(signer.address, spec, dataset, init, steps, interval, max_price, deadline, nonce)
    domain = domain_of(w3, deployment)
    digest = order.digest(domain)
    assert digest == contracts.market.functions.hashOrder(order.as_abi_tuple()).call()
    assert order.recover(domain, order.sign(domain, signer)) == signer.address
    # any field change changes the digest
    assert order.replace(nonce=(nonce + 1) % (U256 + 1)).digest(domain) != digest


@HYPOTHESIS
@given(
    key=st.integers(1, SECP256K1_N - 1),
    order_hash=hashes, price=u256, stake_=u256, expiry=u64, nonce=u256, work_time=u64,
)  # fmt: skip
def test_bid_digest_matches_contract(
    w3, deployment, contracts, key, order_hash, price, stake_, expiry, nonce, work_time
):
    signer = Account.from_key(key.to_bytes(32, "big"))
    bid = Bid(signer.address, order_hash, price, stake_, expiry, nonce, work_time)
    domain = domain_of(w3, deployment)
    assert bid.digest(domain) == contracts.market.functions.hashBid(bid.as_abi_tuple()).call()
    assert bid.recover(domain, bid.sign(domain, signer)) == signer.address


def test_digest_depends_on_chain_and_contract(w3, deployment):
    order = make_order(w3, deployment.deployer)
    domain = domain_of(w3, deployment)
    assert order.digest(domain) != order.digest(Domain(1, domain.verifying_contract))
    assert order.digest(domain) != order.digest(Domain(domain.chain_id, deployment.address_of("DisputeGame")))


def test_python_signatures_accepted_and_wrong_signer_rejected(w3, deployment, contracts, actors, dev):
    market, domain = contracts.market, domain_of(w3, deployment)
    decoder = default_decoder()
    submitter, solver, stranger = actors.submitter, actors.solver, dev[9]

    # wrong order signer: InvalidSignature(expected=submitter), seen raw from web3 and decoded by name
    order = make_order(w3, submitter.address)
    bid = make_bid(w3, market, solver.address, order.digest(domain))
    bad = market.functions.acceptBid(
        order.as_abi_tuple(), order.sign(domain, stranger), bid.as_abi_tuple(), bid.sign(domain, solver)
    )
    with pytest.raises(ContractCustomError) as raw:
        bad.call({"from": submitter.address})
    decoded = decoder.from_exception(raw.value)
    assert decoded is not None and decoded.name == "InvalidSignature"
    assert decoded.fields == {"expected": submitter.address}
    assert decoded.selector == decoder.selector_of("InvalidSignature")
    with pytest.raises(ContractRevert) as err:  # the same through protocol.tx.send
        send(w3, submitter, bad)
    assert err.value.name == "InvalidSignature" and err.value.fields["expected"] == submitter.address
    assert isinstance(err.value, RuntimeError)

    # wrong bid signer (a valid signature over the right digest, by someone else)
    bad_bid = market.functions.acceptBid(
        order.as_abi_tuple(), order.sign(domain, submitter), bid.as_abi_tuple(), bid.sign(domain, stranger)
    )
    with pytest.raises(ContractRevert) as err:
        send(w3, submitter, bad_bid)
    assert (err.value.name, err.value.fields) == ("InvalidSignature", {"expected": solver.address})

    # a bid signed over another order's fields
    tampered = bid.replace(price=bid.price - 1)
    with pytest.raises(ContractRevert) as err:
        send(
            w3,
            submitter,
            market.functions.acceptBid(
                order.as_abi_tuple(),
                order.sign(domain, submitter),
                tampered.as_abi_tuple(),
                bid.sign(domain, solver),
            ),
        )
    assert err.value.name == "InvalidSignature"

    # the honest pair is accepted; the job id is the Python digest of the order
    good = market.functions.acceptBid(
        order.as_abi_tuple(), order.sign(domain, submitter), bid.as_abi_tuple(), bid.sign(domain, solver)
    )
    receipt = send(w3, submitter, good)
    (event,) = market.events.JobMatched().process_receipt(receipt, errors=DISCARD)
    assert bytes(event["args"]["jobId"]) == order.digest(domain)
    job = market.functions.getJob(order.digest(domain)).call()
    assert (job.state, job.submitter, job.solver, job.price) == (
        MATCHED,
        submitter.address,
        solver.address,
        PRICE,
    )
    assert market.functions.nonceUsed(submitter.address, order.nonce).call()

    # replaying the same signed order: JobExists; a new order reusing the nonce: NonceUsed
    with pytest.raises(ContractRevert) as err:
        send(w3, submitter, good)
    assert err.value.name == "JobExists"
    again = order.replace(specHash=keccak(text="other spec"))
    bid2 = make_bid(w3, market, solver.address, again.digest(domain))
    with pytest.raises(ContractRevert) as err:
        send(
            w3,
            submitter,
            market.functions.acceptBid(
                again.as_abi_tuple(),
                again.sign(domain, submitter),
                bid2.as_abi_tuple(),
                bid2.sign(domain, solver),
            ),
        )
    assert (err.value.name, err.value.fields) == (
        "NonceUsed",
        {"signer": submitter.address, "nonce": order.nonce},
    )


# ----------------------------------------------------------------- 2. Merkle


@pytest.fixture(scope="module")
def harness(w3, dev):
    return deploy_harness(w3, dev[0], "RFC9162Harness")


def entries(n: int, salt: bytes = b"") -> list[bytes]:
    return [hashlib.sha256(salt + i.to_bytes(8, "big")).digest() for i in range(n)]


def tampered_variants(root: bytes, leaf: bytes, index: int, size: int, path: list[bytes]):
    """(label, root, leaf, index, size, path) for proofs that must all fail."""
    flip = lambda h, i=0: h[:i] + bytes([h[i] ^ 0x01]) + h[i + 1 :]  # noqa: E731
    yield "flipped leaf", root, flip(leaf), index, size, path
    yield "flipped root", flip(root, 31), leaf, index, size, path
    yield "index past size", root, leaf, size, size, path
    if size > 1:
        yield "wrong index", root, leaf, (index + 1) % size, size, path
    if path:
        for j in {0, len(path) - 1}:
            yield (
                f"flipped sibling {j}",
                root,
                leaf,
                index,
                size,
                [*path[:j], flip(path[j], j % 32), *path[j + 1 :]],
            )
        yield "truncated", root, leaf, index, size, path[:-1]
    yield "extended", root, leaf, index, size, [*path, root]


def test_pymerkle_matches_reference_rfc9162():
    for size in range(0, 65):
        es = entries(size, b"ref")
        tree = merkle.build_tree(es)
        leaves = [merkle.leaf_hash(e) for e in es]
        assert merkle.tree_root(tree) == merkle.rfc9162_root(leaves), size
        for i in range(size):
            path = merkle.inclusion_path(tree, i, size)
            assert path == merkle.rfc9162_path(leaves, i), (size, i)
            assert merkle.verify_inclusion(merkle.rfc9162_root(leaves), leaves[i], i, size, path)
            assert len(path) == merkle.leaf_depth(i, size)
        if size >= 2:
            assert merkle.node_hash(*merkle.children(tree, 0, size)) == merkle.tree_root(tree)
    sql = merkle.build_tree(entries(37, b"ref"), dbfile=":memory:")
    assert merkle.tree_root(sql) == merkle.rfc9162_root([merkle.leaf_hash(e) for e in entries(37, b"ref")])


def test_hashing_split_and_depth_match_contract(harness):
    for e in entries(4, b"h"):
        assert harness.functions.hashLeaf(e).call() == merkle.leaf_hash(e)
        assert harness.functions.hashNode(e, e[::-1]).call() == merkle.node_hash(e, e[::-1])
    for n in [*range(2, 70), 2**20 - 1, 2**20, 2**20 + 1, 2**32]:
        assert harness.functions.splitPoint(n).call() == merkle.split_point(n), n
    for size in range(1, 18):
        for i in range(size):
            assert harness.functions.leafDepth(i, size).call() == merkle.leaf_depth(i, size)


def test_every_index_of_small_trees_verifies_on_chain(harness):
    calls = rejected = 0
    for size in range(1, 18):
        tree = merkle.build_tree(entries(size, b"small"))
        root = merkle.tree_root(tree)
        for i in range(size):
            leaf, path = tree.get_leaf(i + 1), merkle.inclusion_path(tree, i, size)
            assert harness.functions.verifyInclusion(root, leaf, i, size, path).call(), (size, i)
            assert tuple(harness.functions.rootFromPath(leaf, i, size, path).call()) == (True, root)
            calls += 2
            for label, *args in tampered_variants(root, leaf, i, size, path):
                on_chain = harness.functions.verifyInclusion(*args).call()
                assert on_chain is False, (label, size, i)
                assert merkle.verify_inclusion(*args) is False, (label, size, i)
                calls += 1
                rejected += 1
            # An RFC 9162 root does not commit to the tree size: where the audit paths of (i, size) and
            # (i, size ± 1) have the same shape, the same proof verifies for both. The contracts therefore
            # take the size from storage (job.numLeaves), never from the caller. Python and Solidity agree.
            for other in (size - 1, size + 1):
                args = (root, leaf, i, other, path)
                assert harness.functions.verifyInclusion(*args).call() is merkle.verify_inclusion(*args)
                calls += 1
    assert rejected > 600
    print(f"\nsmall trees: {calls} eth_calls, {rejected} tampered proofs rejected")


@pytest.fixture(scope="module")
def big_tree():
    """One pymerkle tree of 2^20 leaves (SqliteTree in memory: bulk insert), built once."""
    t0 = time.perf_counter()
    tree = merkle.build_tree(entries(2**20, b"big"), dbfile=":memory:")
    print(f"\nbuilt a 2^20-leaf pymerkle SqliteTree in {time.perf_counter() - t0:.1f}s")
    return tree


def test_random_large_trees_verify_on_chain(harness, big_tree):
    rng = random.Random(0x5EED)
    full = 2**20
    pairs = [(full, 0), (full, full - 1), (full - 1, full - 2), (2**19 + 1, 2**19), (1, 0), (3, 2)]
    pairs += [(s := rng.randint(1, full), rng.randrange(s)) for _ in range(40)]
    t0 = time.perf_counter()
    for size, index in pairs:
        root = merkle.tree_root(big_tree, size)
        leaf = big_tree.get_leaf(index + 1)
        path = merkle.inclusion_path(big_tree, index, size)
        assert merkle.root_from_path(leaf, index, size, path) == root, (size, index)
        assert harness.functions.verifyInclusion(root, leaf, index, size, path).call(), (size, index)
        for label, *args in tampered_variants(root, leaf, index, size, path):
            assert harness.functions.verifyInclusion(*args).call() is False, (label, size, index)
    print(f"\n{len(pairs)} random (size, index) pairs up to 2^20 checked in {time.perf_counter() - t0:.1f}s")


# -------------------------------------------------------------- 3. lifecycle


def test_honest_job_finalizes_after_audit_window(w3, deployment, contracts, actors):
    market, stakes = contracts.market, contracts.stakes
    job_id, _ = match_job(w3, deployment, contracts, actors, total_steps=24, interval=4)
    commit(w3, contracts, actors.solver, job_id, toy_leaves(INIT_ROOT, 6))
    seed_block = market.functions.getJob(job_id).call().seedBlock
    mine_past(w3, seed_block)
    header = seed_header(w3, seed_block)
    send(w3, actors.challenger, market.functions.drawAudit(job_id, header))
    job = market.functions.getJob(job_id).call()
    # The Python sampler reproduces the contract's seed (from the seed block's RANDAO value) and its sample.
    randao = randao_of(header)
    assert randao == bytes(w3.eth.get_block(seed_block)["mixHash"])
    assert sampling.audit_seed(randao, job_id, job.trajectoryRoot) == bytes(job.seed)
    mp = deployment.params["market"]
    assert market.functions.sampledSegments(job_id).call() == sampling.sampled_segments(
        bytes(job.seed), 6, mp["auditRateBps"], mp["maxSampledSegments"]
    )
    assigned = market.functions.assignedVerifiers(job_id).call()
    assert len(assigned) == deployment.params["market"]["verifiersPerJob"]
    signers = {a.address: a for a in (actors.challenger, *actors.verifiers)}
    for v in assigned:
        send(w3, signers[v], market.functions.attest(job_id))
    with pytest.raises(ContractRevert) as err:
        send(w3, actors.submitter, market.functions.finalize(job_id))
    assert err.value.name == "AuditWindowOpen"
    solver_before = stakes.functions.positionOf(actors.solver.address).call().claimable
    increase_time(w3, deployment.params["market"]["auditWindow"])
    send(w3, actors.submitter, market.functions.finalize(job_id))
    assert market.functions.getJob(job_id).call().state == FINALIZED
    fee_budget = PRICE * deployment.params["market"]["auditFeeBps"] // 10_000
    assert stakes.functions.positionOf(actors.solver.address).call().claimable - solver_before == PRICE - fee_budget


def test_lying_solver_is_disputed_down_to_the_leaf_and_slashed(w3, deployment, contracts, actors, artifacts_dir):
    market, game, stakes, token = contracts.market, contracts.game, contracts.stakes, contracts.token
    gas: dict[str, list[int]] = defaultdict(list)
    signers = {a.address: a for a in (actors.challenger, *actors.verifiers)}

    def tx(label: str, who, fn) -> dict:
        receipt = send(w3, who, fn)
        gas[label].append(int(receipt["gasUsed"]))
        return receipt

    # stakes are in place (actors fixture: mint, approve, deposit, setVerifier)
    assert stakes.functions.positionOf(actors.solver.address).call().verifier is False
    for v in (actors.challenger, *actors.verifiers):
        assert stakes.functions.positionOf(v.address).call().verifier is True
        assert stakes.functions.drawWeightOf(v.address).call() > 0

    # match: order signed by the submitter, bid by the solver, both with eth-account
    n, first_wrong = 13, 9
    domain = domain_of(w3, deployment)
    order = make_order(w3, actors.submitter.address, total_steps=n * 5, interval=5)
    bid = make_bid(w3, market, actors.solver.address, order.digest(domain))
    tx(
        "acceptBid",
        actors.submitter,
        market.functions.acceptBid(
            order.as_abi_tuple(),
            order.sign(domain, actors.submitter),
            bid.as_abi_tuple(),
            bid.sign(domain, actors.solver),
        ),
    )
    job_id = order.digest(domain)
    stake_amount = bid.stake

    # the solver commits a pymerkle root over a trajectory that goes wrong at leaf 9
    leaves = toy_leaves(INIT_ROOT, n, lie_from=first_wrong)
    tree = merkle.build_tree(leaves)
    tx(
        "commit",
        actors.solver,
        market.functions.commit(
            job_id,
            merkle.tree_root(tree),
            n,
            leaves[-1],
            merkle.inclusion_path(tree, n - 1, n),
            "http://solver.invalid",
        ),
    )
    job = market.functions.getJob(job_id).call()
    assert job.state == COMMITTED
    with pytest.raises(ContractRevert) as err:  # the seed block is not mined yet
        send(w3, actors.challenger, market.functions.drawAudit(job_id, b""))
    assert (err.value.name, err.value.fields) == ("SeedNotReady", {"seedBlock": job.seedBlock})
    mine_past(w3, job.seedBlock)
    tx("drawAudit", actors.challenger, market.functions.drawAudit(job_id, seed_header(w3, job.seedBlock)))

    # the challenger replays and finds the first wrong leaf
    honest = toy_leaves(INIT_ROOT, n)
    wrong = next(i for i in range(n) if honest[i] != leaves[i])
    assert wrong == first_wrong

    submitter_claim_before = stakes.functions.positionOf(actors.submitter.address).call().claimable
    challenger_before = stakes.functions.positionOf(actors.challenger.address).call()
    receipt = tx("openDispute", actors.challenger, game.functions.openDispute(job_id))
    (opened,) = game.events.DisputeOpened().process_receipt(receipt, errors=DISCARD)
    dispute_id = opened["args"]["disputeId"]
    assert game.functions.latestDisputeOf(job_id).call() == dispute_id
    assert market.functions.getJob(job_id).call().state == DISPUTED

    # descent: the solver reveals children, the challenger steers toward the wrong leaf
    rounds = 0
    while (d := game.functions.getDispute(dispute_id).call()).phase == AWAITING_REVEAL:
        left, right = merkle.children(tree, d.lo, d.hi)
        tx("reveal", actors.solver, game.functions.reveal(dispute_id, left, right))
        assert game.functions.getDispute(dispute_id).call().phase == AWAITING_CHOICE
        mid = d.lo + merkle.split_point(d.hi - d.lo)
        tx("choose", actors.challenger, game.functions.choose(dispute_id, wrong >= mid))
        rounds += 1
    assert d.phase == AWAITING_LEAF and (d.lo, d.hi) == (wrong, wrong + 1)
    assert rounds == merkle.leaf_depth(wrong, n) == 4

    # the solver opens leaf i with the pre-state (leaf i-1) proved against the trajectory root
    tx(
        "openLeaf",
        actors.solver,
        game.functions.openLeaf(
            dispute_id, leaves[wrong], leaves[wrong - 1], merkle.inclusion_path(tree, wrong - 1, n)
        ),
    )
    d = game.functions.getDispute(dispute_id).call()
    assert (d.phase, d.postStateRoot, d.preStateRoot) == (
        AWAITING_COMMITTEE,
        leaves[wrong],
        leaves[wrong - 1],
    )
    mine_past(w3, d.seedBlock)
    tx("drawCommittee", actors.submitter, game.functions.drawCommittee(dispute_id, seed_header(w3, d.seedBlock)))
    committee = game.functions.committee(dispute_id).call()
    assert 1 <= len(committee) <= deployment.params["game"]["committeeSize"]
    parties = {actors.solver.address, actors.challenger.address, actors.submitter.address}
    assert not parties & set(committee)

    # arbiters replay the segment from the opened pre-state, commit sha256(result ‖ salt ‖ arbiter), reveal
    d = game.functions.getDispute(dispute_id).call()
    assert d.phase == VOTING
    result = toy_step(d.preStateRoot)
    assert result == honest[wrong] != d.postStateRoot
    arbiters_before = {a: stakes.functions.positionOf(a).call().claimable for a in committee}
    salts = {}
    for a in committee:
        salts[a] = secrets.token_bytes(32)
        commitment = hashlib.sha256(result + salts[a] + bytes.fromhex(a[2:])).digest()
        assert commitment == game.functions.voteCommitment(result, salts[a], a).call()
        tx("commitVote", signers[a], game.functions.commitVote(dispute_id, commitment))
    for k, a in enumerate(committee):
        label = "revealVote+settle" if k == len(committee) - 1 else "revealVote"
        receipt = tx(label, signers[a], game.functions.revealVote(dispute_id, result, salts[a]))
    (resolved,) = game.events.DisputeResolved().process_receipt(receipt, errors=DISCARD)
    assert resolved["args"]["outcome"] == CHALLENGER_WON
    assert resolved["args"]["winner"] == actors.challenger.address
    assert resolved["args"]["slashed"] == stake_amount
    assert game.functions.getDispute(dispute_id).call().phase == RESOLVED

    # the job is Slashed; challenger credited its share, bond back; submitter refunded; arbiters paid
    p = deployment.params["market"]
    assert market.functions.getJob(job_id).call().state == SLASHED
    challenger_after = stakes.functions.positionOf(actors.challenger.address).call()
    assert challenger_after.claimable - challenger_before.claimable == stake_amount * p["slashWinnerBps"] // 10_000
    assert challenger_after.free == challenger_before.free  # bond unlocked
    bond_key = keccak(abi_encode(["bytes32", "uint256"], [keccak(text="veritrain.dispute.bond"), dispute_id]))
    arbiter_key = keccak(abi_encode(["bytes32", "uint256"], [keccak(text="veritrain.dispute.arbiter"), dispute_id]))
    assert stakes.functions.lockedUnder(actors.challenger.address, bond_key).call() == 0
    each_arbiter = stake_amount * p["slashArbiterBps"] // 10_000 // len(committee)
    assert sorted(resolved["args"]["majorityArbiters"]) == sorted(committee)
    for a in committee:
        assert stakes.functions.lockedUnder(a, arbiter_key).call() == 0
        assert stakes.functions.positionOf(a).call().claimable - arbiters_before[a] == each_arbiter
    submitter_claim = stakes.functions.positionOf(actors.submitter.address).call().claimable
    assert submitter_claim - submitter_claim_before == PRICE

    # withdraw() pays the submitter's credits out in tokens
    balance_before = token.functions.balanceOf(actors.submitter.address).call()
    tx("withdraw", actors.submitter, stakes.functions.withdraw())
    assert token.functions.balanceOf(actors.submitter.address).call() - balance_before == submitter_claim
    assert stakes.functions.positionOf(actors.submitter.address).call().claimable == 0

    # gas per move type, from the receipts
    report = {
        "chainId": w3.eth.chain_id,
        "numLeaves": n,
        "disputedLeaf": wrong,
        "descentRounds": rounds,
        "committeeSize": len(committee),
        "gasUsed": {k: v for k, v in gas.items()},
        "gasUsedMean": {k: round(sum(v) / len(v)) for k, v in gas.items()},
        "disputeTotal": sum(
            sum(v) for k, v in gas.items() if k not in {"acceptBid", "commit", "drawAudit", "withdraw"}
        ),
    }
    out = artifacts_dir / "dispute-gas.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\ngas used per move (N={n}, leaf {wrong}, {rounds} rounds, committee {len(committee)}):")
    for label, values in gas.items():
        print(f"  {label:<18} {', '.join(str(v) for v in values)}")
    print(f"  {'dispute total':<18} {report['disputeTotal']}  → {out}")


def test_revert_decoder_knows_every_protocol_error():
    decoder = default_decoder()
    names = decoder.error_names()
    for contract in ("JobMarket", "DisputeGame", "StakeManager"):
        for entry in load_artifact(contract).entries("error"):
            assert entry["name"] in names
    # unknown selectors are reported, not swallowed
    unknown = decoder.decode(b"\xde\xad\xbe\xef" + b"\x00" * 32)
    assert unknown.name == "<unknown>" and isinstance(unknown, ContractRevert)
