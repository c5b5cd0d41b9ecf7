"""What one running API holds: settings, database, blob store, EIP-712 domain, metrics, indexer handle."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from marketplace_api.core.config import Settings
from marketplace_api.core.db import make_engine, make_session_factory
from marketplace_api.metrics import Metrics
from protocol.blobstore import LocalBlobStore
from protocol.constants import BPS
from protocol.deploy import Deployment
from protocol.eip712 import Domain
from protocol.spec import JobSpec


class SpecCache:
    """Parsed specs by spec hash (a spec blob never changes: its address is its hash)."""

    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[str, JobSpec] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str) -> JobSpec | None:
        with self._lock:
            spec = self._items.get(key)
            if spec is not None:
                self._items.move_to_end(key)
            return spec

    def put(self, key: str, spec: JobSpec) -> None:
        with self._lock:
            self._items[key] = spec
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: LocalBlobStore
    deployment: Deployment | None
    domain: Domain | None
    metrics: Metrics = field(default_factory=Metrics)
    specs: SpecCache = field(default_factory=SpecCache)
    clock: Callable[[], float] = time.time
    indexer: Any = None  # marketplace_api.indexer.IndexerThread when running

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        engine = make_engine(settings.sqlalchemy_url)
        deployment = settings.loaded_deployment
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            blobs=LocalBlobStore(settings.blob_root, max_blob_bytes=max(settings.max_upload_bytes, 1)),
            deployment=deployment,
            domain=settings.domain,
        )

    def now(self) -> int:
        return int(self.clock())

    def required_stake(self, price: int) -> int | None:
        """``JobMarket.requiredStake(price)`` from the deployment's parameters (None without one)."""
        if self.deployment is None:
            return None
        market = self.deployment.params.get("market", {})
        try:
            minimum, bps = int(market["minJobStake"]), int(market["stakeMultiplierBps"])
        except (KeyError, TypeError, ValueError):
            return None
        return max(price * bps // BPS, minimum)
