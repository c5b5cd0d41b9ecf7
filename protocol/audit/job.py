"""The rules of one job's lifecycle (DESIGN §5, contracts/src/JobMarket.sol), re-checked from a :class:`JobRecord`:
signatures recovered from the ``acceptBid`` calldata, escrow and stake, the commit, the audit draw, the
attestations and the settlement. The job's disputes are audited by :mod:`protocol.audit.dispute`."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from protocol import merkle, sampling
from protocol.audit.draws import check_draw_weights, seed_randao
from protocol.audit.record import VERIFIER_DRAW_TAG, JobRecord, Tx, from_hex, to_hex
from protocol.audit.verdict import RuleSet, Verdict, Violation, require
from protocol.constants import BPS
from protocol.eip712 import Bid, Domain, JobOrder

rules = RuleSet()


def addr(a: str) -> str:
    return to_checksum_address(a)


class JobAudit:
    def __init__(self, rec: JobRecord) -> None:
        self.rec = rec
        self.market = rec.params["market"]

    def events(self, name: str) -> list[tuple[Tx, dict[str, Any]]]:
        return [
            (t, e.args)
            for t in self.rec.txs
            for e in t.events_named(name, "JobMarket")
            if e.args.get("jobId") == self.rec.job_id
        ]

    def one(self, name: str) -> tuple[Tx, dict[str, Any]] | None:
        found = self.events(name)
        require(len(found) <= 1, f"{len(found)} {name} events for one job")
        return found[0] if found else None

    @cached_property
    def audit_seed_block(self) -> int:
        """The audit's seed block: the commit's, or the last re-armed one (0 before the commit)."""
        rearms = self.events("AuditSeedRearmed")
        if rearms:
            return int(rearms[-1][1]["seedBlock"])
        committed = self.one("JobCommitted")
        return int(committed[1]["seedBlock"]) if committed else 0

    @cached_property
    def matched(self) -> tuple[Tx, dict[str, Any]]:
        m = self.one("JobMatched")
        if m is None:
            raise Violation("the job has no JobMatched event")
        return m

    @property
    def solver(self) -> str:
        return addr(self.matched[1]["solver"])

    @property
    def submitter(self) -> str:
        return addr(self.matched[1]["submitter"])

    def paused_at(self, tx: Tx) -> bool:
        """True when a dispute ran on the job at ``tx`` (its last JobDisputed comes after its last reopening):
        the audit window is paused then."""
        paused = False
        for t in self.rec.txs:
            if (t.block, t.index) >= (tx.block, tx.index):
                break
            for e in t.events:
                if e.args.get("jobId") != self.rec.job_id:
                    continue
                if e.name == "JobDisputed":
                    paused = True
                elif e.name == "JobReopened":
                    paused = False
        return paused

    def audit_end_at(self, tx: Tx) -> int | None:
        """auditEnd in effect just before ``tx`` (commit, then each reopening)."""
        end = None
        for t in self.rec.txs:
            if (t.block, t.index) >= (tx.block, tx.index):
                break
            for e in t.events:
                if e.name in ("JobCommitted", "JobReopened") and e.args.get("jobId") == self.rec.job_id:
                    end = int(e.args["auditEnd"])
        return end


@rules.rule("job.match", "order and bid signatures in the acceptBid calldata recover to the submitter and solver")
def _match(a: JobAudit) -> str:
    tx, ev = a.matched
    require(tx.function == "acceptBid", "the JobMatched transaction is not a direct acceptBid call")
    o, b = tx.args["order"], tx.args["bid"]
    # the calldata as decoded: bytes32 fields as 0x-hex (66 chars), the rest as they are
    order_fields: dict[str, Any] = {
        k: (from_hex(v) if isinstance(v, str) and len(v) == 66 else v) for k, v in o.items()
    }
    bid_fields: dict[str, Any] = {k: (from_hex(v) if isinstance(v, str) and len(v) == 66 else v) for k, v in b.items()}
    order, bid = JobOrder(**order_fields), Bid(**bid_fields)
    domain = Domain(chain_id=a.rec.chain_id, verifying_contract=a.rec.contracts["jobMarket"])
    require(to_hex(order.digest(domain)) == a.rec.job_id, "the job id is not the EIP-712 digest of the accepted order")
    require(bid.orderHash == from_hex(a.rec.job_id), "the bid is for another order")
    signer = order.recover(domain, from_hex(tx.args["orderSig"]))
    require(addr(signer) == addr(order.submitter), f"the order signature recovers to {signer}, not {order.submitter}")
    require(tx.sender == addr(order.submitter), f"acceptBid sent by {tx.sender}, not by the submitter")
    bidder = bid.recover(domain, from_hex(tx.args["bidSig"]))
    require(addr(bidder) == addr(bid.solver), f"the bid signature recovers to {bidder}, not {bid.solver}")
    want = {
        "submitter": addr(order.submitter),
        "solver": addr(bid.solver),
        "specHash": to_hex(order.specHash),
        "datasetHash": to_hex(order.datasetHash),
        "initStateRoot": to_hex(order.initStateRoot),
        "totalSteps": order.totalSteps,
        "checkpointInterval": order.checkpointInterval,
        "price": bid.price,
        "stake": bid.stake,
        "deadline": order.deadline,
    }
    got = {k: (addr(ev[k]) if k in ("submitter", "solver") else ev[k]) for k in want}
    require(got == want, f"JobMatched {got} differs from the signed order and bid {want}")
    require(
        tx.timestamp < order.deadline and tx.timestamp < bid.expiry, "accepted after the order deadline or bid expiry"
    )
    return f"order signed by {short_addr(signer)}, bid by {short_addr(bidder)}"


@rules.rule(
    "job.accept-window",
    "the bid was accepted early enough for its signed workTime: acceptance time + workTime <= the order's deadline",
)
def _accept_window(a: JobAudit) -> str:
    tx, _ = a.matched
    require(tx.function == "acceptBid", "the JobMatched transaction is not a direct acceptBid call")
    work, deadline = int(tx.args["bid"]["workTime"]), int(tx.args["order"]["deadline"])
    require(
        tx.timestamp + work <= deadline,
        f"accepted at {tx.timestamp} with workTime {work}s, which ends after the deadline {deadline}",
    )
    return f"accepted at {tx.timestamp}, workTime {work}s, {deadline - tx.timestamp - work}s to spare before {deadline}"


def short_addr(x: str) -> str:
    return x[:10] + "…"


@rules.rule("job.escrow-stake", "price escrowed from the submitter, stake >= max(minJobStake, multiplier·price) locked")
def _escrow(a: JobAudit) -> str:
    tx, ev = a.matched
    price, stake = int(ev["price"]), int(ev["stake"])
    required = max(int(a.market["minJobStake"]), price * int(a.market["stakeMultiplierBps"]) // BPS)
    require(stake >= required, f"job stake {stake} below the required {required}")
    if tx.function == "acceptBid":
        require(price <= int(tx.args["order"]["maxPrice"]), "price above the order's maxPrice")
    locks = [(addr(e.args["account"]), e.args["key"], int(e.args["amount"])) for e in tx.events_named("StakeLocked")]
    require((a.solver, a.rec.job_id, stake) in locks, f"no StakeLocked({a.solver}, jobId, {stake})")
    escrows = [(e.args["jobId"], addr(e.args["payer"]), int(e.args["amount"])) for e in tx.events_named("Escrowed")]
    require(escrows == ([(a.rec.job_id, a.submitter, price)] if price else []), f"escrow {escrows}, expected {price}")
    return f"price {price} escrowed, stake {stake} locked (required {required})"


@rules.rule("job.commit", "committed by the solver before the deadline, N leaves, final state proved as leaf N-1")
def _commit(a: JobAudit) -> str:
    c = a.one("JobCommitted")
    if c is None:
        return "not committed"
    tx, ev = c
    m = a.matched[1]
    require(tx.sender == a.solver, f"commit sent by {tx.sender}, not the solver")
    require(tx.timestamp < int(m["deadline"]), f"committed at {tx.timestamp}, deadline {m['deadline']}")
    n = int(m["totalSteps"]) // int(m["checkpointInterval"])
    require(int(ev["numLeaves"]) == n, f"{ev['numLeaves']} leaves committed, the order gives {n}")
    require(tx.function == "commit", "the commit calldata is not in the record")
    proof = [from_hex(h) for h in tx.args["finalProof"]]
    root, final = from_hex(ev["trajectoryRoot"]), from_hex(ev["finalStateRoot"])
    require(
        merkle.verify_inclusion(root, merkle.leaf_hash(final), n - 1, n, proof),
        "the final state root is not proved as leaf N-1 of the trajectory root",
    )
    require(int(ev["auditEnd"]) == tx.timestamp + int(a.market["auditWindow"]), "auditEnd != commit time + auditWindow")
    require(int(ev["seedBlock"]) == tx.block + 1, "the audit seed block is not the block after the commit")
    return f"{n} leaves, root {to_hex(root)[:10]}…, committed at block {tx.block}"


@rules.rule(
    "job.audit-draw",
    "audit seed from the seed block's RANDAO value (its header hashes to its block hash); sampled segments and "
    "verifiers as the contract's rules",
)
def _audit(a: JobAudit) -> str:
    d = a.one("AuditDrawn")
    if d is None:
        return "audit not drawn"
    tx, ev = d
    committed = a.one("JobCommitted")
    if committed is None:
        raise Violation("an AuditDrawn event but no JobCommitted event")
    commit_tx, c = committed
    seed_block = int(c["seedBlock"])
    for t, r in a.events("AuditSeedRearmed"):
        require(t.block > seed_block + 256, f"audit seed re-armed at {t.block} while block {seed_block} was readable")
        seed_block = int(r["seedBlock"])
    require(seed_block == a.audit_seed_block, "the seed block moved without an AuditSeedRearmed event")
    require(tx.block > seed_block, f"audit drawn at block {tx.block}, not after seed block {seed_block}")
    randao = seed_randao(a.rec.blocks, seed_block)
    seed = sampling.audit_seed(randao, from_hex(a.rec.job_id), from_hex(c["trajectoryRoot"]))
    require(ev["seed"] == to_hex(seed), f"audit seed {ev['seed']} != recomputed {to_hex(seed)}")
    n = int(c["numLeaves"])
    segments = sampling.sampled_segments(seed, n, int(a.market["auditRateBps"]), int(a.market["maxSampledSegments"]))
    require([int(s) for s in ev["segments"]] == segments, f"sampled segments {ev['segments']}, recomputed {segments}")
    verifiers = [addr(v) for v in ev["verifiers"]]
    require(not {a.solver, a.submitter} & set(verifiers), "the solver or the submitter was drawn as a verifier")
    draw = a.rec.audit_draw
    if draw is None:
        raise Violation("the record has no re-run of the verifier draw")
    want_seed = keccak(abi_encode(["bytes32", "bytes32"], [seed, VERIFIER_DRAW_TAG]))
    require(draw.seed == to_hex(want_seed), "the verifier draw was re-run with another seed")
    if draw.exact:
        require(
            [addr(x) for x in draw.drawn] == verifiers, f"re-draw gives {draw.drawn}, the contract drew {verifiers}"
        )
    else:
        require(all(draw.weights.get(v, 0) > 0 for v in verifiers), "a drawn verifier had no draw weight")
    return f"seed {to_hex(seed)[:10]}…, segments {segments}, {len(verifiers)} verifier(s)"


@rules.rule(
    "job.draw-weights",
    "verifiers drawn by the draw weights at the end of seed block - 2 (before the commit's block), which nobody "
    "could adjust knowing the seed; each had weight then",
)
def _draw_weights(a: JobAudit) -> str:
    d = a.one("AuditDrawn")
    if d is None:
        return "audit not drawn"
    draw = a.rec.audit_draw
    if draw is None:
        raise Violation("the record has no re-run of the verifier draw")
    return check_draw_weights(draw, a.audit_seed_block, [addr(v) for v in d[1]["verifiers"]], 1)


@rules.rule("job.attestations", "only assigned verifiers attest, once each, inside the audit window")
def _attest(a: JobAudit) -> str:
    d = a.one("AuditDrawn")
    assigned = {addr(v) for v in d[1]["verifiers"]} if d else set()
    seen = set()
    for tx, ev in a.events("Attested"):
        who = addr(ev["verifier"])
        require(who in assigned, f"{who} attested but was not assigned")
        require(who not in seen, f"{who} attested twice")
        end = a.audit_end_at(tx)
        require(
            end is not None and (tx.timestamp < end or a.paused_at(tx)),
            f"{who} attested at {tx.timestamp}, window closed at {end} (and no dispute paused it)",
        )
        seen.add(who)
    return f"{len(seen)} attestation(s) of {len(assigned)} assigned"


@rules.rule("job.settlement", "finalize/expire/slash amounts and timing follow the params")
def _settle(a: JobAudit) -> str:
    m = a.matched[1]
    price, stake = int(m["price"]), int(m["stake"])
    fin, exp, sl = a.one("JobFinalized"), a.one("JobExpired"), a.one("JobSlashed")
    require(sum(x is not None for x in (fin, exp, sl, a.one("JobVoided"))) <= 1, "the job was settled more than once")
    if fin:
        tx, ev = fin
        end = a.audit_end_at(tx)
        require(end is not None and tx.timestamp >= end, f"finalized at {tx.timestamp}, audit window until {end}")
        budget = price * int(a.market["auditFeeBps"]) // BPS
        per = budget // int(a.market["verifiersPerJob"]) if int(a.market["verifiersPerJob"]) else 0
        attested = sorted({addr(ev2["verifier"]) for _, ev2 in a.events("Attested")})
        fees, solver_paid = per * len(attested), price - budget
        want = (solver_paid, fees, budget - fees)
        got = (int(ev["solverPaid"]), int(ev["feesPaid"]), int(ev["refunded"]))
        require(got == want, f"finalize paid (solver, fees, refund) {got}, the params give {want}")
        releases = sorted((addr(e.args["to"]), int(e.args["amount"])) for e in tx.events_named("EscrowReleased"))
        expected = sorted(
            [(v, per) for v in attested if per]
            + [(a.solver, solver_paid)] * bool(solver_paid)
            + [(a.submitter, budget - fees)] * bool(budget - fees)
        )
        require(releases == expected, f"escrow releases {releases}, expected {expected}")
        unlocks = [
            (addr(e.args["account"]), e.args["key"], int(e.args["amount"])) for e in tx.events_named("StakeUnlocked")
        ]
        require(unlocks == [(a.solver, a.rec.job_id, stake)], f"stake unlocks {unlocks}, expected the job stake back")
        return f"finalized: solver {solver_paid}, fees {fees}, refund {budget - fees}"
    if exp:
        tx, ev = exp
        require(a.one("JobCommitted") is None, "expired although committed")
        require(tx.timestamp >= int(m["deadline"]), f"expired at {tx.timestamp}, before the deadline {m['deadline']}")
        slash = stake * int(a.market["expirySlashBps"]) // BPS
        require((int(ev["slashed"]), int(ev["refunded"])) == (slash, price), f"expiry {ev}, expected slash {slash}")
        return f"expired: submitter refunded {price}, solver slashed {slash}"
    voided = a.one("JobVoided")
    if voided:
        require(bool(a.rec.dispute_ids), "voided without a dispute")
        refunded = int(voided[1]["refunded"])
        require(refunded == price, f"voided with refund {refunded}, the price is {price}")
        return "voided by a dispute without a full committee: submitter refunded, stake unlocked, solver not paid"
    if sl:
        require(bool(a.rec.dispute_ids), "slashed without a dispute")
        return "slashed by a dispute (its settlement is checked in the dispute audit)"
    return "not settled (yet)"


def audit_job(rec: JobRecord) -> Verdict:
    return rules.run(f"job {rec.job_id}", JobAudit(rec))


def sampled(rec: JobRecord) -> list[int]:
    for t in rec.txs:
        for e in t.events_named("AuditDrawn"):
            return [int(s) for s in e.args["segments"]]
    return []
