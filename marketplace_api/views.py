"""Read models over the indexed chain tables: a job's on-chain state, trajectory, audit and disputes."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from marketplace_api.models import ChainEventRow, DisputeSnapshot, JobSnapshot, StakerSnapshot
from marketplace_api.schemas import (
    JOB_STATES,
    AuditPublic,
    ChainJobPublic,
    DisputeDetail,
    DisputeMove,
    DisputeSummary,
    EventPublic,
    LockPublic,
    StakerSummary,
    TrajectoryPublic,
    VotePublic,
)
from protocol.artifacts import event_enum_args
from protocol.audit.record import FEE_TAG, dispute_key
from protocol.constants import Outcome, Phase, api_names, enum_name
from protocol.errors import ArtifactMissing

PHASES = api_names(Phase)
OUTCOMES = api_names(Outcome)
MAX_EVENTS = 500


@lru_cache(maxsize=8)
def _enum_args(contract: str) -> dict[str, dict[str, str]]:
    try:
        return event_enum_args(contract)
    except ArtifactMissing:
        return {}


def named_args(contract: str, event: str, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` of a stored event with every enum argument given by name (``"outcome": "challenger_won"``), as
    the ABI types it, so clients need no table of integers."""
    enums = _enum_args(contract).get(event)
    if not enums:
        return args
    out = dict(args)
    for arg, internal_type in enums.items():
        if isinstance(out.get(arg), int):
            out[arg] = enum_name(internal_type, out[arg]) or out[arg]
    return out


def _state_name(state: int) -> str:
    return JOB_STATES[state] if 0 <= state < len(JOB_STATES) else "open"


def event_public(e: ChainEventRow, context: dict[str, tuple[str | None, int | None]] | None = None) -> EventPublic:
    """``e`` for the API; ``context`` (from :func:`tx_context`) names the job/dispute of events that carry
    neither themselves (StakeManager events name a lock key, not a job)."""
    job_id, dispute_id = e.job_id, e.dispute_id
    if context is not None and e.tx_hash in context:
        tx_job, tx_dispute = context[e.tx_hash]
        job_id = job_id or tx_job
        dispute_id = dispute_id if dispute_id is not None else tx_dispute
    return EventPublic(
        name=e.name,
        contract=e.contract,
        block_number=e.block_number,
        block_time=e.block_time,
        tx_hash=e.tx_hash,
        log_index=e.log_index,
        args=named_args(e.contract, e.name, e.args),
        job_id=job_id,
        dispute_id=dispute_id,
    )


def tx_context(session: Session, tx_hashes: Iterable[str]) -> dict[str, tuple[str | None, int | None]]:
    """For each transaction, the job and dispute its events name (a slash names only a lock key, but the
    ``DisputeResolved`` or ``JobSlashed`` of the same transaction names the dispute and the job)."""
    hashes = sorted(set(tx_hashes))
    out: dict[str, tuple[str | None, int | None]] = {}
    for i in range(0, len(hashes), 500):
        rows = session.execute(
            select(ChainEventRow.tx_hash, ChainEventRow.job_id, ChainEventRow.dispute_id)
            .where(ChainEventRow.tx_hash.in_(hashes[i : i + 500]))
            .where(or_(ChainEventRow.job_id.is_not(None), ChainEventRow.dispute_id.is_not(None)))
            .order_by(ChainEventRow.log_index)
        )
        for tx, job_id, dispute_id in rows:
            job, dispute = out.get(tx, (None, None))
            out[tx] = (job or job_id, dispute if dispute is not None else dispute_id)
    return out


def latest_job_snapshot(session: Session, job_id: str) -> JobSnapshot | None:
    return session.scalar(
        select(JobSnapshot).where(JobSnapshot.job_id == job_id).order_by(JobSnapshot.block_number.desc()).limit(1)
    )


def chain_job(snap: JobSnapshot) -> ChainJobPublic:
    return ChainJobPublic(
        block_number=snap.block_number,
        state=_state_name(snap.state),
        submitter=snap.submitter,  # type: ignore[arg-type]
        solver=snap.solver,
        deadline=snap.deadline,
        num_leaves=snap.num_leaves,
        price=snap.price,
        stake=snap.stake,
        init_state_root=snap.init_state_root,
        trajectory_root=snap.trajectory_root,
        final_state_root=snap.final_state_root,
        committed_at=snap.committed_at,
        audit_end=snap.audit_end,
        seed_block=snap.seed_block,
        seed=snap.seed,
    )


def job_events(session: Session, job_id: str) -> list[ChainEventRow]:
    return list(
        session.scalars(
            select(ChainEventRow)
            .where(ChainEventRow.job_id == job_id)
            .order_by(ChainEventRow.block_number, ChainEventRow.log_index)
            .limit(MAX_EVENTS)
        )
    )


