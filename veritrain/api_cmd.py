"""``veritrain api`` (the marketplace API under uvicorn) and ``veritrain indexer`` (the chain indexer alone)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer


def _settings(**overrides):
    from marketplace_api.core.config import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def api(
    host: Annotated[str | None, typer.Option(help="Bind address (VERITRAIN_HOST; default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (VERITRAIN_PORT; default 8000).")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL (VERITRAIN_DATABASE_URL).")] = None,
    deployment: Annotated[Path | None, typer.Option(help="Deployment JSON (VERITRAIN_DEPLOYMENT).")] = None,
    rpc_url: Annotated[str | None, typer.Option(help="RPC URL for the in-process indexer (VERITRAIN_RPC_URL).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="SQLite file, blobs, cursor (VERITRAIN_DATA_DIR).")] = None,
    indexer: Annotated[
        bool | None, typer.Option("--indexer/--no-indexer", help="Run the chain indexer inside.")
    ] = None,
    migrate: Annotated[bool, typer.Option("--migrate", help="Only run `alembic upgrade head` and exit.")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the marketplace API (FastAPI under uvicorn); migrates the database to head first.

    Examples:

      VERITRAIN_DEPLOYMENT=.veritrain/deployment.json veritrain api --port 8000

      VERITRAIN_DATABASE_URL=postgresql+psycopg://me@localhost/veritrain veritrain api

      veritrain api --migrate
    """
    from marketplace_api.main import create_app

    settings = _settings(
        host=host,
        port=port,
        database_url=database_url,
        deployment=deployment,
        rpc_url=rpc_url,
        data_dir=data_dir,
        indexer=indexer,
    )
    if migrate:
        from marketplace_api.core.db import make_engine
        from marketplace_api.migrate import upgrade

        engine = make_engine(settings.sqlalchemy_url)
        upgrade(engine)
        engine.dispose()
        typer.echo(f"database {engine.url.render_as_string(hide_password=True)} is at the newest migration")
        return
    import uvicorn

    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        timeout_keep_alive=5,
        limit_concurrency=1000,
    )


def indexer(
    rpc_url: Annotated[str | None, typer.Option(help="RPC URL (VERITRAIN_RPC_URL).")] = None,
    deployment: Annotated[Path | None, typer.Option(help="Deployment JSON (VERITRAIN_DEPLOYMENT).")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL (VERITRAIN_DATABASE_URL).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="(VERITRAIN_DATA_DIR)")] = None,
    confirmations: Annotated[
        int | None, typer.Option(min=0, help="Confirmation depth (VERITRAIN_CONFIRMATIONS).")
    ] = None,
) -> None:
    """Follow the protocol's contract events into the marketplace database (without serving HTTP).

    Examples:

      VERITRAIN_DEPLOYMENT=.veritrain/deployment.json VERITRAIN_RPC_URL=http://127.0.0.1:8545 veritrain indexer
    """
    from marketplace_api.context import AppContext
    from marketplace_api.indexer import IndexerThread
    from marketplace_api.migrate import upgrade

    settings = _settings(
        rpc_url=rpc_url,
        deployment=deployment,
        database_url=database_url,
        data_dir=data_dir,
        confirmations=confirmations,
    )
    if not settings.rpc_url or not settings.deployment:
        typer.echo(
            "error: the indexer needs --rpc-url and --deployment (or VERITRAIN_RPC_URL / VERITRAIN_DEPLOYMENT)",
            err=True,
        )
        raise typer.Exit(2)
    ctx = AppContext.from_settings(settings)
    upgrade(ctx.engine)
    runner = IndexerThread.from_settings(ctx)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: (runner.stop(0), done.set()))
    typer.echo(f"indexing chain {ctx.deployment.chain_id} from {settings.rpc_url} into {settings.sqlalchemy_url}")
    runner.start()
    done.wait()
