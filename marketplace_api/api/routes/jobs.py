"""Jobs (signed orders), their bids, and the accept call."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from marketplace_api import book, views
from marketplace_api.api.deps import CtxDep, Cursor, JobIdDep, LimitDep, SessionDep, errors
from marketplace_api.core.errors import ApiError, not_found
from marketplace_api.models import BidRow, JobSnapshot, Order
from marketplace_api.schemas import (
    JOB_STATES,
    AcceptCall,
    BidCreate,
    BidList,
    JobCreate,
    JobDetail,
    JobList,
    JobOrderPublic,
    JobStatus,
    JobSummary,
    RankedBid,
    _address,
    _hex32,
)

router = APIRouter(prefix="/jobs", tags=["jobs"])

ORDER_EXAMPLE = {
    "order": {
        "submitter": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "specHash": "0x" + "11" * 32,
        "datasetHash": "0x" + "22" * 32,
        "initStateRoot": "0x" + "33" * 32,
        "totalSteps": 64,
        "checkpointInterval": 4,
        "maxPrice": "100000000000000000000",
        "deadline": 1900000000,
        "nonce": "1",
    },
    "signature": "0x" + "00" * 65,
    "chain_id": 31337,
}


def order_public(o: Order) -> JobOrderPublic:
    return JobOrderPublic(
        submitter=o.submitter,
        specHash=o.spec_hash,
        datasetHash=o.dataset_hash,
        initStateRoot=o.init_state_root,
        totalSteps=o.total_steps,
        checkpointInterval=o.checkpoint_interval,
        maxPrice=o.max_price,
        deadline=o.deadline,
        nonce=o.nonce,
    )


def summary(o: Order, bids: int, solver: str | None = None) -> JobSummary:
    return JobSummary(
        job_id=o.job_id,
        status=JOB_STATES[o.chain_state],
        order=order_public(o),
        signature=o.signature,
        model_kind=o.model_kind,
        mode=o.mode,
        batch_size=o.batch_size,
        bids=bids,
        created_at=o.created_at,
        solver=solver,
    )


@router.post(
    "",
    status_code=201,
    response_model=JobSummary,
    summary="Post a signed job order",
    responses=errors(400, 409, 413, 422, 503),
    openapi_extra={"requestBody": {"content": {"application/json": {"example": ORDER_EXAMPLE}}}},
)
async def post_job(body: JobCreate, ctx: CtxDep) -> JobSummary:
    """Checks the EIP-712 signature (domain: this deployment's chain and JobMarket), the deadline, the nonce
    (unused here and not cancelled on-chain), the spec (valid, canonical, matching the order) and that the
    spec and dataset blobs are stored; then stores the order. The job id is the order's digest."""
    # On SQLite the whole check-and-insert is CPU plus two sub-millisecond local statements: run it on the
    # event loop (a hop to the thread pool costs more than the work, and no two order writers of this process
    # contend for SQLite's write lock; a long write by the indexer thread can still hold the loop up to the busy
    # timeout). A server database is reached over the network: that waits in the thread pool.
    if ctx.engine.dialect.name == "sqlite":
        row = book.create_order(ctx, body)
    else:
        row = await run_in_threadpool(book.create_order, ctx, body)
    return summary(row, 0)


@router.get("", response_model=JobList, summary="List jobs (newest first)", responses=errors(400, 422))
def list_jobs(
    session: SessionDep,
    limit: LimitDep,
    cursor: Cursor = None,
    status: Annotated[JobStatus | None, Query(description="on-chain status; 'open' = not matched yet")] = None,
    submitter: Annotated[str | None, Query(description="submitter address")] = None,
    model: Annotated[str | None, Query(max_length=32, description="model kind: mlp, cnn, transformer_lm")] = None,
    solver: Annotated[str | None, Query(description="the matched solver's address")] = None,
) -> JobList:
    q = select(Order).order_by(Order.seq.desc()).limit(limit + 1)
    if cursor is not None:
        q = q.where(Order.seq < cursor)
    if status is not None:
        q = q.where(Order.chain_state == JOB_STATES.index(status))
    if submitter is not None:
        try:
            q = q.where(Order.submitter == _address(submitter))
        except ValueError as exc:
            raise ApiError(400, "bad_address", f"submitter {submitter[:80]!r} {exc}") from None
    if model is not None:
        q = q.where(Order.model_kind == model)
    if solver is not None:
        try:
            solver = _address(solver)
        except ValueError as exc:
            raise ApiError(400, "bad_address", f"solver {solver[:80]!r} {exc}") from None
        # a job's solver is fixed at acceptBid: any snapshot of the job names it
        q = q.where(Order.job_id.in_(select(JobSnapshot.job_id).where(JobSnapshot.solver == solver)))
    rows = list(session.scalars(q))
    more = len(rows) > limit
    rows = rows[:limit]
    counts = dict(
        session.execute(
            select(BidRow.job_id, func.count())
            .where(BidRow.job_id.in_([r.job_id for r in rows]))
            .group_by(BidRow.job_id)
        ).all()
    )
    solvers = dict(
        session.execute(
            select(JobSnapshot.job_id, JobSnapshot.solver)
            .where(JobSnapshot.job_id.in_([r.job_id for r in rows if r.chain_state]))
            .distinct()
        ).all()
    )
    return JobList(
        items=[summary(r, counts.get(r.job_id, 0), solvers.get(r.job_id)) for r in rows],
        next_cursor=rows[-1].seq if more else None,
    )


@router.get(
    "/{job_id}",
    response_model=JobDetail,
    summary="One job: order, bids, chain state, audit, disputes",
    responses=errors(400, 404),
)
def get_job(job_id: JobIdDep, ctx: CtxDep, session: SessionDep) -> JobDetail:
    order = session.scalar(select(Order).where(Order.job_id == job_id))
    snap = views.latest_job_snapshot(session, job_id)
    if order is None and snap is None:
        raise not_found("job", job_id)
    events = views.job_events(session, job_id)
    spec = None
    if order is not None:
        try:
            spec = book._load_spec(ctx, order.spec_hash, None)[0].model_dump(mode="json")
        except ApiError:
            spec = None
    return JobDetail(
        job_id=job_id,
        status=views._state_name(snap.state) if snap else JOB_STATES[order.chain_state] if order else "open",
        order=order_public(order) if order else None,
        signature=order.signature if order else None,
        spec=spec,
        bids=book.rank_bids(ctx, session, order)[:50] if order else [],
        chain=views.chain_job(snap) if snap else None,
        trajectory=views.trajectory(events),
        audit=views.audit(events),
        disputes=[views.dispute_summary(d) for d in views.latest_dispute_snapshots(session, job_id=job_id)],
        events=[views.event_public(e) for e in events],
    )


@router.post(
    "/{job_id}/bids",
    status_code=201,
    response_model=RankedBid,
    summary="Post a signed bid",
    responses=errors(400, 404, 409, 413, 422, 503),
)
def post_bid(job_id: JobIdDep, body: BidCreate, ctx: CtxDep, session: SessionDep) -> RankedBid:
    """Checks the bid's EIP-712 signature, that it names this order, has not expired, is within the order's
    maxPrice, offers at least the required stake, that its nonce is fresh and the job is still open; an ETA
    must come with the solver's ``BidEta`` signature."""
    row = book.create_bid(ctx, session, job_id, body)
    order = book.get_order(session, job_id)
    return next(r for r in book.rank_bids(ctx, session, order) if r.bid_hash == row.bid_hash)


@router.get("/{job_id}/bids", response_model=BidList, summary="Bids, ranked", responses=errors(400, 404, 422))
def list_bids(
    job_id: JobIdDep,
    ctx: CtxDep,
    session: SessionDep,
    limit: LimitDep,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    feasible_only: bool = False,
) -> BidList:
    """Feasible bids first, cheapest first (then earliest ETA); each with the solver's record. Infeasible bids
    follow, each with the reasons."""
    order = book.get_order(session, job_id)
    ranked = book.rank_bids(ctx, session, order)
    if feasible_only:
        ranked = [r for r in ranked if r.feasible]
    return BidList(job_id=job_id, items=ranked[offset : offset + limit], total=len(ranked))


@lru_cache(maxsize=1)
def _market_contract():
    from web3 import Web3

    from protocol.artifacts import load_artifact

    return Web3().eth.contract(abi=load_artifact("JobMarket").abi_list())


@router.get(
    "/{job_id}/accept-call",
    response_model=AcceptCall,
    summary="Call data to accept a bid",
    responses=errors(400, 404, 409, 422, 503),
)
def accept_call(
    job_id: JobIdDep,
    ctx: CtxDep,
    session: SessionDep,
    bid: Annotated[str | None, Query(description="bid hash; default: the best feasible bid")] = None,
) -> AcceptCall:
    """The ``JobMarket.acceptBid(order, orderSig, bid, bidSig)`` transaction the submitter signs and sends
    itself (the API holds no keys). It pulls the price into escrow from the submitter."""
    domain = book.require_domain(ctx, None)
    order = book.get_order(session, job_id)
    ranked = book.rank_bids(ctx, session, order)
    if bid is not None:
        try:
            wanted = _hex32(bid)
        except ValueError as exc:
            raise ApiError(400, "bad_bid_hash", f"bid {bid[:80]!r} {exc}") from None
        chosen = next((r for r in ranked if r.bid_hash == wanted), None)
        if chosen is None:
            raise not_found("bid", f"{wanted} on job {job_id}")
        if not chosen.feasible:
            raise ApiError(409, "bid_infeasible", "; ".join(chosen.infeasible_reasons))
    else:
        chosen = next((r for r in ranked if r.feasible), None)
        if chosen is None:
            raise ApiError(409, "no_feasible_bid", f"job {job_id} has no feasible bid ({len(ranked)} bids)")
    row = session.scalar(select(BidRow).where(BidRow.bid_hash == chosen.bid_hash))
    assert row is not None
    order_tuple = (
        order.submitter,
        bytes.fromhex(order.spec_hash[2:]),
        bytes.fromhex(order.dataset_hash[2:]),
        bytes.fromhex(order.init_state_root[2:]),
        order.total_steps,
        order.checkpoint_interval,
        order.max_price,
        order.deadline,
        order.nonce,
    )
    bid_tuple = (row.solver, bytes.fromhex(row.job_id[2:]), row.price, row.stake, row.expiry, row.nonce, row.work_time)
    try:
        contract = _market_contract()
    except Exception as exc:
        raise ApiError(503, "no_abi", f"JobMarket ABI unavailable: {exc}") from None
    data = contract.encode_abi(
        "acceptBid",
        args=[order_tuple, bytes.fromhex(order.signature[2:]), bid_tuple, bytes.fromhex(row.signature[2:])],
    )
    return AcceptCall(
        to=domain.verifying_contract,
        data=data,
        chain_id=domain.chain_id,
        sender=order.submitter,
        job_id=job_id,
        bid_hash=row.bid_hash,
        price=row.price,
    )
