"""Every company its own contract: service level, coordinators, time spent, costs

Revision ID: 0010
Revises: 0009

Companies get their service level over the desk's (`sla`, `work_time`), coordinators
(`contacts`, `notify_contacts`), an account manager, a fee with the hours it includes,
and an act template of their own. Incidents keep the level they were registered under
(`sla_terms`), a reason when the work is outside the contract (`out_of_scope`) and the
time logged on them (`minutes_spent`, the sum of `time_entries`). `maintenance_reminders`
marks the planned-work reminders posted (once per due date and kind).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UtcDateTime = storage.models.UtcDateTime


def upgrade() -> None:
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sla", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("work_time", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("contacts", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("notify_contacts", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("account_manager", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("fee", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("hours_included", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("act_template", sa.String(length=500), nullable=True))
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sla_terms", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("out_of_scope", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("minutes_spent", sa.Integer(), nullable=False,
                                      server_default="0"))
    op.create_table(
        "time_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.BigInteger(), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=True),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_time_entries_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_time_entries")),
    )
    with op.batch_alter_table("time_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_time_entries_ticket_id"), ["ticket_id"])
        batch_op.create_index(batch_op.f("ix_time_entries_at"), ["at"])
    op.create_table(
        "maintenance_reminders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("work", sa.String(length=200), nullable=False),
        sa.Column("due_on", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("sent_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"],
                                name=op.f("fk_maintenance_reminders_company_id_companies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_reminders")),
        sa.UniqueConstraint("company_id", "work", "due_on", "kind",
                            name=op.f("uq_maintenance_reminders_company_id")),
    )


def downgrade() -> None:
    op.drop_table("maintenance_reminders")
    with op.batch_alter_table("time_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_time_entries_at"))
        batch_op.drop_index(batch_op.f("ix_time_entries_ticket_id"))
    op.drop_table("time_entries")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for column in ("minutes_spent", "out_of_scope", "sla_terms"):
            batch_op.drop_column(column)
    with op.batch_alter_table("companies", schema=None) as batch_op:
        for column in ("act_template", "hours_included", "fee", "account_manager",
                       "notify_contacts", "contacts", "work_time", "sla"):
            batch_op.drop_column(column)
