"""The solver's checkpoint server (DESIGN §9): the commit ``uri`` verifiers and arbiters read from.

Routes::

    GET|HEAD /blobs/{address}?kind=state   a checkpoint (protocol.blobserver over the node's blob store)
    GET      /leaves/{job_id}              {"job_id", "root", "n", "leaves": ["0x…", …]} of a trained job
    GET      /metrics                      Prometheus text
    GET      /healthz                      {"ok": true, "address": …}

The server is read-only: uploads (``PUT``/``POST /blobs``) are refused with 405. Blobs the node's adversary
withholds (``withhold``) answer 404 like any missing blob.
"""

from __future__ import annotations

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
    """Refuses uploads, and answers 404 for withheld addresses."""

    def __init__(self, app: ASGIApp, withheld: Callable[[str], bool]) -> None:
        self.app, self.withheld = app, withheld

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/blobs"):
            if scope["method"] not in ("GET", "HEAD"):
                await self._answer(send, 405, "read_only", "this checkpoint server does not accept uploads")
                return
            address = scope["path"][len("/blobs/") :].lower()
            if address and self.withheld(address):
                await self._answer(send, 404, "not_found", f"no blob {address}")
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(send: Send, status: int, code: str, detail: str) -> None:
        resp = JSONResponse({"error": code, "detail": detail}, status_code=status)
        await send({"type": "http.response.start", "status": status, "headers": resp.raw_headers})
        await send({"type": "http.response.body", "body": resp.body})


def create_server_app(
    store: LocalBlobStore,
    leaves_of: Callable[[str], dict | None],
    withheld: Callable[[str], bool],
    metrics: Registry,
    address: str,
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
    def get_metrics():  # noqa: ANN202
        return metrics_response(metrics)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True, "role": "solver", "address": address}

    app.add_middleware(_ReadOnlyBlobs, withheld=withheld)
    return app
