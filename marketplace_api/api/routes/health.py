"""Liveness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select, text

from marketplace_api.api.deps import CtxDep
from marketplace_api.models import BidRow, ChainEventRow, Order
from marketplace_api.schemas import JOB_STATES, Health, IndexerHealth, ProtocolEnums
from protocol.constants import Outcome, Phase, VoteStatus, api_names

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Liveness: database, deployment, indexer")
def health(ctx: CtxDep) -> Health:
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        db = "ok"
    except Exception as exc:
        db = f"error: {type(exc).__name__}"
    idx = ctx.indexer
    indexer = IndexerHealth(
        enabled=idx is not None,
        running=bool(idx and idx.running),
        block_number=idx.block_number if idx else None,
        error=idx.last_error if idx else None,
    )
    ok = db == "ok" and (idx is None or (idx.running and idx.last_error is None))
    return Health(
        status="ok" if ok else "degraded",
        database=db,
        chain_id=ctx.domain.chain_id if ctx.domain else None,
        job_market=ctx.domain.verifying_contract if ctx.domain else None,
        indexer=indexer,
    )


@router.get("/enums", response_model=ProtocolEnums, summary="The names the API uses for job states and dispute phases")
def enums() -> ProtocolEnums:
    """Every value the ``status``, ``phase``, ``outcome`` fields (and enum event arguments) can take, in the
    contracts' integer order; clients read them here instead of keeping their own copy."""
    return ProtocolEnums(
        job_status=list(JOB_STATES),
        dispute_phase=list(api_names(Phase)),
        dispute_outcome=list(api_names(Outcome)),
        vote_status=list(api_names(VoteStatus)),
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics (text format 0.0.4)",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(ctx: CtxDep) -> PlainTextResponse:
    gauges = {}
    with ctx.sessions() as s:
        rows = [
            ({"table": "orders"}, s.scalar(select(func.count()).select_from(Order)) or 0),
            ({"table": "bids"}, s.scalar(select(func.count()).select_from(BidRow)) or 0),
            ({"table": "chain_events"}, s.scalar(select(func.count()).select_from(ChainEventRow)) or 0),
        ]
    gauges["veritrain_rows"] = ("Rows per table.", rows)
    if ctx.indexer is not None and ctx.indexer.block_number is not None:
        gauges["veritrain_indexer_block"] = ("Newest block the indexer processed.", [({}, ctx.indexer.block_number)])
    return PlainTextResponse(ctx.metrics.render(gauges), media_type="text/plain; version=0.0.4")
