"""Who closed a problem: its linked incidents are closed in batches after the closing

Revision ID: 0017
Revises: 0016

Closing a problem closed every linked incident in the closing's one transaction (at 100
linked another client waited 2.4 s behind it on SQLite's write lock). Now the closing
commits the problem alone and the incidents follow in batches, each its own transaction,
after the commit or, after a restart, from the scheduler's sweep: each batch closes them
in the name of whoever closed the problem, so that is kept on the problem.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("problems", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_by_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("closed_by_name", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("problems", schema=None) as batch_op:
        batch_op.drop_column("closed_by_name")
        batch_op.drop_column("closed_by_id")
