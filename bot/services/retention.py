"""What is kept and for how long (docs/SECURITY.md): handled updates and sent messages
are pruned after `[retention] days`, their payloads after `payload_days` (first).

The scheduled job is an idempotent sweep of a moment: run twice, it prunes nothing more.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.config import RetentionConfig
from storage.db import Database
from storage.repos.inbox import Inbox
from storage.repos.outbox import Outbox

log = logging.getLogger(__name__)


async def retention_sweep(db: Database, config: RetentionConfig, now: datetime) -> int:
    """Prune the inbox and the outbox as of `now`; returns 0 (it writes nothing to send)."""
    payloads_before = now - timedelta(days=config.payload_days)
    rows_before = now - timedelta(days=config.days)
    async with db.transaction() as session:
        inbox = await Inbox(session).prune(payloads_before=payloads_before,
                                           rows_before=rows_before)
        outbox = await Outbox(session).prune(payloads_before=payloads_before,
                                             rows_before=rows_before)
    if inbox or outbox:
        log.info("retention: %d inbox and %d outbox rows pruned or emptied", inbox, outbox)
    return 0
