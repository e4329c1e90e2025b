"""Client groups: a company's own group chat linked to the desk, and where a group
incident's answers go

Revision ID: 0012
Revises: 0011

Batch mode for the ALTER so that SQLite can run it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UtcDateTime = storage.models.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "client_groups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("linked_by", sa.BigInteger(), nullable=True),
        sa.Column("linked_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"],
                                name=op.f("fk_client_groups_company_id_companies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_groups")),
        sa.UniqueConstraint("chat_id", name=op.f("uq_client_groups_chat_id")),
    )
    with op.batch_alter_table("client_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_client_groups_company_id"), ["company_id"],
                              unique=False)
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_chat_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("group_message_id", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tickets_group_chat_id"), ["group_chat_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_group_chat_id"))
        batch_op.drop_column("group_message_id")
        batch_op.drop_column("group_chat_id")
    with op.batch_alter_table("client_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_groups_company_id"))
    op.drop_table("client_groups")
