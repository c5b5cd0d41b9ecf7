"""SQLAlchemy 2 models: the off-chain order book (orders, bids, solver profiles) and the indexed chain.

Every 32-byte value is stored as ``0x`` + 64 lowercase hex, every address checksummed. Unsigned integers
that may exceed 2^63 (prices, stakes, nonces, deadlines) use :class:`U256`, a zero-padded 78-digit decimal
string, so they are exact on every backend and sort numerically.

Chain tables are append-only per block: ``chain_events`` holds every contract log once (unique per
``(tx_hash, log_index)``), and the ``*_snapshots`` tables hold the contract's view (``getJob``,
``getDispute``, ``positionOf``) read at the hash of each block that touched the entity. A reorg rollback is
``DELETE … WHERE block_number > n`` on each of them; the current view of an entity is its newest snapshot.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

U256_DIGITS = 78  # len(str(2**256 - 1))

# A BIGINT primary key that is still SQLite's INTEGER rowid (autoincrement) there.
PK = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class U256(TypeDecorator[int]):
    """An unsigned integer < 2^256 stored as a zero-padded 78-digit decimal string (exact, sortable)."""

    impl = String(U256_DIGITS)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect) -> str | None:
        if value is None:
            return None
        value = int(value)
        if not 0 <= value < 1 << 256:
            raise ValueError(f"{value} is not a uint256")
        return str(value).zfill(U256_DIGITS)

    def process_result_value(self, value: str | None, dialect) -> int | None:
        return None if value is None else int(value)


def _utcnow() -> datetime:
    return datetime.now(UTC)


Hash32 = String(66)
Address = String(42)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# ---------------------------------------------------------------------------------------- order book


class Order(Base):
    """A signed JobOrder posted to the API. ``job_id`` is its EIP-712 digest (the on-chain job id)."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("submitter", "nonce", name="uq_orders_submitter_nonce"),)

    seq: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(Hash32, unique=True)
    submitter: Mapped[str] = mapped_column(Address, index=True)
    spec_hash: Mapped[str] = mapped_column(Hash32)
    dataset_hash: Mapped[str] = mapped_column(Hash32)
    init_state_root: Mapped[str] = mapped_column(Hash32)
    total_steps: Mapped[int] = mapped_column(BigInteger)
    checkpoint_interval: Mapped[int] = mapped_column(BigInteger)
    max_price: Mapped[int] = mapped_column(U256)
    deadline: Mapped[int] = mapped_column(U256, index=True)
    nonce: Mapped[int] = mapped_column(U256)
    signature: Mapped[str] = mapped_column(String(132))
    model_kind: Mapped[str] = mapped_column(String(32), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    batch_size: Mapped[int] = mapped_column(BigInteger)
    #: The newest indexed on-chain state (0 = not on chain); recomputed on rollback.
    chain_state: Mapped[int] = mapped_column(Integer, default=0, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow, server_default=func.now())


class BidRow(Base):
    """A signed Bid on an order, with the solver's optional signed ETA."""

    __tablename__ = "bids"
    __table_args__ = (UniqueConstraint("solver", "nonce", name="uq_bids_solver_nonce"),)

    seq: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    bid_hash: Mapped[str] = mapped_column(Hash32, unique=True)
    job_id: Mapped[str] = mapped_column(Hash32, ForeignKey("orders.job_id", ondelete="CASCADE"), index=True)
    solver: Mapped[str] = mapped_column(Address, index=True)
    price: Mapped[int] = mapped_column(U256)
    stake: Mapped[int] = mapped_column(U256)
    expiry: Mapped[int] = mapped_column(U256)
    nonce: Mapped[int] = mapped_column(U256)
    work_time: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str] = mapped_column(String(132))
    eta_seconds: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    eta_signature: Mapped[str | None] = mapped_column(String(132), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow, server_default=func.now())


class SolverProfileRow(Base):
    """A solver's newest signed capability profile."""

    __tablename__ = "solver_profiles"

    solver: Mapped[str] = mapped_column(Address, primary_key=True)
    profile: Mapped[dict] = mapped_column(JSON)
    profile_hash: Mapped[str] = mapped_column(Hash32)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str] = mapped_column(String(132))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow, server_default=func.now())


# ---------------------------------------------------------------------------------------- chain index


