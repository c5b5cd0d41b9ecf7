"""Solvers: signed capability profiles and track records."""

from __future__ import annotations

from fastapi import APIRouter

from marketplace_api import book
from marketplace_api.api.deps import AddressDep, CtxDep, SessionDep, errors
from marketplace_api.models import SolverProfileRow
from marketplace_api.schemas import ProfileCreate, ProfilePublic, SolverPublic

router = APIRouter(prefix="/solvers", tags=["solvers"])


def profile_public(row: SolverProfileRow) -> ProfilePublic:
    return ProfilePublic(
        solver=row.solver,
        profile=row.profile,
        profile_hash=row.profile_hash,
        issued_at=row.issued_at,
        signature=row.signature,
    )


@router.post(
    "/{address}/profile",
    status_code=201,
    response_model=ProfilePublic,
    summary="Publish a signed capability profile",
    responses=errors(400, 409, 413, 422, 503),
)
def post_profile(address: AddressDep, body: ProfileCreate, ctx: CtxDep, session: SessionDep) -> ProfilePublic:
    """The profile document (measured exact-mode throughput per example model) is signed as EIP-712
    ``SolverProfile(solver, profileHash, issuedAt)`` with ``profileHash`` = SHA-256 of its canonical JSON.
    A profile replaces the stored one only when issued later (an old profile cannot be replayed)."""
    return profile_public(book.upsert_profile(ctx, session, address, body))


@router.get("/{address}", response_model=SolverPublic, summary="A solver's profile and record", responses=errors(400))
def get_solver(address: AddressDep, session: SessionDep) -> SolverPublic:
    row = session.get(SolverProfileRow, address)
    return SolverPublic(
        solver=address,
        profile=profile_public(row) if row else None,
        record=book.solver_record(session, address),
    )
