"""Several workers on PostgreSQL: heartbeats, updates taken over from dead workers, the
leader's recent sends to groups (bot/telegram/lease.py, bot/telegram/delivery.py).

Every time here is the database server's (`clock_timestamp()`), so workers on machines
whose clocks differ still agree on who is silent and on what was sent a minute ago.
PostgreSQL only: SQLite is one process, which needs none of it.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, extract, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import GroupSend, InboxUpdate, Worker

FORGET_WORKERS = timedelta(hours=1)  # rows of workers silent that long are deleted


class Workers:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def beat(self, worker_id: str, pid: int) -> None:
        now = func.clock_timestamp()
        await self.session.execute(
            insert(Worker).values(id=worker_id, pid=pid, host=socket.gethostname()[:255],
                                  beat_at=now)
            .on_conflict_do_update(index_elements=[Worker.id], set_={"beat_at": now}))

    async def forget_silent(self) -> None:
        await self.session.execute(
            delete(Worker).where(Worker.beat_at < func.clock_timestamp() - FORGET_WORKERS))

    async def leave(self, worker_id: str) -> None:
        await self.session.execute(delete(Worker).where(Worker.id == worker_id))

    async def take_over(self, worker_id: str, silent_for: timedelta,
                        limit: int = 10_000) -> list[dict[str, Any]]:
        """Pending updates of workers that have not beaten for `silent_for` (or of none)
        become `worker_id`'s; returns their payloads, oldest first. Rows being handled
        right now (locked) are skipped: a live transaction has them."""
        alive = select(Worker.id).where(Worker.beat_at > func.clock_timestamp() - silent_for)
        orphans = (
            select(InboxUpdate.update_id)
            .where(InboxUpdate.handled_at.is_(None),
                   or_(InboxUpdate.claimed_by.is_(None),
                       and_(InboxUpdate.claimed_by != worker_id,
                            InboxUpdate.claimed_by.not_in(alive))))
            .order_by(InboxUpdate.update_id).limit(limit)
            .with_for_update(skip_locked=True))
        result = await self.session.execute(
            update(InboxUpdate).where(InboxUpdate.update_id.in_(orphans.scalar_subquery()))
            .values(claimed_by=worker_id)
            .returning(InboxUpdate.update_id, InboxUpdate.payload))
        return [dict(payload) for _, payload in sorted(result.all())]


class GroupSends:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def note(self, chat_id: int, keep: timedelta) -> None:
        """A send to the group leaves now; rows older than `keep` go."""
        now = func.clock_timestamp()
        await self.session.execute(insert(GroupSend).values(chat_id=chat_id, sent_at=now))
        await self.session.execute(delete(GroupSend).where(GroupSend.sent_at < now - keep))

    async def recent(self, within: timedelta) -> list[tuple[int, float]]:
        """(group, seconds ago) of the sends within `within` of now."""
        now = func.clock_timestamp()
        result = await self.session.execute(
            select(GroupSend.chat_id, extract("epoch", now - GroupSend.sent_at))
            .where(GroupSend.sent_at > now - within))
        return [(int(chat), float(ago)) for chat, ago in result.all()]