class ChainEventRow(Base):
    """One contract log, decoded (``args`` as JSON: bytes as 0x-hex, big ints as decimal strings)."""

    __tablename__ = "chain_events"
    __table_args__ = (
        UniqueConstraint("tx_hash", "log_index", name="uq_chain_events_tx_log"),
        Index("ix_chain_events_block", "block_number", "log_index"),
    )

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(Hash32)
    block_time: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(Hash32)
    log_index: Mapped[int] = mapped_column(Integer)
    contract: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64), index=True)
    args: Mapped[dict] = mapped_column(JSON)
    job_id: Mapped[str | None] = mapped_column(Hash32, nullable=True, index=True)
    dispute_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    account: Mapped[str | None] = mapped_column(Address, nullable=True, index=True)
    #: A secondary key: the nonce (decimal) of a NonceCancelled event.
    ref: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)


class JobSnapshot(Base):
    """``JobMarket.getJob(jobId)`` at the end of a block that emitted an event about the job."""

    __tablename__ = "job_snapshots"
    __table_args__ = (UniqueConstraint("job_id", "block_number", name="uq_job_snapshots_job_block"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(Hash32, index=True)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    block_hash: Mapped[str] = mapped_column(Hash32)
    state: Mapped[int] = mapped_column(Integer)
    submitter: Mapped[str] = mapped_column(Address)
    solver: Mapped[str] = mapped_column(Address, index=True)
    deadline: Mapped[int] = mapped_column(U256)
    num_leaves: Mapped[int] = mapped_column(U256)
    price: Mapped[int] = mapped_column(U256)
    stake: Mapped[int] = mapped_column(U256)
    init_state_root: Mapped[str] = mapped_column(Hash32)
    trajectory_root: Mapped[str] = mapped_column(Hash32)
    final_state_root: Mapped[str] = mapped_column(Hash32)
    committed_at: Mapped[int] = mapped_column(U256)
    audit_end: Mapped[int] = mapped_column(U256)
    seed_block: Mapped[int] = mapped_column(U256)
    window_left: Mapped[int] = mapped_column(U256)
    seed: Mapped[str] = mapped_column(Hash32)


class DisputeSnapshot(Base):
    """``DisputeGame.getDispute(id)`` at the end of a block that emitted an event about the dispute."""

    __tablename__ = "dispute_snapshots"
    __table_args__ = (UniqueConstraint("dispute_id", "block_number", name="uq_dispute_snapshots_dispute_block"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    dispute_id: Mapped[int] = mapped_column(BigInteger, index=True)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    block_hash: Mapped[str] = mapped_column(Hash32)
    job_id: Mapped[str] = mapped_column(Hash32, index=True)
    phase: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[int] = mapped_column(Integer)
    solver: Mapped[str] = mapped_column(Address)
    challenger: Mapped[str] = mapped_column(Address)
    node: Mapped[str] = mapped_column(Hash32)
    lo: Mapped[int] = mapped_column(U256)
    hi: Mapped[int] = mapped_column(U256)
    num_leaves: Mapped[int] = mapped_column(U256)
    solver_clock: Mapped[int] = mapped_column(U256)
    challenger_clock: Mapped[int] = mapped_column(U256)
    last_move_at: Mapped[int] = mapped_column(U256)
    bond: Mapped[int] = mapped_column(U256)
    post_state_root: Mapped[str] = mapped_column(Hash32)
    pre_state_root: Mapped[str] = mapped_column(Hash32)
    data: Mapped[dict] = mapped_column(JSON)


class StakerSnapshot(Base):
    """``StakeManager.positionOf(account)`` at the end of a block that emitted an event about the account."""

    __tablename__ = "staker_snapshots"
    __table_args__ = (UniqueConstraint("account", "block_number", name="uq_staker_snapshots_account_block"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(Address, index=True)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    block_hash: Mapped[str] = mapped_column(Hash32)
    free: Mapped[int] = mapped_column(U256)
    locked: Mapped[int] = mapped_column(U256)
    unbonding: Mapped[int] = mapped_column(U256)
    release_at: Mapped[int] = mapped_column(U256)
    claimable: Mapped[int] = mapped_column(U256)
    verifier: Mapped[bool] = mapped_column(Boolean)


class IndexerState(Base):
    """One row per indexer: the newest block applied (for /health and lag metrics)."""

    __tablename__ = "indexer_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(Hash32)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow, server_default=func.now())


CHAIN_TABLES = (ChainEventRow, JobSnapshot, DisputeSnapshot, StakerSnapshot)
