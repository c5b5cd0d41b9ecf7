"""The rules of one dispute (DESIGN §8, contracts/src/DisputeGame.sol), re-checked from a :class:`DisputeRecord`.

Each rule recomputes what the contract should have done from the record's raw data (calldata, events, block
hashes and timestamps, parameters) with veritrain's own independent code (RFC 9162 in :mod:`protocol.merkle`,
the seeds with keccak, the chess clocks, the majority and the slash split in plain integer arithmetic) and
compares it with what the chain shows. Rule ids are listed in docs/audit.md.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from protocol import merkle
from protocol.audit.draws import check_draw_weights, seed_randao
from protocol.audit.record import (
    ARBITER_TAG,
    BOND_TAG,
    BURN_ADDRESS,
    COMMITTEE_TAG,
    FEE_TAG,
    UNAVAILABLE,
    DisputeRecord,
    Tx,
    arbiter_lock,
    dispute_bond_for,
    dispute_key,
    from_hex,
    to_hex,
)
from protocol.audit.verdict import RuleSet, Verdict, Violation, require
from protocol.constants import BPS, Outcome, api_name

SOLVER_WON, CHALLENGER_WON, NO_DECISION = Outcome.SOLVER_WON, Outcome.CHALLENGER_WON, Outcome.NO_DECISION
SUPERSEDED, NO_COMMITTEE, PUBLISHED = Outcome.SUPERSEDED, Outcome.NO_COMMITTEE, Outcome.PUBLISHED


def _outcome_name(value: int) -> str:
    try:
        return api_name(Outcome(value))
    except ValueError:
        return f"unknown outcome {value}"


#: Events that mark a transaction's role in the game.
MOVE_EVENTS = {"ChildrenRevealed": "reveal", "SideChosen": "choose", "LeafOpened": "openLeaf"}
#: Blocks whose hash the EVM can still read (``blockhash`` of older ones is zero).
BLOCKHASH_WINDOW = 256

rules = RuleSet()


def addr(a: str) -> str:
    return to_checksum_address(a)


def short(h: str | bytes) -> str:
    s = h if isinstance(h, str) else to_hex(h)
    return s[:10] + "…"


def split_point(n: int) -> int:
    return merkle.split_point(n)


@dataclass
class Move:
    kind: str  # reveal / choose / openLeaf
    tx: Tx
    event: dict[str, Any]


@dataclass
class Settlement:
    """What the rules say the resolving transaction must do."""

    outcome: int
    reason: str
    winner: str
    loser: str
    slashed: int
    majority: list[str]
    stake_events: list[tuple] = field(default_factory=list)
    credits: list[tuple[str, int]] = field(default_factory=list)
    burned: int = 0
    #: ("JobSlashed", challenger, slashed, refunded) or ("JobReopened", auditEnd); set by expected_settlement
    job_event: tuple = ()


class DisputeAudit:
    """Facts derived from a record, shared by the rules (nothing here decides pass or fail)."""

    def __init__(self, rec: DisputeRecord) -> None:
        self.rec = rec
        self.game = rec.params["game"]
        self.market = rec.params["market"]
        self.id = int(rec.dispute_id)

    # ---------------------------------------------------------------- job side

    def _job_event(self, name: str) -> tuple[Tx, dict[str, Any]]:
        for t in self.rec.job_txs:
            for e in t.events_named(name, "JobMarket"):
                if e.args.get("jobId") == self.rec.job_id:
                    return t, e.args
        raise Violation(f"the job {short(self.rec.job_id)} has no {name} event on chain")

    @cached_property
    def matched(self) -> dict[str, Any]:
        return self._job_event("JobMatched")[1]

    @cached_property
    def committed(self) -> dict[str, Any]:
        return self._job_event("JobCommitted")[1]

    @cached_property
    def n(self) -> int:
        return int(self.committed["numLeaves"])

    @cached_property
    def root(self) -> bytes:
        return from_hex(self.committed["trajectoryRoot"])

    @property
    def solver(self) -> str:
        return addr(self.matched["solver"])

    @property
    def submitter(self) -> str:
        return addr(self.matched["submitter"])

    # ---------------------------------------------------------------- dispute side

    def events(self, name: str) -> list[tuple[Tx, dict[str, Any]]]:
        return [
            (t, e.args)
            for t in self.rec.txs
            for e in t.events_named(name, "DisputeGame")
            if int(e.args.get("disputeId", -1)) == self.id
        ]

    @cached_property
    def opened(self) -> tuple[Tx, dict[str, Any]]:
        found = self.events("DisputeOpened")
        require(len(found) == 1, f"dispute {self.id} has {len(found)} DisputeOpened events, expected exactly one")
        return found[0]

    @property
    def challenger(self) -> str:
        return addr(self.opened[1]["challenger"])

    @cached_property
    def arbiter_lock(self) -> int:
        """What each arbiter of this dispute locks: max(arbiterStake, job stake · arbiterStakeBps)."""
        return arbiter_lock(self.game, int(self.matched["stake"]))

    @cached_property
    def queued(self) -> bool:
        """Filed while another dispute ran on the job (``DisputeQueued`` in the opening transaction)."""
        return bool(self.opened[0].events_named("DisputeQueued", "DisputeGame"))

    @cached_property
    def started(self) -> tuple[Tx, dict[str, Any]] | None:
        """The transaction the descent started in: the opening one, or for a queued dispute the one with its
        ``DisputeStarted`` (None while it waits, or if it was superseded)."""
        if not self.queued:
            return self.opened
        found = self.events("DisputeStarted")
        require(len(found) <= 1, f"dispute {self.id} started {len(found)} times")
        return found[0] if found else None

    @cached_property
    def moves(self) -> list[Move]:
        out = []
        for t in self.rec.txs:
            for e in t.events:
                if e.contract == "DisputeGame" and e.name in MOVE_EVENTS and int(e.args["disputeId"]) == self.id:
                    out.append(Move(MOVE_EVENTS[e.name], t, e.args))
        return out

    @cached_property
    def availability_leaf(self) -> int | None:
        """The leaf an availability challenge names; None for a descent."""
        found = self.events("AvailabilityRequested")
        return int(found[0][1]["leaf"]) if found else None

    @cached_property
    def leaf(self) -> Move | None:
        found = [m for m in self.moves if m.kind == "openLeaf"]
        return found[0] if found else None

    @cached_property
    def resolved(self) -> tuple[Tx, dict[str, Any]] | None:
        found = self.events("DisputeResolved")
        require(len(found) <= 1, f"dispute {self.id} was resolved {len(found)} times")
        return found[0] if found else None

    @property
    def availability_fee(self) -> int:
        """What a Published availability challenge holds for the solver's calldata: availabilityFeeBps of the bond."""
        return int(self.opened[1]["bond"]) * int(self.game["availabilityFeeBps"]) // BPS

    @property
    def fee_key(self) -> bytes:
        return dispute_key(FEE_TAG, self.id)

    @cached_property
    def drawn(self) -> tuple[Tx, dict[str, Any]] | None:
        found = self.events("CommitteeDrawn")
        require(len(found) <= 1, f"dispute {self.id} drew {len(found)} committees")
        return found[0] if found else None

    @property
    def committee(self) -> list[str]:
        return [addr(a) for a in self.drawn[1]["arbiters"]] if self.drawn else []

    @cached_property
    def commits(self) -> list[tuple[Tx, dict[str, Any]]]:
        return self.events("VoteCommitted")

    @cached_property
    def reveals(self) -> list[tuple[Tx, dict[str, Any]]]:
        return self.events("VoteRevealed")

    def audit_end_at_open(self) -> int:
        """The job's auditEnd in effect when the dispute started (the commit's, or the last reopening's, which for a
        queued dispute is in the very transaction that started it)."""
        start_tx = (self.started or self.opened)[0]
        end = None
        for t in self.rec.job_txs:
            if (t.block, t.index) > (start_tx.block, start_tx.index) or (t is start_tx and not self.queued):
                break
            for e in t.events:
                if e.name in ("JobCommitted", "JobReopened") and e.args.get("jobId") == self.rec.job_id:
                    end = int(e.args["auditEnd"])
        if end is None:
            raise Violation("the dispute opened before the job was committed")
        return end

    # ---------------------------------------------------------------- replays

    def descent(self) -> dict[str, Any]:
        """Replays the descent from the events: node, [lo, hi), siblings (top-down), phase to move next."""
        if self.availability_leaf is not None:  # no descent: the solver owes the named leaf's bytes
            i = self.availability_leaf
            return {"node": self.root, "lo": i, "hi": i + 1, "siblings": [], "phase": "data"}
        node, lo, hi = self.root, 0, self.n
        phase = "leaf" if self.n == 1 else "reveal"
        siblings: list[bytes] = []
        left: bytes | None = None
        right: bytes | None = None
        for m in self.moves:
            if m.kind == "reveal":
                left, right = from_hex(m.event["left"]), from_hex(m.event["right"])
                phase = "choose"
            elif m.kind == "choose":
                if left is None or right is None:
                    raise Violation(f"a SideChosen in tx {short(m.tx.hash)} before any ChildrenRevealed")
                mid = lo + split_point(hi - lo)
                if m.event["right"]:
                    siblings.append(left)
                    node, lo = right, mid
                else:
                    siblings.append(right)
                    node, hi = left, mid
                phase = "leaf" if hi - lo == 1 else "reveal"
            else:
                phase = "committee"
        return {"node": node, "lo": lo, "hi": hi, "siblings": siblings, "phase": phase}

    def clocks(self) -> dict[str, Any]:
        """Replays both chess clocks over the descent moves (no checks): remaining clocks, last move time and
        the per-move (elapsed, clock before) list."""
        budget = int(self.game["clockBudget"])
        clock = {"solver": budget, "challenger": budget}
        last = (self.started or self.opened)[0].timestamp
        spent = []
        for m in self.moves:
            who = "challenger" if m.kind == "choose" else "solver"
            elapsed = m.tx.timestamp - last
            spent.append((m, who, elapsed, clock[who]))
            clock[who] -= elapsed
            last = m.tx.timestamp
        return {"clock": clock, "last": last, "spent": spent}

    def vote_deadlines(self) -> tuple[int, int]:
        """(commit deadline, reveal deadline) as the contract ends up with them (early reveal once all committed)."""
        if self.drawn is None:
            raise Violation(f"dispute {self.id} has no CommitteeDrawn event, so no vote deadlines")
        draw_tx, ev = self.drawn
        commit_deadline = int(ev["commitDeadline"])
        reveal_deadline = commit_deadline + int(self.game["revealPeriod"])
        if self.committee and len(self.commits) == len(self.committee):
            last = self.commits[-1][0].timestamp
            commit_deadline, reveal_deadline = last, last + int(self.game["revealPeriod"])
        return commit_deadline, reveal_deadline

    def expected_settlement(self) -> Settlement:
        if self.resolved is None:
            raise Violation(f"dispute {self.id} is not resolved, so there is no settlement to check")
        end_tx, _ = self.resolved
        d = self.descent()
        solver, challenger = self.solver, self.challenger
        bond_key = dispute_key(BOND_TAG, self.id)
        if end_tx.function == "dropSuperseded" or (self.queued and self.started is None):
            zero = "0x0000000000000000000000000000000000000000"
            s = Settlement(SUPERSEDED, "an earlier dispute slashed the job before this one's turn", zero, zero, 0, [])
            s.stake_events.append(("StakeUnlocked", challenger, to_hex(bond_key), int(self.opened[1]["bond"])))
            return s
        # outcome
        pub = self.rec.publication
        if self.availability_leaf is not None:
            if pub is not None and (pub["block"], pub["timestamp"]) <= (end_tx.block, end_tx.timestamp):
                outcome, reason = PUBLISHED, f"leaf {self.availability_leaf} published at block {pub['block']}"
            else:
                outcome, reason = CHALLENGER_WON, f"the solver did not publish leaf {self.availability_leaf} in time"
        elif end_tx.events_named("VoteRevealed") or end_tx.function in ("resolve", "revealVote"):
            post = self.leaf.event["postStateRoot"] if self.leaf else None
            for_solver = sum(1 for _, r in self.reveals if r["result"] == post)
            against = len(self.reveals) - for_solver
            outcome = SOLVER_WON if for_solver > against else CHALLENGER_WON if against > for_solver else NO_DECISION
            reason = f"{for_solver} vote(s) for the opened leaf, {against} against"
        elif end_tx.function == "drawCommittee" and not end_tx.events_named("CommitteeDrawn"):
            if self.leaf is None:
                raise Violation("the dispute was voided for want of a committee before any leaf was opened")
            waited = end_tx.timestamp - self.leaf.tx.timestamp
            require(
                waited >= int(self.game["committeeWait"]),
                f"voided {waited}s after the leaf opening, before committeeWait {self.game['committeeWait']}s",
            )
            outcome, reason = NO_COMMITTEE, f"fewer than R eligible arbiters for committeeWait ({waited}s)"
        else:  # timeout
            if d["phase"] in ("reveal", "leaf"):
                outcome, reason = CHALLENGER_WON, "the solver ran out of clock"
            elif d["phase"] == "choose":
                outcome, reason = SOLVER_WON, "the challenger ran out of clock"
            else:
                raise Violation(f"a timeout in phase {d['phase']} (only descent moves are timed)")
        job_stake, price, bond = int(self.matched["stake"]), int(self.matched["price"]), int(self.opened[1]["bond"])
        post = self.leaf.event["postStateRoot"] if self.leaf else None
        majority = []
        if outcome in (SOLVER_WON, CHALLENGER_WON) and self.reveals:
            revealed = {addr(r["arbiter"]): r["result"] for _, r in self.reveals}
            majority = [a for a in self.committee if a in revealed and (revealed[a] == post) == (outcome == SOLVER_WON)]
        w_bps, a_bps = int(self.market["slashWinnerBps"]), int(self.market["slashArbiterBps"])
        s = Settlement(outcome, reason, "", "", 0, majority)
        zero = "0x0000000000000000000000000000000000000000"
        s.winner, s.loser = {
            SOLVER_WON: (solver, challenger),
            CHALLENGER_WON: (challenger, solver),
        }.get(outcome, (zero, zero))
        s.slashed = {SOLVER_WON: bond, CHALLENGER_WON: job_stake}.get(outcome, 0)

        def slash(account: str, key: bytes, amount: int, to: list[str], amounts: list[int]) -> None:
            shares = sum(amounts)
            s.stake_events.append(("StakeSlashed", account, to_hex(key), amount, amount - shares))
            s.burned += amount - shares
            s.credits.extend((t, a) for t, a in zip(to, amounts, strict=True) if a)

        def split(amount: int, winner: str) -> tuple[list[str], list[int]]:
            each = amount * a_bps // BPS // len(majority) if majority else 0
            return [winner, *majority], [amount * w_bps // BPS, *([each] * len(majority))]

        # arbiters: a non-revealer loses its whole lock, a revealed vote against the decided outcome
        # wrongVoteSlashBps of it (the rest unlocked), both shared equally by the majority; the others unlocked
        a_key, a_stake = dispute_key(ARBITER_TAG, self.id), self.arbiter_lock
        penalty = a_stake * int(self.game["wrongVoteSlashBps"]) // BPS
        revealed = {addr(r["arbiter"]): r["result"] for _, r in self.reveals}
        decided = outcome in (SOLVER_WON, CHALLENGER_WON)
        for a in self.committee:
            if a not in revealed:
                each = a_stake // len(majority) if majority else 0
                slash(a, a_key, a_stake, list(majority), [each] * len(majority))
            elif decided and (revealed[a] == post) != (outcome == SOLVER_WON) and penalty:
                s.stake_events.append(("StakeUnlocked", a, to_hex(a_key), a_stake - penalty))
                each = penalty // len(majority) if majority else 0
                slash(a, a_key, penalty, list(majority), [each] * len(majority))
            else:
                s.stake_events.append(("StakeUnlocked", a, to_hex(a_key), a_stake))
        if outcome == SOLVER_WON:
            slash(challenger, bond_key, bond, *split(bond, solver))
        else:
            s.stake_events.append(("StakeUnlocked", challenger, to_hex(bond_key), bond))
        if outcome == PUBLISHED and self.availability_fee:  # held until the job ends (rule availability.fee)
            s.stake_events.append(("StakeLocked", challenger, to_hex(self.fee_key), self.availability_fee))
        if outcome == NO_COMMITTEE:
            s.job_event = ("JobVoided", price)
            if price:
                s.credits.append((self.submitter, price))
            s.stake_events.append(("StakeUnlocked", solver, self.rec.job_id, job_stake))
        elif outcome == CHALLENGER_WON:
            s.job_event = ("JobSlashed", challenger, job_stake, price)
            if price:
                s.credits.append((self.submitter, price))
            slash(solver, from_hex(self.rec.job_id), job_stake, *split(job_stake, challenger))
        else:
            if self.started is None:
                raise Violation("the dispute reopened the job without ever having started")
            window_left = self.audit_end_at_open() - self.started[0].timestamp
            grace = int(self.market["disputeGrace"])
            s.job_event = ("JobReopened", end_tx.timestamp + max(window_left, grace))
        return s


# ======================================================================================== rules


@rules.rule("dispute.opened", "opened on a committed job in its audit window, by a non-solver, with the bond locked")
def _opened(a: DisputeAudit) -> str:
    tx, ev = a.opened
    require(ev["jobId"] == a.rec.job_id, f"DisputeOpened names job {ev['jobId']}, the record's job is {a.rec.job_id}")
    require(addr(ev["solver"]) == a.solver, f"DisputeOpened names solver {ev['solver']}, the job's is {a.solver}")
    require(tx.sender == a.challenger, f"the opening tx was sent by {tx.sender}, the event names {a.challenger}")
    require(a.challenger != a.solver, "the solver challenged its own job")
    bond = int(ev["bond"])
    want = dispute_bond_for(a.game, int(a.matched["stake"]), int(a.matched["price"]))
    require(bond == want, f"bond {bond} != disputeBondFor(job stake, price) = {want}")
    key = to_hex(dispute_key(BOND_TAG, a.id))
    locks = [e.args for e in tx.events_named("StakeLocked", "StakeManager")]
    require(
        any(addr(x["account"]) == a.challenger and x["key"] == key and int(x["amount"]) == bond for x in locks),
        f"no StakeLocked({a.challenger}, bond key, {bond}) in the opening transaction",
    )
    if a.queued:
        if a.started is None:
            return f"challenger {a.challenger} queued it at block {tx.block}, bond {bond}; it has not started"
        tx = a.started[0]
    disputed = [e for e in tx.events_named("JobDisputed", "JobMarket") if int(e.args["disputeId"]) == a.id]
    require(len(disputed) == 1, f"the transaction that started dispute {a.id} did not move the job to Disputed")
    end = a.audit_end_at_open()
    require(tx.timestamp < end, f"started at {tx.timestamp}, after the audit window closed at {end}")
    how = "queued, then started" if a.queued else "opened"
    return f"challenger {a.challenger} {how} it at block {tx.block}, bond {bond}, window open until {end}"


@rules.rule(
    "dispute.queue-turn",
    "a dispute filed while another ran waits in the queue and starts only in the transaction that ended the one "
    "before it without slashing the job (nobody can slip a new dispute in between)",
)
def _queue_turn(a: DisputeAudit) -> str:
    if not a.queued:
        return "not queued: started when filed"
    position = int(a.opened[0].events_named("DisputeQueued", "DisputeGame")[0].args["position"])
    if a.started is None:
        return f"queued at position {position}, not started" + (" (superseded)" if a.resolved else " (yet)")
    tx, _ = a.started
    ended = [
        e
        for e in tx.events_named("DisputeResolved", "DisputeGame")
        if int(e.args["disputeId"]) != a.id and e.args["jobId"] == a.rec.job_id
    ]
    require(len(ended) == 1, f"dispute {a.id} started in tx {short(tx.hash)}, which ended no other dispute of the job")
    require(
        int(ended[0].args["outcome"]) != CHALLENGER_WON,
        "a queued dispute started although the one before it slashed the job",
    )
    require(
        all(e.name != "DisputeOpened" for e in tx.events if e.log_index < ended[0].log_index),
        "a dispute was filed in the settling transaction before the queued one started",
    )
    before = ended[0].args["disputeId"]
    return f"queued at position {position}, started in tx {short(tx.hash)} right after dispute {before} ended"


@rules.rule("descent.turns", "solver reveals, challenger chooses, in turn, ending with the solver opening one leaf")
def _turns(a: DisputeAudit) -> str:
    expected = "leaf" if a.n == 1 else "reveal"
    for k, m in enumerate(a.moves):
        who = a.challenger if m.kind == "choose" else a.solver
        require(m.tx.sender == who, f"move {k + 1} ({m.kind}) was sent by {m.tx.sender}, not by {who}")
        want = {"reveal": "reveal", "choose": "choose", "openLeaf": "leaf"}[m.kind]
        require(want == expected, f"move {k + 1} is a {m.kind} but the game awaited a {expected}")
        if m.kind == "reveal":
            expected = "choose"
        elif m.kind == "choose":
            lo, hi = int(m.event["lo"]), int(m.event["hi"])
            expected = "leaf" if hi - lo == 1 else "reveal"
        else:
            expected = "committee"
    return f"{len(a.moves)} descent move(s) in turn" + ("" if a.leaf else " (no leaf opened yet)")


@rules.rule("descent.reveal-hash", "each revealed pair hashes to its parent node: H(0x01 ‖ left ‖ right), RFC 9162")
def _reveal_hash(a: DisputeAudit) -> str:
    node, lo, hi = a.root, 0, a.n
    left: bytes | None = None
    right: bytes | None = None
    count = 0
    for m in a.moves:
        if m.kind == "reveal":
            left, right = from_hex(m.event["left"]), from_hex(m.event["right"])
            if m.tx.function == "reveal":
                require(
                    (m.tx.args["left"], m.tx.args["right"]) == (m.event["left"], m.event["right"]),
                    f"reveal in tx {short(m.tx.hash)}: calldata and ChildrenRevealed event disagree",
                )
            require(
                merkle.node_hash(left, right) == node,
                f"the reveal in tx {short(m.tx.hash)} (block {m.tx.block}) over leaves [{lo}, {hi}): "
                f"H(0x01 ‖ {short(left)} ‖ {short(right)}) = {short(merkle.node_hash(left, right))} is not the "
                f"node {short(node)} it claims to open",
            )
            count += 1
        elif m.kind == "choose" and left is not None and right is not None:
            mid = lo + split_point(hi - lo)
            node, lo, hi = (right, mid, hi) if m.event["right"] else (left, lo, mid)
    return f"{count} reveal(s), each H(0x01 ‖ l ‖ r) equal to its parent"


@rules.rule("descent.path", "the choices walk the RFC 9162 split from the root to the opened leaf; rounds == its depth")
def _path(a: DisputeAudit) -> str:
    lo, hi, rounds = 0, a.n, 0
    left: bytes | None = None
    right: bytes | None = None
    node = a.root
    for m in a.moves:
        if m.kind == "reveal":
            left, right = from_hex(m.event["left"]), from_hex(m.event["right"])
            require(
                (int(m.event["lo"]), int(m.event["hi"])) == (lo, hi),
                f"reveal over [{m.event['lo']}, {m.event['hi']}), the game is at [{lo}, {hi})",
            )
        elif m.kind == "choose":
            require(hi - lo >= 2, f"a choice at the single leaf [{lo}, {hi})")
            if left is None or right is None:
                raise Violation(f"choose tx {short(m.tx.hash)} came before any reveal")
            mid = lo + split_point(hi - lo)
            go_right = bool(m.event["right"])
            if m.tx.function == "choose":
                require(
                    bool(m.tx.args["right"]) == go_right, f"choose tx {short(m.tx.hash)}: calldata and event disagree"
                )
            node, lo, hi = (right, mid, hi) if go_right else (left, lo, mid)
            rounds += 1
            got = (int(m.event["lo"]), int(m.event["hi"]), m.event["node"])
            require(
                got == (lo, hi, to_hex(node)),
                f"choice {rounds} ({'right' if go_right else 'left'}): the event says [{got[0]}, {got[1]}) node "
                f"{short(got[2])}, the RFC 9162 split gives [{lo}, {hi}) node {short(node)}",
            )
    if a.leaf is None:
        return f"{rounds} round(s) so far, at leaves [{lo}, {hi})"
    index = int(a.leaf.event["index"])
    require(hi - lo == 1, f"a leaf was opened while the game covered [{lo}, {hi}), not a single leaf")
    require(index == lo, f"LeafOpened says index {index}, the path reached leaf {lo}")
    depth = merkle.leaf_depth(index, a.n)
    require(rounds == depth, f"{rounds} round(s) to reach leaf {index}, its RFC 9162 depth in {a.n} leaves is {depth}")
    return f"{rounds} round(s) from the root to leaf {index} of {a.n} (its depth)"


@rules.rule("leaf.hash", "the opened state root C_i hashes to the node reached: H(0x00 ‖ C_i)")
def _leaf_hash(a: DisputeAudit) -> str:
    if a.leaf is None:
        return "no leaf opened (yet)"
    d = a.descent()
    post = from_hex(a.leaf.event["postStateRoot"])
    if a.leaf.tx.function == "openLeaf":
        require(
            a.leaf.tx.args["postStateRoot"] == a.leaf.event["postStateRoot"], "openLeaf calldata and event disagree"
        )
    require(merkle.leaf_hash(post) == d["node"], f"H(0x00 ‖ {short(post)}) is not the node {short(d['node'])} reached")
    return f"C_{d['lo']} = {short(post)}"


@rules.rule("leaf.inclusion", "the revealed siblings form an RFC 9162 audit path of leaf i to the committed root")
def _leaf_inclusion(a: DisputeAudit) -> str:
    if a.leaf is None:
        return "no leaf opened (yet)"
    d = a.descent()
    index = int(a.leaf.event["index"])
    post = from_hex(a.leaf.event["postStateRoot"])
    path = list(reversed(d["siblings"]))
    require(
        merkle.verify_inclusion(a.root, merkle.leaf_hash(post), index, a.n, path),
        f"the audit path of {len(path)} sibling(s) does not prove leaf {index} = {short(post)} in the "
        f"{a.n}-leaf trajectory root {short(a.root)}",
    )
    return f"leaf {index} proved against root {short(a.root)} with a {len(path)}-hash path"


@rules.rule("leaf.pre-state", "the pre-state is C_init for leaf 0, else leaf i-1 with a valid proof against the root")
def _pre_state(a: DisputeAudit) -> str:
    if a.leaf is None:
        return "no leaf opened (yet)"
    index = int(a.leaf.event["index"])
    pre = a.leaf.event["preStateRoot"]
    if index == 0:
        init = a.matched["initStateRoot"]
        require(pre == init, f"leaf 0's pre-state {short(pre)} is not the job's C_init {short(init)}")
        return f"leaf 0: pre-state is C_init {short(init)}"
    require(a.leaf.tx.function == "openLeaf", "the openLeaf calldata (the pre-state proof) is not in the record")
    require(a.leaf.tx.args["preStateRoot"] == pre, "openLeaf calldata and LeafOpened disagree on the pre-state")
    proof = [from_hex(h) for h in a.leaf.tx.args["preProof"]]
    require(
        merkle.verify_inclusion(a.root, merkle.leaf_hash(from_hex(pre)), index - 1, a.n, proof),
        f"the pre-state proof does not prove {short(pre)} as leaf {index - 1} of the {a.n}-leaf root {short(a.root)}",
    )
    return f"pre-state {short(pre)} proved as leaf {index - 1}"


@rules.rule("clock.moves", "each descent move came within the mover's remaining chess clock")
def _clock_moves(a: DisputeAudit) -> str:
    c = a.clocks()
    for m, who, elapsed, left in c["spent"]:
        require(
            elapsed <= left,
            f"the {who}'s {m.kind} in block {m.tx.block} came {elapsed}s after the previous move with only "
            f"{left}s left on its clock",
        )
    return f"clocks left: solver {c['clock']['solver']}s, challenger {c['clock']['challenger']}s"


@rules.rule(
    "committee.seed",
    "the committee seed is keccak256(prevrandao(seed block), disputeId, tag), the RANDAO value read from the seed "
    "block's header (which hashes to its block hash), seed block after the leaf",
)
def _committee_seed(a: DisputeAudit) -> str:
    if a.leaf is None or (a.drawn is None and not a.events("CommitteeSeedRearmed") and not a.events("CommitteeShort")):
        return "no committee drawn (yet)"
    seed_block = a.leaf.tx.block + 1
    rearms = sorted(
        [(tx, ev, "stale") for tx, ev in a.events("CommitteeSeedRearmed")]
        + [(tx, ev, "short") for tx, ev in a.events("CommitteeShort")],
        key=lambda x: (x[0].block, x[0].index),
    )
    for tx, ev, why in rearms:
        if why == "stale":
            require(
                tx.block > seed_block + BLOCKHASH_WINDOW,
                f"seed re-armed at block {tx.block} although block {seed_block}'s hash was still readable",
            )
        else:
            require(tx.block > seed_block, f"short-pool re-arm at block {tx.block}, not after seed block {seed_block}")
            require(
                int(ev["drawn"]) < int(a.game["committeeSize"]),
                f"re-armed as short with {ev['drawn']} eligible arbiters",
            )
            require(
                tx.timestamp < a.leaf.tx.timestamp + int(a.game["committeeWait"]),
                "a short pool re-armed the draw after committeeWait (it should have voided the job)",
            )
        require(int(ev["seedBlock"]) == tx.block + 1, "the re-armed seed block is not the next block")
        seed_block = tx.block + 1
    if a.drawn is None:
        return f"seed block {seed_block}, committee not drawn yet"
    tx, ev = a.drawn
    require(tx.block > seed_block, f"drawn at block {tx.block}, not after its seed block {seed_block}")
    randao = seed_randao(a.rec.blocks, seed_block)
    expected = keccak(abi_encode(["bytes32", "uint256", "bytes32"], [randao, a.id, COMMITTEE_TAG]))
    require(
        ev["seed"] == to_hex(expected),
        f"CommitteeDrawn seed {short(ev['seed'])} != keccak256(prevrandao({seed_block}), {a.id}, tag) = "
        f"{short(expected)}",
    )
    return f"seed block {seed_block} (RANDAO {short(to_hex(randao))}), seed {short(expected)}"


@rules.rule(
    "committee.draw-weights",
    "arbiters drawn by the draw weights at the end of seed block - 2 (before the block that fixed the seed), which "
    "nobody could adjust knowing the seed; each weighed at least the arbiter lock then",
)
def _committee_weights(a: DisputeAudit) -> str:
    if a.drawn is None:
        return "no committee drawn (yet)"
    draw = a.rec.committee_draw
    if draw is None:
        raise Violation("the record has no re-run of the draw")
    rearms = sorted(
        a.events("CommitteeSeedRearmed") + a.events("CommitteeShort"), key=lambda x: (x[0].block, x[0].index)
    )
    seed_block = int(rearms[-1][1]["seedBlock"]) if rearms else a.leaf.tx.block + 1 if a.leaf else 0
    return check_draw_weights(draw, seed_block, a.committee, max(1, a.arbiter_lock))


@rules.rule(
    "committee.members",
    "exactly R distinct stakers drawn by stake from the seed, excluding solver, challenger and submitter",
)
def _committee_members(a: DisputeAudit) -> str:
    if a.drawn is None:
        return "no committee drawn (yet)"
    tx, ev = a.drawn
    members = a.committee
    excluded = {a.solver, a.challenger, a.submitter}
    r = int(a.game["committeeSize"])
    require(len(set(members)) == len(members), f"the committee {members} repeats a member")
    require(len(members) == r, f"{len(members)} arbiters drawn, committeeSize is {r}: only a full committee votes")
    bad = [m for m in members if m in excluded]
    require(not bad, f"{bad} drawn although excluded (solver, challenger or submitter)")
    draw = a.rec.committee_draw
    if draw is None:
        raise Violation("the record has no re-run of the draw")
    require(draw.seed == ev["seed"] and draw.count == r, "the draw was re-run with another seed or size")
    require(draw.min_weight == a.arbiter_lock, "the draw was re-run with another minimum weight (arbiter lock)")
    require({addr(x) for x in draw.exclude} == excluded, "the draw was re-run with another exclusion list")
    if draw.exact:
        require(
            [addr(x) for x in draw.drawn] == members,
            f"drawDistinct re-run at block {draw.block} gives {draw.drawn}, the contract drew {members}",
        )
        how = f"equal to drawDistinct re-run at block {draw.block}"
    else:
        zero = [m for m in members if draw.weights.get(m, 0) <= 0]
        require(not zero, f"{zero} had no draw weight at block {draw.block}")
        how = f"each eligible at block {draw.block} (exact re-draw impossible: {draw.note})"
    key, stake = to_hex(dispute_key(ARBITER_TAG, a.id)), a.arbiter_lock
    locked = Counter(
        addr(e.args["account"])
        for e in tx.events_named("StakeLocked", "StakeManager")
        if e.args["key"] == key and int(e.args["amount"]) == stake
    )
    require(all(locked[m] == 1 for m in members), f"not every arbiter had {stake} locked under the arbiter key")
    want = tx.timestamp + int(a.game["commitPeriod"])
    require(int(ev["commitDeadline"]) == want, f"commit deadline {ev['commitDeadline']}, expected {want}")
    return f"{len(members)} arbiter(s) {', '.join(short(m) for m in members)}: {how}"


@rules.rule(
    "vote.commit-reveal",
    "only arbiters vote, once each, and each reveal matches its commit sha256(result ‖ salt ‖ arbiter)",
)
def _votes(a: DisputeAudit) -> str:
    members = set(a.committee)
    committed: dict[str, str] = {}
    for tx, ev in a.commits:
        who = addr(ev["arbiter"])
        require(who in members, f"{who} committed a vote but is not on the committee")
        require(who not in committed, f"{who} committed twice")
        require(tx.sender == who, f"{who}'s commitment was sent by {tx.sender}")
        committed[who] = ev["commitment"]
    revealed = set()
    unavailable = 0
    for tx, ev in a.reveals:
        who = addr(ev["arbiter"])
        require(who in committed, f"{who} revealed without a commitment")
        require(who not in revealed, f"{who} revealed twice")
        require(tx.sender == who, f"{who}'s reveal was sent by {tx.sender}")
        result, salt = from_hex(ev["result"]), from_hex(ev["salt"])
        got = hashlib.sha256(result + salt + bytes.fromhex(who[2:])).digest()
        require(
            to_hex(got) == committed[who],
            f"{who} revealed {short(result)} with salt {short(salt)}: sha256(result ‖ salt ‖ arbiter) = "
            f"{short(got)} is not its commitment {short(committed[who])}",
        )
        revealed.add(who)
        unavailable += result == UNAVAILABLE
    extra = f", {unavailable} UNAVAILABLE" if unavailable else ""
    return f"{len(committed)} commitment(s), {len(revealed)} matching reveal(s){extra}"


@rules.rule(
    "vote.deadlines", "commits before the commit deadline, reveals inside the reveal period, resolve only after it"
)
def _vote_deadlines(a: DisputeAudit) -> str:
    if a.drawn is None:
        return "no committee drawn (yet)"
    draw_deadline = int(a.drawn[1]["commitDeadline"])
    for tx, ev in a.commits:
        require(tx.timestamp < draw_deadline, f"{ev['arbiter']} committed at {tx.timestamp}, deadline {draw_deadline}")
    commit_deadline, reveal_deadline = a.vote_deadlines()
    for tx, ev in a.reveals:
        require(
            commit_deadline <= tx.timestamp < reveal_deadline,
            f"{ev['arbiter']} revealed at {tx.timestamp}, outside the reveal period "
            f"[{commit_deadline}, {reveal_deadline})",
        )
    if a.resolved is not None and a.resolved[0].function == "resolve":
        ts = a.resolved[0].timestamp
        require(ts >= reveal_deadline, f"resolve() at {ts}, before the reveal deadline {reveal_deadline}")
    return f"reveal period [{commit_deadline}, {reveal_deadline})"


@rules.rule(
    "availability.published",
    "an availability challenge ends Published only if the named leaf's bytes are on chain: the published root is "
    "that leaf of the committed trajectory (inclusion proof from the calldata) and the calldata hashes to it",
)
def _published(a: DisputeAudit) -> str:
    if a.availability_leaf is None:
        return "not an availability challenge"
    pub, i = a.rec.publication, a.availability_leaf
    if pub is None:
        return f"leaf {i} not published"
    root = from_hex(pub["root"])
    proof = [from_hex(p) for p in pub["proof"]]
    require(
        merkle.verify_inclusion(a.root, merkle.leaf_hash(root), i, a.n, proof),
        f"the published root {short(pub['root'])} is not leaf {i} of the committed trajectory",
    )
    require(
        pub.get("bytes_root") == pub["root"],
        f"the publishing calldata does not hash to the published root: {pub.get('bytes_error', pub.get('bytes_root'))}",
    )
    return f"leaf {i} ({short(pub['root'])}) published at block {pub['block']} by {short(pub['publisher'])}"


@rules.rule("clock.timeout", "a timeout only after the party to move spent its whole clock")
def _timeout(a: DisputeAudit) -> str:
    if a.resolved is None:
        return "not resolved (yet)"
    tx, _ = a.resolved
    if tx.function != "timeout":
        return f"ended by {tx.function}, not by a timeout"
    d, c = a.descent(), a.clocks()
    if d["phase"] == "data" and a.expected_settlement().outcome == PUBLISHED:
        return "a timeout that found the leaf published: it ends Published, no clock needed"
    require(d["phase"] in ("reveal", "leaf", "choose", "data"), f"timeout in phase {d['phase']}, where no clock runs")
    who = "challenger" if d["phase"] == "choose" else "solver"
    expires = c["last"] + c["clock"][who]
    require(
        tx.timestamp > expires,
        f"timeout at {tx.timestamp} but the {who}'s clock ran until {expires} (last move {c['last']}, "
        f"{c['clock'][who]}s left)",
    )
    return f"the {who} to move; its clock ran out at {expires}, timeout at {tx.timestamp}"


@rules.rule(
    "outcome.majority",
    "the outcome follows the rule: majority of reveals (UNAVAILABLE against the solver), or the clock",
)
def _outcome(a: DisputeAudit) -> str:
    if a.resolved is None:
        return "not resolved (yet)"
    _, ev = a.resolved
    s = a.expected_settlement()
    got = int(ev["outcome"])
    require(
        got == s.outcome,
        f"the contract resolved {_outcome_name(got)} but the rule gives {_outcome_name(s.outcome)} ({s.reason})",
    )
    require(
        (addr(ev["winner"]), addr(ev["loser"])) == (s.winner, s.loser),
        f"winner/loser {ev['winner']}/{ev['loser']}, expected {s.winner}/{s.loser}",
    )
    require(int(ev["slashed"]) == s.slashed, f"slashed {ev['slashed']}, expected {s.slashed}")
    require(
        [addr(x) for x in ev["majorityArbiters"]] == s.majority,
        f"majority arbiters {ev['majorityArbiters']}, expected {s.majority}",
    )
    return f"{_outcome_name(s.outcome)} ({s.reason}); loser slashed {s.slashed}"


def _settle_events(a: DisputeAudit) -> tuple[Tx, Settlement]:
    if a.resolved is None:
        raise Violation(f"dispute {a.id} is not resolved")
    tx, _ = a.resolved
    return tx, a.expected_settlement()


@rules.rule(
    "settle.job", "the job is slashed (submitter refunded) if the solver lost, else reopened with the paused window"
)
def _settle_job(a: DisputeAudit) -> str:
    if a.resolved is None:
        return "not resolved (yet)"
    tx, s = _settle_events(a)
    if s.outcome == SUPERSEDED:
        require(not tx.events_named("JobSlashed") and not tx.events_named("JobReopened"), "a drop moved the job")
        return "superseded: the job was slashed by an earlier dispute, bond returned"
    if s.job_event[0] == "JobVoided":
        got: list[tuple] = [("JobVoided", int(e.args["refunded"])) for e in tx.events_named("JobVoided", "JobMarket")]
        require(got == [s.job_event], f"JobVoided {got}, expected {[s.job_event]}")
        return f"job voided (no full committee), submitter refunded {s.job_event[1]}"
    if s.job_event[0] == "JobSlashed":
        got = [
            ("JobSlashed", addr(e.args["challenger"]), int(e.args["slashed"]), int(e.args["refunded"]))
            for e in tx.events_named("JobSlashed", "JobMarket")
        ]
        require(got == [s.job_event], f"JobSlashed events {got}, expected {[s.job_event]}")
        releases = [(addr(e.args["to"]), int(e.args["amount"])) for e in tx.events_named("EscrowReleased")]
        price = int(a.matched["price"])
        want = [(a.submitter, price)] if price else []
        require(releases == want, f"escrow released {releases}, expected the price refunded: {want}")
        return f"job slashed, submitter refunded {price}"
    reopened = [("JobReopened", int(e.args["auditEnd"])) for e in tx.events_named("JobReopened", "JobMarket")]
    require(
        reopened == [s.job_event], f"JobReopened {reopened}, expected {[s.job_event]} (paused window or disputeGrace)"
    )
    require(not tx.events_named("JobSlashed"), "the job was slashed although the solver did not lose")
    return f"job reopened until {s.job_event[1]}"


@rules.rule("settle.stakes", "stakes slashed and unlocked as the rules say (loser's stake or bond, arbiter stakes)")
def _settle_stakes(a: DisputeAudit) -> str:
    if a.resolved is None:
        return "not resolved (yet)"
    tx, s = _settle_events(a)
    got: list[tuple] = []
    for e in tx.events:
        if e.contract != "StakeManager":
            continue
        if e.name == "StakeSlashed":
            got.append(
                ("StakeSlashed", addr(e.args["account"]), e.args["key"], int(e.args["amount"]), int(e.args["burned"]))
            )
        elif e.name in ("StakeUnlocked", "StakeLocked"):
            got.append((e.name, addr(e.args["account"]), e.args["key"], int(e.args["amount"])))
    missing = Counter(s.stake_events) - Counter(got)
    extra = Counter(got) - Counter(s.stake_events)
    require(
        not missing and not extra,
        f"stake events differ from the rules: missing {list(missing)}, unexpected {list(extra)}",
    )
    return f"{len(got)} stake event(s) as expected"


@rules.rule("settle.credits", "credits: winner share, majority arbiters' shares, forfeited arbiter stakes, refund")
def _settle_credits(a: DisputeAudit) -> str:
    if a.resolved is None:
        return "not resolved (yet)"
    tx, s = _settle_events(a)
    got = [(addr(e.args["account"]), int(e.args["amount"])) for e in tx.events_named("Credited", "StakeManager")]
    missing = Counter(s.credits) - Counter(got)
    extra = Counter(got) - Counter(s.credits)
    require(
        not missing and not extra, f"credits differ from the rules: missing {list(missing)}, unexpected {list(extra)}"
    )
    return f"{len(got)} credit(s), {sum(x for _, x in got)} in all"


@rules.rule(
    "availability.fee",
    "a Published availability challenge's fee is held until the job ends, then paid to the solver unless the job "
    "ended Slashed (then it goes back to the challenger): a solver that withholds data and lies earns nothing by it",
)
def _availability_fee(a: DisputeAudit) -> str:
    settled = a.events("AvailabilityFeeSettled")
    held = a.resolved is not None and a.expected_settlement().outcome == PUBLISHED and a.availability_fee > 0
    if not held:
        require(not settled, "a fee was settled although the dispute held none")
        return "no fee held"
    if not settled:
        return f"fee {a.availability_fee} held until the job ends"
    require(len(settled) == 1, f"the fee was settled {len(settled)} times")
    tx, ev = settled[0]
    ends = [
        (t, e.name)
        for t in a.rec.job_txs
        for e in t.events
        if e.contract == "JobMarket" and e.name in ("JobFinalized", "JobSlashed", "JobVoided")
    ]
    require(bool(ends), "the fee was settled but the job has not ended")
    end_tx, end = ends[0]
    require((end_tx.block, end_tx.index) < (tx.block, tx.index), "the fee was settled before the job ended")
    want = a.challenger if end == "JobSlashed" else a.solver
    fee, key = a.availability_fee, to_hex(a.fee_key)
    got = f"{ev['to']} ({ev['fee']})"
    require(addr(ev["to"]) == want and int(ev["fee"]) == fee, f"fee settled to {got}, expected {want} ({fee})")
    stake = [(e.name, addr(e.args["account"]), e.args["key"], int(e.args["amount"])) for e in tx.events
             if e.contract == "StakeManager" and e.name in ("StakeUnlocked", "StakeSlashed")]  # fmt: skip
    expected = ("StakeUnlocked" if end == "JobSlashed" else "StakeSlashed", a.challenger, key, fee)
    require(stake == [expected], f"the settling transaction moved stake {stake}, expected {[expected]}")
    return f"fee {fee} to the {'challenger (the job ended slashed)' if end == 'JobSlashed' else 'solver'}"


@rules.rule("settle.burn", "the rest of every slash is burned (token transfer to the burn address)")
def _settle_burn(a: DisputeAudit) -> str:
    if a.resolved is None:
        return "not resolved (yet)"
    tx, s = _settle_events(a)
    burned = sum(
        int(e.args["value"])
        for e in tx.events_named("Transfer", "VeriToken")
        if addr(e.args["to"]) == BURN_ADDRESS and addr(e.args["from"]) == addr(a.rec.contracts["stakeManager"])
    )
    require(burned == s.burned, f"{burned} burned, the rules say {s.burned}")
    return f"{burned} burned"


def audit_dispute(rec: DisputeRecord) -> Verdict:
    """Runs every dispute rule against ``rec``."""
    return rules.run(f"dispute {rec.dispute_id}", DisputeAudit(rec))


def timeline(rec: DisputeRecord) -> list[dict[str, Any]]:
    """The dispute's transactions for display: block, time, sender, call, remaining clock after descent moves."""
    a = DisputeAudit(rec)
    out = []
    budget = int(rec.params["game"]["clockBudget"])
    clock = {"solver": budget, "challenger": budget}
    last = rec.txs[0].timestamp if rec.txs else 0
    solver = a.solver if rec.job_txs else None
    for t in rec.txs:
        row = {"block": t.block, "time": t.timestamp, "tx": t.hash, "from": t.sender, "call": t.function or "?"}
        if t.function in ("reveal", "choose", "openLeaf"):
            who = "solver" if t.sender == solver else "challenger"
            clock[who] -= t.timestamp - last
            last = t.timestamp
            row["clock_left"] = clock[who]
        out.append(row)
    return out
