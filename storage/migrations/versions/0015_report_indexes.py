"""Covering indexes for the reports: /stats reads the indexes, never the tables

Revision ID: 0015
Revises: 0011

`ix_tickets_opened_at` and `ix_tickets_resolved_at` become `ix_tickets_opened_report` and
`ix_tickets_resolved_report`: the same first column (every range query they served still
uses them), followed by every column the report queries read (storage/repos/reports.py).
`ix_tickets_status` gains the severity (open incidents per severity) and `ix_ratings_rated_at`
the columns the rating counts read. The column lists are written out here, as they were
when this ran.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPENED = ["opened_at", "severity", "first_response_at", "first_response_met",
          "first_response_breached_at", "resolution_met", "resolution_breached_at", "client_id"]
RESOLVED = ["resolved_at", "status", "severity", "resolution_kind", "reopen_count", "opened_at",
            "first_response_at", "resolution_seconds", "assignee_id", "assignee_name",
            "client_id"]


RATED = ["rated_at", "counted", "score", "followup_by", "client_id"]


def upgrade() -> None:
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_index("ix_ratings_rated_at")
        batch_op.create_index("ix_ratings_rated_report", RATED, unique=False)
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_status")
        batch_op.create_index("ix_tickets_status_severity", ["status", "severity"], unique=False)
        batch_op.drop_index("ix_tickets_opened_at")
        batch_op.drop_index("ix_tickets_resolved_at")
        batch_op.create_index("ix_tickets_opened_report", OPENED, unique=False)
        batch_op.create_index("ix_tickets_resolved_report", RESOLVED, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_resolved_report")
        batch_op.drop_index("ix_tickets_opened_report")
        batch_op.create_index("ix_tickets_resolved_at", ["resolved_at"], unique=False)
        batch_op.create_index("ix_tickets_opened_at", ["opened_at"], unique=False)
        batch_op.drop_index("ix_tickets_status_severity")
        batch_op.create_index("ix_tickets_status", ["status"], unique=False)
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_index("ix_ratings_rated_report")
        batch_op.create_index("ix_ratings_rated_at", ["rated_at"], unique=False)
