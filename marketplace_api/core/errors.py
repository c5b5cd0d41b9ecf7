"""Every rejection is a 4xx with a JSON body ``{"error": CODE, "detail": MESSAGE}``.

Routes raise :class:`ApiError`; the handlers installed by :func:`install_error_handlers` also turn FastAPI's
own errors (malformed JSON, failed validation, unknown routes, wrong methods) into the same shape.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("veritrain.api")


class ErrorBody(BaseModel):
    """What every 4xx (and the rare 5xx) carries."""

    error: str = Field(description="machine-readable code", examples=["bad_signature"])
    detail: str = Field(description="what was wrong and what to do", examples=["signature recovers to 0x…"])


class ApiError(Exception):
    """A rejection with an HTTP status, a short code and a human explanation."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, "not_found", f"no {what} {ident}")


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 400: "bad_request"}


def _describe(errors: list[dict]) -> str:
    parts = []
    for err in errors[:20]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
    return "; ".join(parts) + more


def install_error_handlers(app: FastAPI, metrics=None) -> None:
    def count(code: str) -> None:
        if metrics is not None:
            metrics.rejection(code)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        count(exc.code)
        return error_response(exc.status, exc.code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        for e in errors:
            if e.get("type") == "json_invalid":
                count("bad_json")
                where = (e.get("ctx") or {}).get("error", "decode error")
                return error_response(
                    400,
                    "bad_json",
                    f"the request body is not valid JSON ({where} at byte {e.get('loc', ('', '?'))[-1]})",
                )
            if tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes | str):
                try:
                    json.loads(e["input"])
                except ValueError:
                    count("bad_json")
                    return error_response(
                        400, "bad_json", "the request body is not valid JSON (send Content-Type: application/json)"
                    )
        count("invalid_request")
        return error_response(422, "invalid_request", _describe(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        count(code)
        return JSONResponse(
            {"error": code, "detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - a bug
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        count("internal")
        return error_response(500, "internal", f"internal error ({type(exc).__name__}); see the server log")
