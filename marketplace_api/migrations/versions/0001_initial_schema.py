"""Initial schema: orders, bids, solver profiles; chain events and the job / dispute / staker snapshots.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""

    op.create_table(
        "chain_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_time", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("contract", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=66), nullable=True),
        sa.Column("dispute_id", sa.BigInteger(), nullable=True),
        sa.Column("account", sa.String(length=42), nullable=True),
        sa.Column("ref", sa.String(length=80), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_events")),
        sa.UniqueConstraint("tx_hash", "log_index", name="uq_chain_events_tx_log"),
    )
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_events_account"), ["account"], unique=False)
        batch_op.create_index("ix_chain_events_block", ["block_number", "log_index"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_events_dispute_id"), ["dispute_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_events_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_events_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_events_ref"), ["ref"], unique=False)

    op.create_table(
        "dispute_snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("dispute_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("job_id", sa.String(length=66), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.Integer(), nullable=False),
        sa.Column("solver", sa.String(length=42), nullable=False),
        sa.Column("challenger", sa.String(length=42), nullable=False),
        sa.Column("node", sa.String(length=66), nullable=False),
        sa.Column("lo", sa.String(length=78), nullable=False),
        sa.Column("hi", sa.String(length=78), nullable=False),
        sa.Column("num_leaves", sa.String(length=78), nullable=False),
        sa.Column("solver_clock", sa.String(length=78), nullable=False),
        sa.Column("challenger_clock", sa.String(length=78), nullable=False),
        sa.Column("last_move_at", sa.String(length=78), nullable=False),
        sa.Column("bond", sa.String(length=78), nullable=False),
        sa.Column("post_state_root", sa.String(length=66), nullable=False),
        sa.Column("pre_state_root", sa.String(length=66), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute_snapshots")),
        sa.UniqueConstraint("dispute_id", "block_number", name="uq_dispute_snapshots_dispute_block"),
    )
    with op.batch_alter_table("dispute_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dispute_snapshots_block_number"), ["block_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_dispute_snapshots_dispute_id"), ["dispute_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dispute_snapshots_job_id"), ["job_id"], unique=False)

    op.create_table(
        "indexer_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_indexer_state")),
    )
    op.create_table(
        "job_snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("submitter", sa.String(length=42), nullable=False),
        sa.Column("solver", sa.String(length=42), nullable=False),
        sa.Column("deadline", sa.String(length=78), nullable=False),
        sa.Column("num_leaves", sa.String(length=78), nullable=False),
        sa.Column("price", sa.String(length=78), nullable=False),
        sa.Column("stake", sa.String(length=78), nullable=False),
        sa.Column("init_state_root", sa.String(length=66), nullable=False),
        sa.Column("trajectory_root", sa.String(length=66), nullable=False),
        sa.Column("final_state_root", sa.String(length=66), nullable=False),
        sa.Column("committed_at", sa.String(length=78), nullable=False),
        sa.Column("audit_end", sa.String(length=78), nullable=False),
        sa.Column("seed_block", sa.String(length=78), nullable=False),
        sa.Column("window_left", sa.String(length=78), nullable=False),
        sa.Column("seed", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_snapshots")),
        sa.UniqueConstraint("job_id", "block_number", name="uq_job_snapshots_job_block"),
    )
    with op.batch_alter_table("job_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_snapshots_block_number"), ["block_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_snapshots_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_snapshots_solver"), ["solver"], unique=False)

    op.create_table(
        "orders",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=66), nullable=False),
        sa.Column("submitter", sa.String(length=42), nullable=False),
        sa.Column("spec_hash", sa.String(length=66), nullable=False),
        sa.Column("dataset_hash", sa.String(length=66), nullable=False),
        sa.Column("init_state_root", sa.String(length=66), nullable=False),
        sa.Column("total_steps", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_interval", sa.BigInteger(), nullable=False),
        sa.Column("max_price", sa.String(length=78), nullable=False),
        sa.Column("deadline", sa.String(length=78), nullable=False),
        sa.Column("nonce", sa.String(length=78), nullable=False),
        sa.Column("signature", sa.String(length=132), nullable=False),
        sa.Column("model_kind", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("batch_size", sa.BigInteger(), nullable=False),
        sa.Column("chain_state", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_orders")),
        sa.UniqueConstraint("job_id", name=op.f("uq_orders_job_id")),
        sa.UniqueConstraint("submitter", "nonce", name="uq_orders_submitter_nonce"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_chain_state"), ["chain_state"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_deadline"), ["deadline"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_model_kind"), ["model_kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_submitter"), ["submitter"], unique=False)

    op.create_table(
        "solver_profiles",
        sa.Column("solver", sa.String(length=42), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("profile_hash", sa.String(length=66), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.String(length=132), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("solver", name=op.f("pk_solver_profiles")),
    )
    op.create_table(
        "staker_snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("free", sa.String(length=78), nullable=False),
        sa.Column("locked", sa.String(length=78), nullable=False),
        sa.Column("unbonding", sa.String(length=78), nullable=False),
        sa.Column("release_at", sa.String(length=78), nullable=False),
        sa.Column("claimable", sa.String(length=78), nullable=False),
        sa.Column("verifier", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staker_snapshots")),
        sa.UniqueConstraint("account", "block_number", name="uq_staker_snapshots_account_block"),
    )
    with op.batch_alter_table("staker_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staker_snapshots_account"), ["account"], unique=False)
        batch_op.create_index(batch_op.f("ix_staker_snapshots_block_number"), ["block_number"], unique=False)

    op.create_table(
        "bids",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("bid_hash", sa.String(length=66), nullable=False),
        sa.Column("job_id", sa.String(length=66), nullable=False),
        sa.Column("solver", sa.String(length=42), nullable=False),
        sa.Column("price", sa.String(length=78), nullable=False),
        sa.Column("stake", sa.String(length=78), nullable=False),
        sa.Column("expiry", sa.String(length=78), nullable=False),
        sa.Column("nonce", sa.String(length=78), nullable=False),
        sa.Column("signature", sa.String(length=132), nullable=False),
        sa.Column("eta_seconds", sa.BigInteger(), nullable=True),
        sa.Column("eta_signature", sa.String(length=132), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["orders.job_id"], name=op.f("fk_bids_job_id_orders"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_bids")),
        sa.UniqueConstraint("bid_hash", name=op.f("uq_bids_bid_hash")),
        sa.UniqueConstraint("solver", "nonce", name="uq_bids_solver_nonce"),
    )
    with op.batch_alter_table("bids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bids_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_bids_solver"), ["solver"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""

    with op.batch_alter_table("bids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bids_solver"))
        batch_op.drop_index(batch_op.f("ix_bids_job_id"))

    op.drop_table("bids")
    with op.batch_alter_table("staker_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staker_snapshots_block_number"))
        batch_op.drop_index(batch_op.f("ix_staker_snapshots_account"))

    op.drop_table("staker_snapshots")
    op.drop_table("solver_profiles")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_submitter"))
        batch_op.drop_index(batch_op.f("ix_orders_model_kind"))
        batch_op.drop_index(batch_op.f("ix_orders_deadline"))
        batch_op.drop_index(batch_op.f("ix_orders_chain_state"))

    op.drop_table("orders")
    with op.batch_alter_table("job_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_snapshots_solver"))
        batch_op.drop_index(batch_op.f("ix_job_snapshots_job_id"))
        batch_op.drop_index(batch_op.f("ix_job_snapshots_block_number"))

    op.drop_table("job_snapshots")
    op.drop_table("indexer_state")
    with op.batch_alter_table("dispute_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dispute_snapshots_job_id"))
        batch_op.drop_index(batch_op.f("ix_dispute_snapshots_dispute_id"))
        batch_op.drop_index(batch_op.f("ix_dispute_snapshots_block_number"))

    op.drop_table("dispute_snapshots")
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_events_ref"))
        batch_op.drop_index(batch_op.f("ix_chain_events_name"))
        batch_op.drop_index(batch_op.f("ix_chain_events_job_id"))
        batch_op.drop_index(batch_op.f("ix_chain_events_dispute_id"))
        batch_op.drop_index("ix_chain_events_block")
        batch_op.drop_index(batch_op.f("ix_chain_events_account"))

    op.drop_table("chain_events")
