"""Repositories: queries over a session the caller owns. They flush, never commit."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.enums import TicketStatus
from storage.models import (
    Client,
    Counter,
    InboxUpdate,
    MessageLink,
    OutboxMessage,
    Ticket,
    TicketEvent,
    TicketMessage,
)

OPEN_STATUSES = [s.value for s in TicketStatus if s.is_open]
TICKET_COUNTER = "ticket"


def _insert_ignoring_duplicates(session: AsyncSession, model: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(model)
    return statement.on_conflict_do_nothing()


async def next_number(session: AsyncSession, name: str = TICKET_COUNTER) -> int:
    """The next value of a gapless counter; the row stays locked until the transaction ends."""
    value = await session.scalar(
        update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
        .returning(Counter.value)
    )
    if value is None:
        await session.execute(_insert_ignoring_duplicates(session, Counter).values(name=name))
        value = await session.scalar(
            update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
            .returning(Counter.value)
        )
    assert value is not None
    return value


async def read_counter(session: AsyncSession, name: str) -> int:
    """A counter's current value (0 before its first use)."""
    value = await session.scalar(select(Counter.value).where(Counter.name == name))
    return value or 0


class Clients:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_user(self, user_id: int) -> Client | None:
        # Several parts of one update ask for the same client (a router's check, then the
        # handler): the session remembers the answer (the object is in its identity map).
        known = self._known()
        if user_id not in known:
            known[user_id] = await self.session.scalar(
                select(Client).where(Client.user_id == user_id))
        return known[user_id]

    async def by_id(self, client_id: int) -> Client:
        client = await self.session.get(Client, client_id)
        assert client is not None
        return client

    async def add(self, client: Client) -> Client:
        self.session.add(client)
        await self.session.flush()
        self._known()[client.user_id] = client
        return client

    def _known(self) -> dict[int, Client | None]:
        """Clients looked up by user id in this session (its transaction)."""
        known: dict[int, Client | None] = self.session.info.setdefault("client_by_user", {})
        return known

    async def unreachable_chats(self) -> set[int]:
        rows = await self.session.scalars(
            select(Client.chat_id).where(Client.unreachable_since.is_not(None))
        )
        return set(rows)

    async def by_chat(self, chat_id: int) -> Client | None:
        return await self.session.scalar(select(Client).where(Client.chat_id == chat_id))


class Tickets:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, ticket: Ticket) -> Ticket:
        self.session.add(ticket)
        await self.session.flush()
        return ticket

    async def by_id(self, ticket_id: int) -> Ticket:
        ticket = await self.session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket

    async def by_number(self, number: int) -> Ticket | None:
        return await self.session.scalar(select(Ticket).where(Ticket.number == number))

    async def by_topic(self, topic_id: int) -> Ticket | None:
        return await self.session.scalar(select(Ticket).where(Ticket.topic_id == topic_id))

    async def by_message(self, chat_id: int, message_id: int) -> Ticket | None:
        return await self.session.scalar(
            select(Ticket)
            .join(MessageLink, MessageLink.ticket_id == Ticket.id)
            .where(MessageLink.chat_id == chat_id, MessageLink.message_id == message_id)
        )

    async def open_for_client(self, client_id: int) -> Sequence[Ticket]:
        result = await self.session.scalars(
            select(Ticket)
            .where(Ticket.client_id == client_id, Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
        )
        return result.all()

    async def for_client(self, client_id: int, limit: int) -> Sequence[Ticket]:
        result = await self.session.scalars(
            select(Ticket)
            .where(Ticket.client_id == client_id)
            .order_by(Ticket.id.desc())
            .limit(limit)
        )
        return result.all()

    async def count_for_client(self, client_id: int) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.client_id == client_id)
        )
        return count or 0

    async def open_oldest_first(self, limit: int) -> Sequence[tuple[Ticket, Client]]:
        result = await self.session.execute(
            select(Ticket, Client)
            .join(Client, Client.id == Ticket.client_id)
            .where(Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.opened_at, Ticket.id)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in result.all()]

    async def open_soonest_due_first(self, limit: int) -> Sequence[tuple[Ticket, Client]]:
        """Open incidents by their nearest SLA due time; paused and untimed ones last."""
        nearest = func.coalesce(Ticket.first_response_due, Ticket.resolution_due)
        result = await self.session.execute(
            select(Ticket, Client)
            .join(Client, Client.id == Ticket.client_id)
            .where(Ticket.status.in_(OPEN_STATUSES))
            .order_by(nearest.is_(None), nearest, Ticket.opened_at, Ticket.id)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in result.all()]

    async def opened_since_more_than(self, since: datetime, count: int) -> bool:
        """More than `count` incidents opened since `since` (counts no further than that:
        asked at every registration, it must stay cheap in the outage it detects)."""
        recent = select(Ticket.id).where(Ticket.opened_at >= since).limit(count + 1).subquery()
        found = await self.session.scalar(select(func.count()).select_from(recent))
        return (found or 0) > count

    async def without_card(
        self, opened_after: datetime, limit: int
    ) -> tuple[Sequence[Ticket], int, datetime | None]:
        """Open incidents registered during a surge whose staff card is not posted yet: the
        first `limit` by number, how many there are, and when the latest was opened."""
        waiting = (Ticket.card_outbox_id.is_(None), Ticket.opened_at > opened_after,
                   Ticket.status.in_(OPEN_STATUSES))
        count, latest = (await self.session.execute(
            select(func.count(), func.max(Ticket.opened_at)).where(*waiting))).one()
        if not count:
            return [], 0, None
        first = await self.session.scalars(
            select(Ticket).where(*waiting).order_by(Ticket.number).limit(limit))
        return first.all(), count, latest

    async def count_open(self) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.status.in_(OPEN_STATUSES))
        )
        return count or 0


