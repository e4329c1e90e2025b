"""One sent message may belong to several incidents: a client group's coalesced message

Revision ID: 0016
Revises: 0015

When a client group reaches its 20 messages a minute, the delivery worker sends what is
queued for it as one message (bot/telegram/delivery.py); that message speaks of every
incident whose notification it carries, so `message_links` keys on (chat, message,
incident) instead of (chat, message). Existing rows keep their meaning (one incident each).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message_links", schema=None) as batch_op:
        batch_op.drop_constraint("pk_message_links", type_="primary")
        batch_op.create_primary_key("pk_message_links", ["chat_id", "message_id", "ticket_id"])


def downgrade() -> None:
    # Back to one incident a message: of a coalesced message the latest incident stays,
    # the rule a reply to it followed when nothing else decided.
    op.execute(
        "DELETE FROM message_links WHERE EXISTS (SELECT 1 FROM message_links AS later"
        " WHERE later.chat_id = message_links.chat_id"
        " AND later.message_id = message_links.message_id"
        " AND later.ticket_id > message_links.ticket_id)")
    with op.batch_alter_table("message_links", schema=None) as batch_op:
        batch_op.drop_constraint("pk_message_links", type_="primary")
        batch_op.create_primary_key("pk_message_links", ["chat_id", "message_id"])
