"""Invite links with an expiry and a use limit; a client's move to another company
waiting for staff to confirm it

Revision ID: 0014
Revises: 0011

`companies.invite_expires_at`, `invite_max_uses`, `invite_uses` (issue 14: an invite link
may stop working at a date or after N employees joined); `clients.pending_company_id`: a
client who came through another company's link stays where they were until staff confirm
the move. Batch mode for the ALTER so that SQLite can run it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UtcDateTime = storage.models.UtcDateTime


def upgrade() -> None:
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("invite_expires_at", UtcDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("invite_max_uses", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("invite_uses", sa.BigInteger(), nullable=False,
                                      server_default="0"))
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_company_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_clients_pending_company_id_companies"), "companies",
            ["pending_company_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_clients_pending_company_id_companies"),
                                 type_="foreignkey")
        batch_op.drop_column("pending_company_id")
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_column("invite_uses")
        batch_op.drop_column("invite_max_uses")
        batch_op.drop_column("invite_expires_at")
