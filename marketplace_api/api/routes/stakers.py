"""Stakers: position (free, locked, unbonding, claimable), history and slashes."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from marketplace_api import book, views
from marketplace_api.api.deps import AddressDep, SessionDep, errors
from marketplace_api.models import ChainEventRow
from marketplace_api.schemas import StakerPublic

router = APIRouter(prefix="/stakers", tags=["stakers"])


@router.get("/{address}", response_model=StakerPublic, summary="A staker's position and history", responses=errors(400))
def get_staker(address: AddressDep, session: SessionDep) -> StakerPublic:
    """The newest indexed ``StakeManager.positionOf`` (zeros when the account never staked), the account's
    StakeManager events (newest 200) and its slashes."""
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
    return StakerPublic(
        address=address,
        free=pos.free if pos else 0,
        locked=pos.locked if pos else 0,
        unbonding=pos.unbonding if pos else 0,
        release_at=pos.release_at if pos else 0,
        claimable=pos.claimable if pos else 0,
        verifier=pos.verifier if pos else False,
        block_number=pos.block_number if pos else None,
        history=[views.event_public(e) for e in events],
        slashes=[views.event_public(e) for e in events if e.name == "StakeSlashed"],
        record=book.solver_record(session, address),
    )
