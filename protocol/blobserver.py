"""HTTP face of a :class:`~protocol.blobstore.LocalBlobStore` (DESIGN §9).

:func:`blob_router` is a self-contained FastAPI router (the solver's checkpoint server and the marketplace API
mount it); :func:`create_blob_app` wraps it in an app of its own.

Routes (``kind`` is ``sha256`` or ``state``; addresses are ``0x`` + 64 hex)::

    PUT|POST /blobs?kind=K[&expected=A]   body = the raw bytes → 200 {"address", "size", "kind"}
    GET      /blobs/{A}[?kind=K]          the bytes (verified before the first byte and again while streaming)
    HEAD     /blobs/{A}[?kind=K]          Content-Length and X-Blob-Kind, no body (not verified)

Errors are JSON ``{"error": CODE, "detail": MESSAGE}``: 400 ``bad_address``, ``invalid_state`` (a ``state``
upload that is not a canonical state serialisation), ``address_mismatch`` (the bytes do not hash to
``expected``); 404 ``not_found``; 413 ``too_large`` (enforced while the body streams in: at most the limit is
ever written, and nothing is kept); 500 ``blob_corrupt`` (the copy on disk no longer matches its address: no
bytes are served). A bad ``kind`` value is FastAPI's 422 JSON.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect

from protocol.blobstore import (
    BadAddress,
    BlobCorrupt,
    BlobKind,
    BlobNotFound,
    BlobTooLarge,
    BlobWriter,
    LocalBlobStore,
    StateFormatError,
    VerifiedBlob,
    parse_address,
)


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def _blob_headers(blob_size: int, kind: BlobKind, address: str) -> dict[str, str]:
    return {
        "content-length": str(blob_size),
        "x-blob-kind": kind.value,
        "x-blob-address": address,
        "etag": f'"{address}"',
        "cache-control": "public, max-age=31536000, immutable",
    }


def blob_router(store: LocalBlobStore, max_upload_bytes: int | None = None, prefix: str = "/blobs") -> APIRouter:
    """A router serving ``store``. Uploads are limited to ``max_upload_bytes`` (default and ceiling: the
    store's ``max_blob_bytes``)."""
    limit = store.max_blob_bytes if max_upload_bytes is None else min(max_upload_bytes, store.max_blob_bytes)
    router = APIRouter(prefix=prefix, tags=["blobs"])

    async def upload(request: Request, kind: BlobKind = BlobKind.SHA256, expected: str | None = None) -> Response:
        try:
            exp = None if expected is None else parse_address(expected)
        except BadAddress as exc:
            return _error(400, "bad_address", str(exc))
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return _error(400, "bad_request", f"bad Content-Length {length!r}")
            if int(length) > limit:
                return _error(413, "too_large", f"upload of {length} bytes is over the {limit}-byte limit")
        writer: BlobWriter | None = None
        try:
            writer = store.writer(kind, exp, max_bytes=limit)
            async for chunk in request.stream():
                if chunk:
                    writer.write(chunk)
            info = await run_in_threadpool(writer.commit)
        except BlobTooLarge:
            return _error(413, "too_large", f"upload is over the {limit}-byte limit")
        except BlobCorrupt as exc:
            return _error(400, "address_mismatch", str(exc))
        except StateFormatError as exc:
            return _error(400, "invalid_state", f"not a canonical state serialisation: {exc}")
        except ClientDisconnect:
            return _error(400, "incomplete_upload", "the client went away before the whole body arrived")
        finally:
            if writer is not None:
                writer.abort()  # no-op after a commit
        return JSONResponse(info.to_json())

    for method in ("PUT", "POST"):
        router.add_api_route(
            "",
            upload,
            methods=[method],
            operation_id=f"{method.lower()}_blob",
            summary="Upload a blob (raw request body)",
        )

    def _open(address: str, kind: BlobKind | None) -> VerifiedBlob | JSONResponse:
        try:
            return store.open(address, kind)
        except BadAddress as exc:
            return _error(400, "bad_address", str(exc))
        except BlobNotFound as exc:
            return _error(404, "not_found", str(exc))
        except BlobCorrupt as exc:
            return _error(500, "blob_corrupt", f"the server's copy is corrupt and is not served: {exc}")

    @router.get("/{address}", operation_id="get_blob", summary="Download a blob (verified against its address)")
    def download(address: str, kind: BlobKind | None = None) -> Response:
        blob = _open(address, kind)
        if isinstance(blob, JSONResponse):
            return blob

        def body() -> Iterator[bytes]:
            try:
                yield from blob.iter_bytes()  # raises (aborting the response) if the file changed meanwhile
            finally:
                blob.close()

        return StreamingResponse(
            body(),
            media_type="application/octet-stream",
            headers=_blob_headers(blob.size, blob.kind, blob.address),
            background=BackgroundTask(blob.close),
        )

    @router.head(
        "/{address}", operation_id="head_blob", summary="Whether a blob is here, its size and kind (not verified)"
    )
    def head(address: str, kind: BlobKind | None = None) -> Response:
        try:
            info = store.info(address, kind)
        except BadAddress as exc:
            return _error(400, "bad_address", str(exc))
        except BlobNotFound as exc:
            return _error(404, "not_found", str(exc))
        return Response(
            status_code=200,
            media_type="application/octet-stream",
            headers=_blob_headers(info.size, info.kind, info.address),
        )

    return router


def create_blob_app(store: LocalBlobStore, max_upload_bytes: int | None = None) -> FastAPI:
    """A FastAPI app serving ``store`` under ``/blobs`` (plus ``GET /healthz``)."""
    app = FastAPI(title="veritrain blob store", version="1")
    app.include_router(blob_router(store, max_upload_bytes))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


__all__ = ["blob_router", "create_blob_app"]
