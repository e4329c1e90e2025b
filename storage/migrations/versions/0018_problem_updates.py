"""A problem's update told to its linked incidents in batches: problem_updates

Revision ID: 0018
Revises: 0017

A staff message in a problem's thread reached every linked client in that message's one
transaction. Now the transaction records the update (`problem_updates`) and batches after
the commit tell the linked incidents in order of their numbers, each batch moving
`told_through` in its own transaction; the scheduler's sweep finishes what a restart cut
short.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.models import UtcDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "problem_updates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("problem_number", sa.BigInteger(), nullable=False),
        sa.Column("actor_kind", sa.String(length=8), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("told_through", sa.BigInteger(), nullable=False),
        sa.Column("done_at", UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["problem_number"], ["problems.number"],
                                name=op.f("fk_problem_updates_problem_number_problems")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problem_updates")),
    )
    with op.batch_alter_table("problem_updates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_problem_updates_problem_number"),
                              ["problem_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_problem_updates_done_at"), ["done_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("problem_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_problem_updates_done_at"))
        batch_op.drop_index(batch_op.f("ix_problem_updates_problem_number"))
    op.drop_table("problem_updates")
