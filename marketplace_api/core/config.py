"""The marketplace API's settings: one pydantic ``BaseSettings``, read from ``VERITRAIN_*`` environment variables.

``VERITRAIN_DATABASE_URL`` picks the database: SQLite in WAL mode under ``VERITRAIN_DATA_DIR`` by default,
PostgreSQL with ``postgresql+psycopg://user:pass@host/db``. ``VERITRAIN_DEPLOYMENT`` (a deployment JSON written
by ``veritrain devnet up`` / :func:`protocol.deploy.deploy`) gives the EIP-712 domain (chain id and JobMarket
address); without it the API still serves reads and blobs but refuses signed writes (503 ``no_deployment``).
``VERITRAIN_RPC_URL`` together with a deployment starts the chain indexer inside the API process unless
``VERITRAIN_INDEXER=false``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocol.deploy import Deployment, load_deployment
from protocol.eip712 import Domain


def _default_data_dir() -> Path:
    return Path.home() / ".veritrain" / "marketplace"


class Settings(BaseSettings):
    """Every knob of the API, documented; each is ``VERITRAIN_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="VERITRAIN_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir, description="SQLite file, blobs and indexer cursor")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<data_dir>/marketplace.db")
    blob_dir: Path | None = Field(None, description="blob store root; default <data_dir>/blobs")
    deployment: Path | None = Field(None, description="deployment JSON (chain id, contract addresses)")
    rpc_url: str | None = Field(None, description="Ethereum JSON-RPC URL the indexer follows")
    indexer: bool = Field(True, description="run the chain indexer inside the API process (needs rpc_url)")
    confirmations: int = Field(2, ge=0, le=1000, description="blocks an event must be buried under")
    indexer_interval_s: float = Field(1.0, gt=0, description="seconds between indexer polls")
    cursor_path: Path | None = Field(None, description="indexer cursor file; default <data_dir>/indexer-cursor.json")
    migrate: bool = Field(True, description="run `alembic upgrade head` at startup")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="largest JSON request body (413 above)")
    max_leaf_list_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024,
        description="largest leaf-list mirror body, PUT /jobs/{id}/leaves (~69 bytes a leaf: ~480k leaves)",
    )
    max_upload_bytes: int = Field(256 * 1024 * 1024, ge=1, description="largest blob upload (413 above)")
    max_page: int = Field(200, ge=1, le=1000, description="largest `limit` a list route accepts")
    max_bids_per_job: int = Field(1000, ge=1, description="bids kept per job (ranking is over all of them)")
    max_clock_skew_s: int = Field(300, ge=0, description="how far in the future a profile's issuedAt may be")
    host: str = "127.0.0.1"
    port: int = 8000

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'marketplace.db'}"

    @property
    def blob_root(self) -> Path:
        return self.blob_dir or self.data_dir / "blobs"

    @property
    def indexer_cursor_path(self) -> Path:
        return self.cursor_path or self.data_dir / "indexer-cursor.json"

    @cached_property
    def loaded_deployment(self) -> Deployment | None:
        return load_deployment(self.deployment) if self.deployment else None

    @property
    def domain(self) -> Domain | None:
        dep = self.loaded_deployment
        return Domain(dep.chain_id, dep.address_of("JobMarket")) if dep else None
