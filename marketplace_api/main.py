"""The FastAPI application: :func:`create_app` wires settings, database, blob store, routers and indexer."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketplace_api.api.routes import disputes, health, jobs, leaves, solvers, stakers
from marketplace_api.context import AppContext
from marketplace_api.core.config import Settings
from marketplace_api.core.errors import ErrorBody, install_error_handlers
from marketplace_api.migrate import upgrade
from protocol.blobserver import blob_router

log = logging.getLogger("veritrain.api")
#: The auditor web pages (static HTML + vanilla JS reading the public JSON routes), served at /ui/.
WEB_DIR = Path(__file__).with_name("web")

DESCRIPTION = """The veritrain marketplace: a REST order book for verifiable training jobs, and a read model of
the protocol contracts (jobs, audits, disputes with every move, stakers) kept by a chain indexer.

The API holds no keys. Orders, bids and solver profiles are EIP-712 signed by their authors (domain
`veritrain`/`1`, this deployment's chain id and JobMarket); accepting a bid is a transaction the submitter
signs (`GET /jobs/{id}/accept-call` returns its call data). Every rejection is a 4xx with a JSON body
`{"error": CODE, "detail": MESSAGE}`.

Auditor web pages (job board, job, dispute explorer, stakers) are served at `/ui/`; they read only these
routes."""


class WebPages(StaticFiles):
    """The static pages, with a Content-Security-Policy that allows only this origin's own scripts, styles and
    API (no inline script, no eval, no third party): API data shown by the pages can never run as code."""

    CSP = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )

    async def get_response(self, path: str, scope: Scope):
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = self.CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


#: ``PUT /jobs/{id}/leaves``: a leaf list grows with the job (one 0x-hex root per checkpoint), so it has a limit
#: of its own (``max_leaf_list_bytes``) instead of the JSON one.
_LEAF_LIST_PUT = re.compile(r"^/jobs/0x[0-9a-fA-F]{64}/leaves$")


class BodyLimit:
    """Rejects JSON request bodies over ``limit`` bytes (a leaf-list PUT: ``leaf_list_limit``) with 413 before
    the route sees them (blob uploads have their own, larger limit, enforced while streaming by the blob
    router)."""

    def __init__(self, app: ASGIApp, limit: int, leaf_list_limit: int, exempt_prefix: str = "/blobs") -> None:
        self.app, self.json_limit, self.leaf_list_limit, self.exempt = app, limit, leaf_list_limit, exempt_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        leaf_list = scope.get("method") == "PUT" and _LEAF_LIST_PUT.match(scope["path"]) is not None
        limit = self.leaf_list_limit if leaf_list else self.json_limit
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._reject(
                send, f"request body of {length.decode(errors='replace')} bytes is over the {limit}-byte limit"
            )
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await self._reject(send, f"request body is over the {limit}-byte limit")
                return
            chunks.append(body)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send, detail: str) -> None:
        body = json.dumps({"error": "too_large", "detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RequestMetrics:
    """Counts requests and their latency per route template."""

    def __init__(self, app: ASGIApp, ctx: AppContext) -> None:
        self.app, self.ctx = app, ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def wrapped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.ctx.metrics.observe(scope["method"], path, status, time.perf_counter() - start)


def create_app(
    settings: Settings | None = None, *, ctx: AppContext | None = None, start_indexer: bool | None = None
) -> FastAPI:
    """The app. ``start_indexer`` defaults to ``settings.indexer`` with an RPC URL and a deployment set."""
    settings = settings or (ctx.settings if ctx else Settings())
    ctx = ctx or AppContext.from_settings(settings)
    if settings.migrate:
        upgrade(ctx.engine)
    run_indexer = (
        settings.indexer and settings.rpc_url is not None and ctx.deployment is not None
        if start_indexer is None
        else start_indexer
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = None
        if run_indexer:
            from marketplace_api.indexer import IndexerThread

            runner = ctx.indexer = IndexerThread.from_settings(ctx)
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            ctx.engine.dispose()

    app = FastAPI(
        title="veritrain marketplace",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "jobs", "description": "signed job orders, bids, accept call data"},
            {"name": "blobs", "description": "content-addressed blob store (specs, datasets, checkpoints)"},
            {"name": "solvers", "description": "capability profiles and records"},
            {"name": "disputes", "description": "dispute games and their moves, from the chain"},
            {"name": "stakers", "description": "stake positions and history, from the chain"},
            {"name": "health", "description": "liveness and metrics"},
        ],
    )
    app.state.ctx = ctx
    install_error_handlers(app, ctx.metrics)
    app.include_router(jobs.router)
    app.include_router(leaves.router)
    app.include_router(blob_router(ctx.blobs, settings.max_upload_bytes))
    app.include_router(solvers.router)
    app.include_router(disputes.router)
    app.include_router(stakers.router)
    app.include_router(health.router)
    app.mount("/ui", WebPages(directory=WEB_DIR, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/")

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, leaf_list_limit=settings.max_leaf_list_bytes)
    app.add_middleware(RequestMetrics, ctx=ctx)
    _document_blob_routes(app)
    return app


_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_BLOB_ERRORS = {
    "400": "bad address, kind, or bytes that do not match `expected` / are not a state serialisation",
    "404": "no such blob",
    "413": "upload over the size limit",
    "500": "the stored copy is corrupt (never served)",
}


def _document_blob_routes(app: FastAPI) -> None:
    """The blob router (shared with the solver's server) answers errors it does not declare; add them, and the
    raw request body of uploads, to this app's OpenAPI document."""
    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        for path, ops in schema.get("paths", {}).items():
            if not path.startswith("/blobs"):
                continue
            for method, op in ops.items():
                for code, text in _BLOB_ERRORS.items():
                    if method == "head":
                        op["responses"].setdefault(code, {"description": text})
                    elif code != "413" or method in ("put", "post"):
                        op["responses"].setdefault(
                            code, {"description": text, "content": {"application/json": {"schema": _ERROR_REF}}}
                        )
                if method in ("put", "post"):
                    op["requestBody"] = {
                        "required": True,
                        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                    }
                    op["responses"]["200"]["content"] = {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["address", "size", "kind"],
                                "properties": {
                                    "address": {"type": "string"},
                                    "size": {"type": "integer"},
                                    "kind": {"type": "string", "enum": ["sha256", "state"]},
                                },
                            }
                        }
                    }
                if method == "get" and "{address}" in path:
                    op["responses"]["200"]["content"] = {
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                    }
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
            "ErrorBody", ErrorBody.model_json_schema()
        )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
