"""The inbox: updates recorded before they are handled (bot.telegram.intake)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.redact import redact_optional
from storage.models import InboxUpdate
from storage.repos._sql import insert_ignoring_duplicates


class Inbox:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, rows: list[dict[str, Any]]) -> set[int]:
        """Insert updates not seen before; returns the update ids that are new: those the
        INSERT itself wrote (ON CONFLICT DO NOTHING ... RETURNING: one statement, and a row
        another worker wrote meanwhile is not new here either)."""
        if not rows:
            return set()
        inserted = await self.session.scalars(
            insert_ignoring_duplicates(self.session, InboxUpdate)
            .returning(InboxUpdate.update_id), rows
        )
        return set(inserted)

    async def is_handled(self, update_id: int, *, lock: bool = False) -> bool:
        query = select(InboxUpdate.handled_at).where(InboxUpdate.update_id == update_id)
        handled_at = await self.session.scalar(query.with_for_update() if lock else query)
        return handled_at is not None

    async def claim(self, update_id: int, at: datetime) -> bool:
        """Mark the update handled at `at` in this transaction, whose commit makes it so
        (a rollback undoes it with the handling); False when it already was (an earlier run,
        another worker). One statement for what `is_handled` and `mark_handled` did in two;
        it takes the row's lock as `is_handled(lock=True)` does. An update the inbox does not
        hold (not recorded first) is handled, as before, and stays unmarked."""
        claimed = await self.session.scalar(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id, InboxUpdate.handled_at.is_(None))
            .values(handled_at=at).returning(InboxUpdate.update_id))
        if claimed is not None:
            return True
        return not await self.is_handled(update_id)  # rare: handled, or not in the inbox

    async def mark_handled(self, update_id: int, at: datetime, error: str | None = None) -> None:
        await self.session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id)
            .values(handled_at=at, error=redact_optional(error))
        )

    async def pending(self, limit: int = 10_000) -> Sequence[InboxUpdate]:
        query = select(InboxUpdate).where(InboxUpdate.handled_at.is_(None))
        result = await self.session.scalars(query.order_by(InboxUpdate.update_id).limit(limit))
        return result.all()

    async def lock_chat(self, chat_id: int) -> None:
        """PostgreSQL: the chat's advisory lock, held until this transaction ends, so that
        workers handle one chat's updates one at a time (bot.telegram.intake)."""
        await self.session.execute(text("SELECT pg_advisory_xact_lock(:chat)"), {"chat": chat_id})

    async def earlier_pending(self, chat_id: int, update_id: int) -> int | None:
        """An update of the chat recorded before this one and not handled yet, if any."""
        return await self.session.scalar(
            select(InboxUpdate.update_id)
            .where(InboxUpdate.handled_at.is_(None), InboxUpdate.update_id < update_id,
                   InboxUpdate.chat_id == chat_id)
            .limit(1)
        )

    async def parked(self) -> tuple[int, datetime | None]:
        """Updates that could not be handled (kept with their error): how many, and when
        the oldest of them came in."""
        count, oldest = (await self.session.execute(
            select(func.count(), func.min(InboxUpdate.received_at))
            .where(InboxUpdate.handled_at.is_not(None), InboxUpdate.error.is_not(None))
        )).one()
        return int(count or 0), oldest

    async def max_update_id(self) -> int | None:
        return await self.session.scalar(select(func.max(InboxUpdate.update_id)))

    async def find_message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """The original payload of a message the bot received (to act on it later)."""
        payloads = await self.session.scalars(
            select(InboxUpdate.payload).where(InboxUpdate.chat_id == chat_id)
            .order_by(InboxUpdate.update_id.desc()).limit(200)
        )
        for payload in payloads:
            message = payload.get("message")
            if message and message.get("message_id") == message_id:
                return dict(message)
        return None

    async def prune(self, *, payloads_before: datetime, rows_before: datetime) -> int:
        """Handled updates: payloads emptied from `payloads_before` back, rows deleted from
        `rows_before` back (pending ones are kept whatever their age); returns the rows
        changed. Idempotent."""
        handled = InboxUpdate.handled_at.is_not(None)
        emptied = await self.session.execute(
            update(InboxUpdate)
            .where(handled, InboxUpdate.handled_at < payloads_before)
            .values(payload={}))
        deleted = await self.session.execute(
            delete(InboxUpdate).where(handled, InboxUpdate.handled_at < rows_before))
        return _count(emptied) + _count(deleted)


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
