"""Problems: one cause behind many incidents, opened by staff or by monitoring

Revision ID: 0013
Revises: 0011

`problems` holds each problem (made from an incident, or opened by a monitoring alert
with no client reporter: `ticket_id` NULL, the alert's `fingerprint` unique); an incident
linked to one carries its number (`tickets.problem_number`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UtcDateTime = storage.models.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "problems",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("card_outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("fingerprint", sa.String(length=200), nullable=True),
        sa.Column("alert_severity", sa.String(length=32), nullable=True),
        sa.Column("alert_started", sa.String(length=64), nullable=True),
        sa.Column("alert_resolved_at", UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"],
                                name=op.f("fk_problems_company_id_companies")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_problems_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problems")),
        sa.UniqueConstraint("number", name=op.f("uq_problems_number")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_problems_ticket_id")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_problems_fingerprint")),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("problem_number", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tickets_problem_number"), ["problem_number"])
        batch_op.create_foreign_key(batch_op.f("fk_tickets_problem_number_problems"),
                                    "problems", ["problem_number"], ["number"])


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tickets_problem_number_problems"),
                                 type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_tickets_problem_number"))
        batch_op.drop_column("problem_number")
    op.drop_table("problems")