def trajectory(events: list[ChainEventRow]) -> TrajectoryPublic | None:
    commits = [e for e in events if e.name == "JobCommitted"]
    if not commits:
        return None
    e = commits[-1]
    return TrajectoryPublic(
        root=e.args["trajectoryRoot"],
        num_leaves=int(e.args["numLeaves"]),
        final_state_root=e.args["finalStateRoot"],
        uri=e.args["uri"],
        committed_in_tx=e.tx_hash,
        block_number=e.block_number,
    )


def audit(events: list[ChainEventRow]) -> AuditPublic | None:
    drawn = [e for e in events if e.name == "AuditDrawn"]
    attested = [e.args["verifier"] for e in events if e.name == "Attested"]
    if not drawn and not attested:
        return None
    last = drawn[-1].args if drawn else {}
    return AuditPublic(
        seed=last.get("seed"),
        verifiers=list(last.get("verifiers", [])),
        segments=[int(s) for s in last.get("segments", [])],
        attested=attested,
    )


def latest_dispute_snapshots(
    session: Session, *, job_id: str | None = None, after: int | None = None, limit: int = 50, status: str | None = None
) -> list[DisputeSnapshot]:
    newest = select(DisputeSnapshot.dispute_id, func.max(DisputeSnapshot.block_number).label("bn")).group_by(
        DisputeSnapshot.dispute_id
    )
    if job_id is not None:
        newest = newest.where(DisputeSnapshot.job_id == job_id)
    newest = newest.subquery()
    q = select(DisputeSnapshot).join(
        newest,
        (DisputeSnapshot.dispute_id == newest.c.dispute_id) & (DisputeSnapshot.block_number == newest.c.bn),
    )
    if after is not None:
        q = q.where(DisputeSnapshot.dispute_id > after)
    if status == "resolved":
        q = q.where(DisputeSnapshot.phase == Phase.RESOLVED)
    elif status == "open":
        q = q.where(DisputeSnapshot.phase != Phase.RESOLVED)
    return list(session.scalars(q.order_by(DisputeSnapshot.dispute_id).limit(limit)))


def dispute_summary(s: DisputeSnapshot) -> DisputeSummary:
    return DisputeSummary(
        dispute_id=s.dispute_id,
        job_id=s.job_id,
        phase=PHASES[s.phase] if s.phase < len(PHASES) else "none",  # type: ignore[arg-type]
        outcome=OUTCOMES[s.outcome] if s.outcome < len(OUTCOMES) else "none",  # type: ignore[arg-type]
        solver=s.solver,
        challenger=s.challenger,
        lo=s.lo,
        hi=s.hi,
        num_leaves=s.num_leaves,
        solver_clock=s.solver_clock,
        challenger_clock=s.challenger_clock,
        bond=s.bond,
        block_number=s.block_number,
    )


def dispute_detail(session: Session, dispute_id: int) -> DisputeDetail | None:
    snaps = list(
        session.scalars(
            select(DisputeSnapshot)
            .where(DisputeSnapshot.dispute_id == dispute_id)
            .order_by(DisputeSnapshot.block_number)
        )
    )
    if not snaps:
        return None
    by_block = {s.block_number: s for s in snaps}
    events = session.scalars(
        select(ChainEventRow)
        .where(ChainEventRow.dispute_id == dispute_id)
        .order_by(ChainEventRow.block_number, ChainEventRow.log_index)
        .limit(MAX_EVENTS)
    )
    moves = []
    for e in events:
        snap = by_block.get(e.block_number)
        moves.append(
            DisputeMove(
                name=e.name,
                tx_hash=e.tx_hash,
                block_number=e.block_number,
                block_time=e.block_time,
                log_index=e.log_index,
                args=named_args(e.contract, e.name, e.args),
                solver_clock=snap.solver_clock if snap else None,
                challenger_clock=snap.challenger_clock if snap else None,
            )
        )
    last = snaps[-1]
    committee = list(last.data.get("committee", []))
    votes = {
        a: VotePublic(arbiter=a, commitment=None, result=None, committed_in_tx=None, revealed_in_tx=None)
        for a in committee
    }
    leaf_index = availability_leaf = None
    fee_settled = None
    resolved_in: str | None = None
    for m in moves:
        if m.name == "LeafOpened":
            leaf_index = int(m.args["index"])
        elif m.name == "AvailabilityRequested":
            availability_leaf = int(m.args["leaf"])
        elif m.name == "AvailabilityFeeSettled":
            fee_settled = m
        elif m.name == "VoteCommitted" and m.args.get("arbiter") in votes:
            v = votes[m.args["arbiter"]]
            v.commitment, v.committed_in_tx = m.args["commitment"], m.tx_hash
        elif m.name == "VoteRevealed" and m.args.get("arbiter") in votes:
            v = votes[m.args["arbiter"]]
            v.result, v.revealed_in_tx = m.args["result"], m.tx_hash
        elif m.name == "DisputeResolved":
            resolved_in = m.tx_hash
    transfers = []
    if resolved_in is not None:
        rows = session.scalars(
            select(ChainEventRow)
            .where(ChainEventRow.tx_hash == resolved_in)
            .where(or_(ChainEventRow.dispute_id.is_(None), ChainEventRow.dispute_id != dispute_id))
            .order_by(ChainEventRow.log_index)
        )
        transfers = [event_public(e, {resolved_in: (last.job_id, dispute_id)}) for e in rows]
    return DisputeDetail(
        **dispute_summary(last).model_dump(),
        node=last.node,
        pre_state_root=last.pre_state_root,
        post_state_root=last.post_state_root,
        committee=committee,
        moves=moves,
        last_move_at=last.last_move_at,
        leaf_index=leaf_index,
        availability_leaf=availability_leaf,
        fee_settled=fee_settled,
        votes_for_solver=int(last.data.get("votesForSolver", 0)),
        votes_for_challenger=int(last.data.get("votesForChallenger", 0)),
        commit_deadline=int(last.data.get("commitDeadline", 0)),
        reveal_deadline=int(last.data.get("revealDeadline", 0)),
        votes=list(votes.values()),
        transfers=transfers,
    )


