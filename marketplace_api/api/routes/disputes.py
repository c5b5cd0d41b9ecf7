"""Disputes, with every move of the descent (transaction, block, clocks)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from marketplace_api import views
from marketplace_api.api.deps import Cursor, LimitDep, SessionDep, errors
from marketplace_api.core.errors import ApiError, not_found
from marketplace_api.schemas import DisputeDetail, DisputeList, _hex32

router = APIRouter(prefix="/disputes", tags=["disputes"])


@router.get("", response_model=DisputeList, summary="List disputes (by id)", responses=errors(400, 422))
def list_disputes(
    session: SessionDep,
    limit: LimitDep,
    cursor: Cursor = None,
    job_id: Annotated[str | None, Query(description="only this job's disputes")] = None,
    status: Annotated[Literal["open", "resolved"] | None, Query()] = None,
) -> DisputeList:
    if job_id is not None:
        try:
            job_id = _hex32(job_id)
        except ValueError as exc:
            raise ApiError(400, "bad_job_id", f"job id {job_id[:80]!r} {exc}") from None
    rows = views.latest_dispute_snapshots(session, job_id=job_id, after=cursor, limit=limit + 1, status=status)
    more = len(rows) > limit
    rows = rows[:limit]
    return DisputeList(
        items=[views.dispute_summary(r) for r in rows], next_cursor=rows[-1].dispute_id if more else None
    )


@router.get(
    "/{dispute_id}", response_model=DisputeDetail, summary="One dispute and its moves", responses=errors(400, 404, 422)
)
def get_dispute(dispute_id: Annotated[int, Path(ge=0, le=2**62)], session: SessionDep) -> DisputeDetail:
    detail = views.dispute_detail(session, dispute_id)
    if detail is None:
        raise not_found("dispute", dispute_id)
    return detail
