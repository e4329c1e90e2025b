"""Is anything stuck on the way to Telegram? The delivery queue as /health shows it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.repos import outbox
from storage.repos.outbox import DeliveryHealth


async def delivery_health(session: AsyncSession, now: datetime) -> DeliveryHealth:
    """Outbox depth, the oldest pending message, the last unresolved error and the 429
    answers of the last hour."""
    return await outbox.delivery_health(session, now)
