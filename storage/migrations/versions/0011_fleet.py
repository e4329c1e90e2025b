"""Several workers: who holds which update (inbox.claimed_by), the workers' heartbeats,
the leader's recent sends to groups

Revision ID: 0011
Revises: 0010

Used on PostgreSQL only (bot/telegram/lease.py, bot/telegram/delivery.py); SQLite is one
process and leaves them empty. Batch mode for the ALTER so that SQLite can run it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UtcDateTime = storage.models.UtcDateTime


def upgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("pid", sa.BigInteger(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("beat_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_table(
        "group_sends",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_sends")),
    )
    with op.batch_alter_table("group_sends", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_sends_sent_at"), ["sent_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("group_sends", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_sends_sent_at"))
    op.drop_table("group_sends")
    op.drop_table("workers")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
