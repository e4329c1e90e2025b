"""The outbox: Bot API calls decided in some transaction, delivered later
(bot.telegram.delivery), and the delivery's health for /health."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.enums import OutboxStatus
from bot.domain.redact import redact, redact_optional
from storage.models import Client, Counter, OutboxMessage, QualityDelivery, Rating, Ticket
from storage.repos.counters import next_number


class Outbox:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: OutboxMessage) -> OutboxMessage:
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, row_id: int) -> OutboxMessage | None:
        return await self.session.get(OutboxMessage, row_id)

    async def due(
        self,
        now: datetime,
        limit: int,
        *,
        exclude: Collection[int] = (),
        skip_unreachable: bool = False,
    ) -> Sequence[OutboxMessage]:
        """The next row of each chat, by priority: a private chat's oldest pending row
        (a client reads everything in order); a group's oldest row of its most urgent
        priority (an answer to a staff command does not wait behind hours of cards
        during a mass outage; rows of one priority keep their order).

        `exclude`: chats the caller cannot send to now (in flight, rate-limited);
        `skip_unreachable`: leave out chats of clients who blocked the bot. Both are
        filtered here, so a long queue of waiting chats never fills up `limit`.
        """
        lane = case((OutboxMessage.chat_id < 0, OutboxMessage.priority), else_=0)
        heads = (
            select(func.min(OutboxMessage.id))
            .where(OutboxMessage.status == OutboxStatus.PENDING)
            .group_by(OutboxMessage.chat_id, lane)
        )
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.id.in_(heads))
            .where((OutboxMessage.not_before.is_(None)) | (OutboxMessage.not_before <= now))
        )
        if exclude:
            query = query.where(OutboxMessage.chat_id.not_in(list(exclude)))
        if skip_unreachable:
            query = query.where(OutboxMessage.chat_id.not_in(
                select(Client.chat_id).where(Client.unreachable_since.is_not(None))
            ))
        result = await self.session.scalars(
            query.order_by(OutboxMessage.priority, OutboxMessage.id).limit(limit)
        )
        rows, seen = [], set()
        for row in result:
            if row.chat_id not in seen:  # a group's later lanes wait for the first
                seen.add(row.chat_id)
                rows.append(row)
        return rows

    async def queued_behind(
        self, head: int, chat_id: int, priority: int, limit: int
    ) -> Sequence[OutboxMessage]:
        """The pending rows that follow row `head` in its chat's lane (the same priority),
        in order: what a coalesced message may carry along with it (up to the first one
        that cannot go with it, the caller decides)."""
        return (await self.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.chat_id == chat_id,
                   OutboxMessage.status == OutboxStatus.PENDING,
                   OutboxMessage.priority == priority,
                   OutboxMessage.id > head)
            .order_by(OutboxMessage.id).limit(limit))).all()

    # -- what became of a send (the delivery worker) --------------------------------------

    async def finish(
        self, row_id: int, status: OutboxStatus, *, attempts: int, error: str | None,
        sent_at: datetime | None = None, message_id: int | None = None,
    ) -> None:
        """Sent (when and as which Telegram message) or failed for good."""
        values: dict[str, Any] = {"status": status, "attempts": attempts}
        if status == OutboxStatus.SENT:
            values.update(sent_at=sent_at, telegram_message_id=message_id)
        if error is not None:
            values["last_error"] = redact(error)
        await self._set(row_id, **values)

    async def retry_at(self, row_id: int, at: datetime, *, attempts: int, error: str) -> None:
        await self._set(row_id, attempts=attempts, not_before=at, last_error=redact(error))

    async def hold(self, row_id: int, *, attempts: int, error: str) -> None:
        """Left pending while its chat is held (the client blocked the bot)."""
        await self._set(row_id, attempts=attempts, last_error=redact(error))

    async def rewrite(self, row_id: int, payload: dict[str, Any], *, attempts: int) -> None:
        """The call changed so that Telegram takes it; sent again as the chat's head."""
        await self._set(row_id, payload=payload, attempts=attempts)

    async def next_part(self, row_id: int, payload: dict[str, Any]) -> None:
        """A part of a long text went out: the row now carries the rest, due at once."""
        await self._set(row_id, payload=payload, not_before=None)

    async def move_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        """Every pending row of a chat that got a new id (a group upgraded to a
        supergroup) goes to the new id; returns how many."""
        rows = list(await self.session.scalars(
            select(OutboxMessage).where(OutboxMessage.chat_id == old_chat_id,
                                        OutboxMessage.status == OutboxStatus.PENDING)))
        for row in rows:
            await self._set(row.id, chat_id=new_chat_id,
                            payload={**row.payload, "chat_id": new_chat_id})
        return len(rows)

    async def prune(self, *, payloads_before: datetime, rows_before: datetime) -> int:
        """Sent messages: payloads emptied from `payloads_before` back, rows deleted from
        `rows_before` back (pending and failed ones are kept); returns the rows changed."""
        sent = OutboxMessage.status == OutboxStatus.SENT
        emptied = await self.session.execute(
            update(OutboxMessage)
            .where(sent, OutboxMessage.sent_at < payloads_before)
            .values(payload={}))
        # Rows others point at stay (payload emptied): an incident's card is replied to and
        # edited through its row ({"$message_of": id}); ratings and the quality check read
        # what became of theirs.
        referenced = [select(column).where(column.is_not(None)) for column in (
            Ticket.card_outbox_id, Rating.request_outbox_id, Rating.reminder_outbox_id,
            QualityDelivery.outbox_id)]
        deleted = await self.session.execute(
            delete(OutboxMessage).where(
                sent, OutboxMessage.sent_at < rows_before,
                *(OutboxMessage.id.not_in(query) for query in referenced)))
        return int(getattr(emptied, "rowcount", 0) or 0) + int(
            getattr(deleted, "rowcount", 0) or 0)

    async def _set(self, row_id: int, **values: Any) -> None:
        await self.session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values))