# ---------------------------------------------------------------------------------------- stakers

LOCK_EVENTS = ("StakeLocked", "StakeUnlocked", "StakeSlashed")


def current_locks(session: Session, account: str) -> list[LockPublic]:
    """The account's open locks, replayed from all its lock events (a slash or an unlock clears a key)."""
    rows = list(
        session.scalars(
            select(ChainEventRow)
            .where(ChainEventRow.account == account, ChainEventRow.name.in_(LOCK_EVENTS))
            .order_by(ChainEventRow.block_number, ChainEventRow.log_index)
        )
    )
    open_: dict[str, ChainEventRow] = {}
    for e in rows:
        key = e.args["key"]
        if e.name == "StakeLocked":
            open_[key] = e
        else:
            open_.pop(key, None)
    context = tx_context(session, (e.tx_hash for e in open_.values()))
    locks = []
    for key, e in open_.items():
        job_id, dispute_id = context.get(e.tx_hash, (None, None))
        if key == job_id:
            dispute_id = None  # the job stake, locked at acceptBid
        locks.append(
            LockPublic(
                key=key,
                amount=int(e.args["amount"]),
                job_id=job_id,
                dispute_id=dispute_id,
                locked_in_tx=e.tx_hash,
                block_number=e.block_number,
            )
        )
    return locks


def fee_keys(session: Session) -> set[str]:
    """The lock keys of availability fees settled to a solver or back (``AvailabilityFeeSettled``): a
    StakeSlashed under one is the fee a challenger paid for data the solver published, not a slash."""
    rows = session.scalars(select(ChainEventRow.args).where(ChainEventRow.name == "AvailabilityFeeSettled"))
    return {"0x" + dispute_key(FEE_TAG, int(a["disputeId"])).hex() for a in rows}


def is_slash(e: ChainEventRow | EventPublic, fees: set[str]) -> bool:
    """Whether ``e`` is a StakeSlashed that punished (not an availability fee paid under one of ``fees``)."""
    return e.name == "StakeSlashed" and str(e.args["key"]).lower() not in fees


def slash_totals(session: Session, accounts: list[str] | None = None) -> dict[str, tuple[int, int]]:
    """``account -> (number of slashes, total slashed)`` over every indexed StakeSlashed but availability
    fees (:func:`fee_keys`)."""
    q = select(ChainEventRow.account, ChainEventRow.args).where(ChainEventRow.name == "StakeSlashed")
    if accounts is not None:
        q = q.where(ChainEventRow.account.in_(accounts))
    fees = fee_keys(session)
    out: dict[str, tuple[int, int]] = {}
    for account, args in session.execute(q):
        if str(args["key"]).lower() in fees:
            continue
        n, total = out.get(account, (0, 0))
        out[account] = (n + 1, total + int(args["amount"]))
    return out


def latest_positions(session: Session, *, after: str | None, limit: int) -> list[StakerSnapshot]:
    newest = select(StakerSnapshot.account, func.max(StakerSnapshot.block_number).label("bn")).group_by(
        StakerSnapshot.account
    )
    if after is not None:
        newest = newest.where(StakerSnapshot.account > after)
    newest = newest.subquery()
    q = select(StakerSnapshot).join(
        newest, (StakerSnapshot.account == newest.c.account) & (StakerSnapshot.block_number == newest.c.bn)
    )
    return list(session.scalars(q.order_by(StakerSnapshot.account).limit(limit)))


def staker_summary(p: StakerSnapshot, slashes: tuple[int, int]) -> StakerSummary:
    return StakerSummary(
        address=p.account,
        free=p.free,
        locked=p.locked,
        unbonding=p.unbonding,
        claimable=p.claimable,
        verifier=p.verifier,
        block_number=p.block_number,
        slashes=slashes[0],
        slashed_total=slashes[1],
    )
