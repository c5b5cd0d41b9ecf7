"""Stakers: position (free, locked, unbonding, claimable), history and slashes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from marketplace_api import book, views
from marketplace_api.api.deps import AddressDep, LimitDep, SessionDep, errors
from marketplace_api.core.errors import ApiError
from marketplace_api.models import ChainEventRow
from marketplace_api.schemas import StakerList, StakerPublic, _address

router = APIRouter(prefix="/stakers", tags=["stakers"])


@router.get("", response_model=StakerList, summary="Every indexed staker (by address)", responses=errors(400, 422))
def list_stakers(
    session: SessionDep,
    limit: LimitDep,
    after: Annotated[str | None, Query(description="`next_cursor` of the previous page (an address)")] = None,
) -> StakerList:
    """The newest indexed position of every account that ever touched the StakeManager, with its slashes."""
    if after is not None:
        try:
            after = _address(after)
        except ValueError as exc:
            raise ApiError(400, "bad_address", f"after {after[:80]!r} {exc}") from None
    rows = views.latest_positions(session, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    totals = views.slash_totals(session, [r.account for r in rows])
    return StakerList(
        items=[views.staker_summary(r, totals.get(r.account, (0, 0))) for r in rows],
        next_cursor=rows[-1].account if more else None,
    )


@router.get("/{address}", response_model=StakerPublic, summary="A staker's position and history", responses=errors(400))
def get_staker(address: AddressDep, session: SessionDep) -> StakerPublic:
    """The newest indexed ``StakeManager.positionOf`` (zeros when the account never staked), the account's
    StakeManager events (newest 200, each with the job/dispute of its transaction) and its slashes, and its
    open locks (job stake, dispute bond, arbiter stake) replayed from all its lock events."""
    pos = book.latest_position(session, address)
    events = list(
        session.scalars(
            select(ChainEventRow)
            .where(ChainEventRow.account == address)
            .order_by(ChainEventRow.block_number.desc(), ChainEventRow.log_index.desc())
            .limit(200)
        )
    )
    events.reverse()
    context = views.tx_context(session, (e.tx_hash for e in events))
    history = [views.event_public(e, context) for e in events]
    fees = views.fee_keys(session)
    return StakerPublic(
        address=address,
        free=pos.free if pos else 0,
        locked=pos.locked if pos else 0,
        unbonding=pos.unbonding if pos else 0,
        release_at=pos.release_at if pos else 0,
        claimable=pos.claimable if pos else 0,
        verifier=pos.verifier if pos else False,
        block_number=pos.block_number if pos else None,
        history=history,
        slashes=[e for e in history if views.is_slash(e, fees)],
        record=book.solver_record(session, address),
        locks=views.current_locks(session, address),
        slashed_total=views.slash_totals(session, [address]).get(address, (0, 0))[1],
    )
