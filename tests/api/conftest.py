"""Fixtures of the marketplace API tests: the same tests run against SQLite and a real PostgreSQL.

``backend`` is parametrised (``sqlite``, ``postgresql``); ``db_url`` is a fresh, empty database of that
backend for each test (a new SQLite file; a new PostgreSQL database in the session's throwaway cluster).
``market`` is a running app (TestClient) with a fake deployment (chain 31337, the default parameters), its
blob store, signing keys and helpers that make valid signed orders and bids.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import NOW, Market, make_settings
from eth_account import Account
from fastapi.testclient import TestClient
from pgcluster import Cluster, PostgresUnavailable

from marketplace_api.context import AppContext
from marketplace_api.main import create_app

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster | str | None]:
    if os.environ.get("VERITRAIN_TEST_POSTGRES") == "0":
        yield None
        return
    if os.environ.get("VERITRAIN_TEST_POSTGRES_URL"):
        yield os.environ["VERITRAIN_TEST_POSTGRES_URL"]
        return
    try:
        cluster = Cluster().start()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'marketplace.db'}"
    cluster = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip("PostgreSQL disabled (VERITRAIN_TEST_POSTGRES=0)")
    if isinstance(cluster, str):
        return cluster  # caller-provided server: tests share it (must be empty)
    return cluster.create_database(f"vt_{os.getpid()}_{next(_db_counter)}")


@pytest.fixture
def market(tmp_path: Path, db_url: str) -> Iterator[Market]:
    settings = make_settings(tmp_path, db_url, max_upload_bytes=1 << 20)
    ctx = AppContext.from_settings(settings)
    ctx.clock = lambda: NOW
    app = create_app(ctx=ctx)
    accounts = [Account.from_key(bytes([i]) * 32) for i in range(1, 5)]
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Market(client, ctx, settings.domain, *accounts)