# -- delivery health (/health) ------------------------------------------------------

# 429 answers are counted per minute in `counters` ("429@202611231405"), so "in the
# last hour" is exact to the minute without a table of its own; buckets older than a
# day are pruned when a new one starts.
RATE_LIMITED_PREFIX = "429@"


def _minute_bucket(at: datetime) -> str:
    return f"{RATE_LIMITED_PREFIX}{at:%Y%m%d%H%M}"


async def record_rate_limited(session: AsyncSession, at: datetime) -> None:
    """Count one 429 answer from Telegram at `at`."""
    if await next_number(session, _minute_bucket(at)) == 1:
        await session.execute(
            delete(Counter).where(
                Counter.name.startswith(RATE_LIMITED_PREFIX),
                Counter.name < _minute_bucket(at - timedelta(days=1)),
            )
        )


@dataclass(frozen=True)
class DeliveryHealth:
    depth: int  # rows waiting to be sent
    oldest_pending_at: datetime | None
    failed: int  # rows given up on (Telegram refused them for good): parked
    oldest_failed_at: datetime | None
    # The newest unresolved error: of a row still pending, or of a failed one.
    last_error: str | None
    last_error_chat: int | None
    rate_limited_last_hour: int  # 429 answers


async def delivery_health(session: AsyncSession, now: datetime) -> DeliveryHealth:
    depth, oldest = (await session.execute(
        select(func.count(), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.status == OutboxStatus.PENDING)
    )).one()
    failed, oldest_failed = (await session.execute(
        select(func.count(), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.status == OutboxStatus.FAILED)
    )).one()
    last = (await session.execute(
        select(OutboxMessage.last_error, OutboxMessage.chat_id)
        .where(OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.FAILED]),
               OutboxMessage.last_error.is_not(None))
        .order_by(OutboxMessage.id.desc()).limit(1)
    )).first()
    rate_limited = await session.scalar(
        select(func.coalesce(func.sum(Counter.value), 0)).where(
            Counter.name.startswith(RATE_LIMITED_PREFIX),
            Counter.name > _minute_bucket(now - timedelta(hours=1)),
            Counter.name <= _minute_bucket(now),
        )
    )
    return DeliveryHealth(
        depth=depth or 0,
        oldest_pending_at=oldest,
        failed=failed or 0,
        oldest_failed_at=oldest_failed,
        last_error=redact_optional(last[0] if last else None),  # rows kept from before redaction
        last_error_chat=last[1] if last else None,
        rate_limited_last_hour=int(rate_limited or 0),
    )