class TicketLog:
    """Messages and events of tickets, and the message-id map used for reply routing."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_message(self, message: TicketMessage) -> None:
        self.session.add(message)
        await self.link(message.ticket_id, message.chat_id, message.message_id)

    async def has_message(self, chat_id: int, message_id: int) -> bool:
        found = await self.session.scalar(
            select(TicketMessage.id).where(
                TicketMessage.chat_id == chat_id, TicketMessage.message_id == message_id
            )
        )
        return found is not None

    async def client_messages_summary(self, ticket_id: int) -> tuple[int, datetime | None]:
        """How many messages the client wrote about a ticket, and when the last one came."""
        row = (await self.session.execute(
            select(func.count(), func.max(TicketMessage.created_at)).where(
                TicketMessage.ticket_id == ticket_id, TicketMessage.author == "client"
            )
        )).one()
        return row[0], row[1]

    async def first_client_message(self, ticket_id: int) -> TicketMessage | None:
        return await self.session.scalar(
            select(TicketMessage)
            .where(TicketMessage.ticket_id == ticket_id, TicketMessage.author == "client")
            .order_by(TicketMessage.id)
            .limit(1)
        )

    async def link(self, ticket_id: int, chat_id: int, message_id: int) -> None:
        await self.session.execute(
            _insert_ignoring_duplicates(self.session, MessageLink).values(
                chat_id=chat_id, message_id=message_id, ticket_id=ticket_id
            )
        )

    async def add_event(self, event: TicketEvent) -> None:
        self.session.add(event)

    async def events(self, ticket_id: int) -> Sequence[TicketEvent]:
        result = await self.session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket_id)
            .order_by(TicketEvent.at, TicketEvent.id)
        )
        return result.all()


class Inbox:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, rows: list[dict[str, Any]]) -> set[int]:
        """Insert updates not seen before; returns the update ids that are new."""
        if not rows:
            return set()
        ids = [row["update_id"] for row in rows]
        existing = set(
            await self.session.scalars(
                select(InboxUpdate.update_id).where(InboxUpdate.update_id.in_(ids))
            )
        )
        fresh = [row for row in rows if row["update_id"] not in existing]
        if fresh:
            await self.session.execute(
                _insert_ignoring_duplicates(self.session, InboxUpdate), fresh
            )
        return {row["update_id"] for row in fresh}

    async def is_handled(self, update_id: int, *, lock: bool = False) -> bool:
        query = select(InboxUpdate.handled_at).where(InboxUpdate.update_id == update_id)
        handled_at = await self.session.scalar(query.with_for_update() if lock else query)
        return handled_at is not None

    async def mark_handled(self, update_id: int, at: datetime, error: str | None = None) -> None:
        await self.session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id)
            .values(handled_at=at, error=error)
        )

    async def pending(
        self, limit: int = 10_000, *, received_before: datetime | None = None
    ) -> Sequence[InboxUpdate]:
        query = select(InboxUpdate).where(InboxUpdate.handled_at.is_(None))
        if received_before is not None:
            query = query.where(InboxUpdate.received_at < received_before)
        result = await self.session.scalars(query.order_by(InboxUpdate.update_id).limit(limit))
        return result.all()

    async def lock_chat(self, chat_id: int) -> None:
        """PostgreSQL: the chat's advisory lock, held until this transaction ends, so that
        workers handle one chat's updates one at a time (bot/intake.py)."""
        await self.session.execute(text("SELECT pg_advisory_xact_lock(:chat)"), {"chat": chat_id})

    async def earlier_pending(self, chat_id: int, update_id: int) -> int | None:
        """An update of the chat recorded before this one and not handled yet, if any."""
        return await self.session.scalar(
            select(InboxUpdate.update_id)
            .where(InboxUpdate.handled_at.is_(None), InboxUpdate.update_id < update_id,
                   InboxUpdate.chat_id == chat_id)
            .limit(1)
        )

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


class Outbox:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: OutboxMessage) -> OutboxMessage:
        self.session.add(row)
        await self.session.flush()
        return row

    async def add_many(self, rows: list[dict[str, Any]]) -> None:
        await self.session.execute(insert(OutboxMessage), rows)

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
            .where(OutboxMessage.status == "pending")
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
    failed: int  # rows given up on (Telegram refused them for good)
    # The newest unresolved error: of a row still pending, or of a failed one.
    last_error: str | None
    last_error_chat: int | None
    rate_limited_last_hour: int  # 429 answers


async def delivery_health(session: AsyncSession, now: datetime) -> DeliveryHealth:
    depth, oldest = (await session.execute(
        select(func.count(), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.status == "pending")
    )).one()
    failed = await session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "failed")
    )
    last = (await session.execute(
        select(OutboxMessage.last_error, OutboxMessage.chat_id)
        .where(OutboxMessage.status.in_(["pending", "failed"]),
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
        last_error=last[0] if last else None,
        last_error_chat=last[1] if last else None,
        rate_limited_last_hour=int(rate_limited or 0),
    )
