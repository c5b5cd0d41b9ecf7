"""``Annotated`` dependency aliases the routes take."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from marketplace_api.context import AppContext
from marketplace_api.core.errors import ApiError, ErrorBody
from marketplace_api.schemas import _address, _hex32


async def get_ctx(request: Request) -> AppContext:
    # async: FastAPI runs a plain ``def`` dependency in the thread pool, a hop per request for an attribute read
    return request.app.state.ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


def get_session(ctx: CtxDep) -> Iterator[Session]:
    with ctx.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def job_id_param(job_id: Annotated[str, Path(description="job id (the order's EIP-712 digest), 0x + 64 hex")]) -> str:
    try:
        return _hex32(job_id)
    except ValueError as exc:
        raise ApiError(400, "bad_job_id", f"job id {job_id[:80]!r} {exc}") from None


JobIdDep = Annotated[str, Depends(job_id_param)]


def address_param(address: Annotated[str, Path(description="an account, 0x + 40 hex")]) -> str:
    try:
        return _address(address)
    except ValueError as exc:
        raise ApiError(400, "bad_address", f"address {address[:80]!r} {exc}") from None


AddressDep = Annotated[str, Depends(address_param)]


def page_limit(ctx: CtxDep, limit: Annotated[int, Query(ge=1, le=1000, description="page size")] = 50) -> int:
    if limit > ctx.settings.max_page:
        raise ApiError(422, "limit_too_large", f"limit {limit} is above the maximum page size {ctx.settings.max_page}")
    return limit


LimitDep = Annotated[int, Depends(page_limit)]
Cursor = Annotated[int | None, Query(ge=0, le=2**62, description="`next_cursor` of the previous page")]


def errors(*codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses`` for the error statuses a route may answer."""
    described = {
        400: "malformed request (bad JSON, bad id)",
        404: "unknown id",
        409: "conflicts with what is stored (duplicate, nonce reused, job taken)",
        413: "request body too large",
        422: "invalid content (signature, expiry, spec, validation)",
        503: "the API is not configured for this (no deployment)",
    }
    return {c: {"model": ErrorBody, "description": described.get(c, "error")} for c in codes}
