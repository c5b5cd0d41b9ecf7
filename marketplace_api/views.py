"""Read models over the indexed chain tables: a job's on-chain state, trajectory, audit and disputes."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace_api.models import ChainEventRow, DisputeSnapshot, JobSnapshot
from marketplace_api.schemas import (
    JOB_STATES,
    AuditPublic,
    ChainJobPublic,
    DisputeDetail,
    DisputeMove,
    DisputeSummary,
    EventPublic,
    TrajectoryPublic,
)

PHASES = ("none", "awaiting_reveal", "awaiting_choice", "awaiting_leaf", "awaiting_committee", "voting", "resolved")
OUTCOMES = ("none", "solver_won", "challenger_won")
MAX_EVENTS = 500


def _state_name(state: int) -> str:
    return JOB_STATES[state] if 0 <= state < len(JOB_STATES) else "open"


def event_public(e: ChainEventRow) -> EventPublic:
    return EventPublic(
        name=e.name,
        contract=e.contract,
        block_number=e.block_number,
        block_time=e.block_time,
        tx_hash=e.tx_hash,
        log_index=e.log_index,
        args=e.args,
    )


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
        q = q.where(DisputeSnapshot.phase == 6)
    elif status == "open":
        q = q.where(DisputeSnapshot.phase != 6)
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
                args=e.args,
                solver_clock=snap.solver_clock if snap else None,
                challenger_clock=snap.challenger_clock if snap else None,
            )
        )
    last = snaps[-1]
    return DisputeDetail(
        **dispute_summary(last).model_dump(),
        node=last.node,
        pre_state_root=last.pre_state_root,
        post_state_root=last.post_state_root,
        committee=list(last.data.get("committee", [])),
        moves=moves,
    )
