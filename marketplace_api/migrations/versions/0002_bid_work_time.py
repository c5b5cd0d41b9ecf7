"""Bids carry the signed ``workTime`` (a bid can be accepted only while now + workTime <= deadline).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema. Bids stored before this revision were signed over the old Bid type, which the contract no
    longer accepts: they are deleted rather than given an invented workTime."""
    op.execute("DELETE FROM bids")
    with op.batch_alter_table("bids") as batch:
        batch.add_column(sa.Column("work_time", sa.BigInteger(), nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("bids") as batch:
        batch.drop_column("work_time")
