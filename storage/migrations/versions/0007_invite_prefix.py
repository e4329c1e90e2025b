"""Invite codes made by 0005 for the companies it created lack the "org-" prefix

Revision ID: 0007
Revises: 0006

`/start <code>` takes only codes starting with "org-" (bot/services/companies.py), so the
links of those companies never worked. Data only: the prefix is added; downgrade keeps it
(a code with the prefix is valid either way).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX = "org-"


def upgrade() -> None:
    companies = sa.table("companies", sa.column("invite_code", sa.String()))
    op.get_bind().execute(
        companies.update()
        .where(sa.not_(companies.c.invite_code.startswith(PREFIX, autoescape=True)))
        .values(invite_code=sa.literal(PREFIX) + companies.c.invite_code))


def downgrade() -> None:
    pass
