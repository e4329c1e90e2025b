"""Is anything stuck on the way to Telegram? The delivery queue as /health shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.repos import outbox
from storage.repos.inbox import Inbox
from storage.repos.outbox import DeliveryHealth


@dataclass(frozen=True)
class ParkedUpdates:
    """Updates from Telegram that could not be handled and were set aside with their error."""

    count: int
    oldest_at: datetime | None


async def delivery_health(session: AsyncSession, now: datetime) -> DeliveryHealth:
    """Outbox depth, the oldest pending message, the messages given up on (how many, the
    oldest), the last unresolved error and the 429 answers of the last hour."""
    return await outbox.delivery_health(session, now)


async def parked_updates(session: AsyncSession) -> ParkedUpdates:
    """The inbox's parked updates: how many, and the oldest."""
    return ParkedUpdates(*await Inbox(session).parked())
