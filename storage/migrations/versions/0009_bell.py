"""The bell: bad ratings and bad quarterly answers get an owner; "not used" answers

Revision ID: 0009
Revises: 0007

ratings: the staff alert's outbox row and who took the follow-up (`Взять`).
quality_deliveries: "not used / nothing to rate" (`unused_at`), the alert, "what is wrong?"
(`question_at`, `question_open`, `comment`) and who took the follow-up.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UtcDateTime = storage.models.UtcDateTime
FOLLOWUP = ("alert_outbox_id", "followup_by", "followup_name", "followup_at")


def _followup() -> list[sa.Column[object]]:
    return [
        sa.Column("alert_outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("followup_by", sa.BigInteger(), nullable=True),
        sa.Column("followup_name", sa.String(200), nullable=True),
        sa.Column("followup_at", UtcDateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("ratings") as batch:
        for column in _followup():
            batch.add_column(column)
    with op.batch_alter_table("quality_deliveries") as batch:
        batch.add_column(sa.Column("unused_at", UtcDateTime(timezone=True), nullable=True))
        for column in _followup():
            batch.add_column(column)
        batch.add_column(sa.Column("question_at", UtcDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("question_open", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("comment", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("quality_deliveries") as batch:
        for name in ("comment", "question_open", "question_at", *FOLLOWUP, "unused_at"):
            batch.drop_column(name)
    with op.batch_alter_table("ratings") as batch:
        for name in FOLLOWUP:
            batch.drop_column(name)
