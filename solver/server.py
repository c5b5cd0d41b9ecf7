"""The solver's checkpoint server (DESIGN §9): the commit ``uri`` verifiers and arbiters read from.

Routes::

    GET|HEAD /blobs/{address}?kind=state   a checkpoint (protocol.blobserver over the node's blob store)
    GET      /leaves/{job_id}              {"job_id", "root", "n", "leaves": ["0x…", …]} of a trained job
    GET      /metrics                      Prometheus text
    GET      /healthz                      {"ok": true, "address": …}

The server is read-only: uploads (``PUT``/``POST /blobs``) are refused with 405. Blobs the node's adversary
withholds (``withhold``) answer 404 like any missing blob. The test/demo adversaries ``trickle``, ``hang`` and
``bomb`` answer blob and leaf-list reads at a few bytes a second, never, or with an endless body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from protocol.blobserver import blob_router
from protocol.blobstore import LocalBlobStore
from protocol.metrics import Registry
from protocol.node import metrics_response

__all__ = ["create_server_app"]


class _ReadOnlyBlobs:
    """Refuses uploads, answers 404 for withheld addresses, and plays the adversary's ``serve_mode``."""

    def __init__(self, app: ASGIApp, withheld: Callable[[str], bool], serve_mode: str | None = None) -> None:
        self.app, self.withheld, self.serve_mode = app, withheld, serve_mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/blobs"):
            if scope["method"] not in ("GET", "HEAD"):
                await self._answer(send, 405, "read_only", "this checkpoint server does not accept uploads")
                return
            address = path[len("/blobs/") :].lower()
            if address and self.withheld(address):
                await self._answer(send, 404, "not_found", f"no blob {address}")
                return
        if self.serve_mode and scope["type"] == "http" and path.startswith(("/blobs/", "/leaves/")):
            await _hostile(self.serve_mode, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(send: Send, status: int, code: str, detail: str) -> None:
        resp = JSONResponse({"error": code, "detail": detail}, status_code=status)
        await send({"type": "http.response.start", "status": status, "headers": resp.raw_headers})
        await send({"type": "http.response.body", "body": resp.body})


async def _hostile(mode: str, receive: Receive, send: Send) -> None:
    """Test/demo adversaries: ``trickle`` sends a byte every half second, ``hang`` accepts and sends nothing,
    ``bomb`` sends an endless body (each until the client gives up).

    Each stops when its client hangs up: uvicorn's ``send`` returns at once on a closed connection, so a loop
    that did not watch for ``http.disconnect`` would spin on for ever and burn a core of the machine the
    verifiers share with it (a real attacker would not pay for that either)."""
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.create_task(watch())
    try:
        if mode == "hang":
            await asyncio.wait_for(gone.wait(), timeout=3600)
            return
        headers = [(b"content-type", b"application/octet-stream"), (b"x-blob-kind", b"state")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        chunk, pause = (b"\x00", 0.5) if mode == "trickle" else (b"\x00" * 65536, 0.0)
        while not gone.is_set():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(pause)
    except TimeoutError:
        pass
    finally:
        watcher.cancel()


def create_server_app(
    store: LocalBlobStore,
    leaves_of: Callable[[str], dict | None],
    withheld: Callable[[str], bool],
    metrics: Registry,
    address: str,
    serve_mode: str | None = None,
) -> FastAPI:
    """The app: ``leaves_of(job_id)`` returns the leaf document or None; ``withheld(address)`` says whether a
    blob is never served."""
    app = FastAPI(title="veritrain solver checkpoint server", version="1")
    app.include_router(blob_router(store))

    @app.get("/leaves/{job_id}")
    def leaves(job_id: str) -> JSONResponse:
        doc = leaves_of(job_id.lower())
        if doc is None:
            return JSONResponse({"error": "not_found", "detail": f"no trajectory for job {job_id[:80]}"}, 404)
        return JSONResponse(doc)

    @app.get("/metrics")
    def get_metrics():
        return metrics_response(metrics)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True, "role": "solver", "address": address}

    app.add_middleware(_ReadOnlyBlobs, withheld=withheld, serve_mode=serve_mode)
    return app
