"""Incidents, what was said about them, and the map of Telegram messages to incidents."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.enums import OPEN_STATUSES, MessageAuthor, Severity, TicketStatus
from storage.models import Client, MessageLink, Ticket, TicketMessage, TimeEntry
from storage.repos._sql import insert_ignoring_duplicates
from storage.repos.counters import next_number

TICKET_COUNTER = "ticket"

# (moment, told) of every SLA notice: the moment has come and nobody was told yet.
_SLA_NOTICES = (
    (Ticket.first_response_warn_due, Ticket.first_response_warned_at),
    (Ticket.first_response_due, Ticket.first_response_breached_at),
    (Ticket.resolution_warn_due, Ticket.resolution_warned_at),
    (Ticket.resolution_due, Ticket.resolution_breached_at),
)


class TicketWithClient(NamedTuple):
    ticket: Ticket
    client: Client


class Tickets:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def next_number(self) -> int:
        """The number of a new incident (gapless: taken in the transaction that uses it)."""
        return await next_number(self.session, TICKET_COUNTER)

    async def add(self, ticket: Ticket) -> Ticket:
        self.session.add(ticket)
        await self.session.flush()
        return ticket

    async def get(self, ticket_id: int) -> Ticket | None:
        return await self.session.get(Ticket, ticket_id)

    async def by_id(self, ticket_id: int) -> Ticket:
        ticket = await self.get(ticket_id)
        assert ticket is not None
        return ticket

    async def by_number(self, number: int) -> Ticket | None:
        return await self.session.scalar(select(Ticket).where(Ticket.number == number))

    async def by_topic(self, topic_id: int) -> Ticket | None:
        return await self.session.scalar(select(Ticket).where(Ticket.topic_id == topic_id))

    async def by_message(self, chat_id: int, message_id: int) -> Ticket | None:
        """The incident a message is about; of a coalesced message (several incidents),
        the latest."""
        return await self.session.scalar(self._by_message(chat_id, message_id).limit(1))

    async def all_by_message(self, chat_id: int, message_id: int) -> Sequence[Ticket]:
        """Every incident a message is about (several: a client group's coalesced
        message), the latest first."""
        return (await self.session.scalars(self._by_message(chat_id, message_id))).all()

    @staticmethod
    def _by_message(chat_id: int, message_id: int) -> Select[Ticket]:
        return (
            select(Ticket)
            .join(MessageLink, MessageLink.ticket_id == Ticket.id)
            .where(MessageLink.chat_id == chat_id, MessageLink.message_id == message_id)
            .order_by(Ticket.id.desc())
        )

    async def forget_topic(self, ticket_id: int) -> None:
        """The incident's forum topic was deleted: its lines go to the group itself."""
        ticket = await self.get(ticket_id)
        if ticket is not None:
            ticket.topic_id = None
            await self.session.flush()

    async def add_held(self, ticket_id: int) -> None:
        """One more message held for the combined staff line (in SQL: a concurrent flush
        in another worker subtracts what it announced, and neither write is lost)."""
        await self.session.execute(
            update(Ticket).where(Ticket.id == ticket_id)
            .values(held_messages=Ticket.held_messages + 1))

    async def with_held(self) -> Sequence[Ticket]:
        """Incidents with held messages not announced yet."""
        return (await self.session.scalars(
            select(Ticket).where(Ticket.held_messages > 0).order_by(Ticket.id))).all()

    async def announced_held(self, ticket_id: int, count: int) -> None:
        await self.session.execute(
            update(Ticket).where(Ticket.id == ticket_id)
            .values(held_messages=Ticket.held_messages - count))

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

    async def of_company(self, company_id: int, limit: int) -> tuple[list[TicketWithClient], int]:
        """A company's incidents, newest first, and how many it has in all."""
        rows = await self._with_clients(
            select(Ticket, Client).join(Client, Client.id == Ticket.client_id)
            .where(Client.company_id == company_id).order_by(Ticket.id.desc()).limit(limit))
        total = await self.session.scalar(
            select(func.count()).select_from(Ticket).join(Client, Client.id == Ticket.client_id)
            .where(Client.company_id == company_id))
        return rows, total or 0

    async def add_time(self, ticket: Ticket, entry: TimeEntry) -> None:
        """Time spent on the incident: the entry, and the total on the ticket."""
        self.session.add(entry)
        ticket.minutes_spent = (ticket.minutes_spent or 0) + entry.minutes
        await self.session.flush()

    async def open_soonest_due_first(self, limit: int) -> list[TicketWithClient]:
        """Open incidents by their nearest SLA due time; paused and untimed ones last."""
        nearest = func.coalesce(Ticket.first_response_due, Ticket.resolution_due)
        return await self._with_clients(
            select(Ticket, Client)
            .join(Client, Client.id == Ticket.client_id)
            .where(Ticket.status.in_(OPEN_STATUSES))
            .order_by(nearest.is_(None), nearest, Ticket.opened_at, Ticket.id)
            .limit(limit)
        )

    async def open_of_company(self, company_id: int, limit: int) -> list[TicketWithClient]:
        """A company's open incidents, oldest first."""
        return await self._with_clients(
            select(Ticket, Client).join(Client, Client.id == Ticket.client_id)
            .where(Client.company_id == company_id, Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.opened_at, Ticket.id).limit(limit)
        )

    async def quiet(
        self, quiet_since: Mapping[Severity, datetime], limit: int
    ) -> list[TicketWithClient]:
        """Open incidents being worked on (not waiting for the client) of these severities
        whose client has heard nothing since the severity's moment."""
        running = [s for s in OPEN_STATUSES if s != TicketStatus.WAITING]
        quiet = or_(*(and_(Ticket.severity == severity, Ticket.client_updated_at <= since)
                      for severity, since in quiet_since.items()))
        return await self._with_clients(
            select(Ticket, Client).join(Client, Client.id == Ticket.client_id)
            .where(Ticket.status.in_(running), Ticket.client_updated_at.is_not(None), quiet)
            .order_by(Ticket.id).limit(limit)
        )

    async def resolved_before(self, before: datetime, limit: int) -> Sequence[Ticket]:
        """Resolved (not closed) incidents resolved at or before then, oldest first."""
        result = await self.session.scalars(
            select(Ticket).where(Ticket.status == TicketStatus.RESOLVED,
                                 Ticket.resolved_at <= before)
            .order_by(Ticket.resolved_at, Ticket.id).limit(limit))
        return result.all()

    async def _with_clients(self, query: Select[Ticket, Client]) -> list[TicketWithClient]:
        result = await self.session.execute(query)
        return [TicketWithClient(ticket, client) for ticket, client in result]

    async def sla_notices_due(self, now: datetime, limit: int) -> Sequence[Ticket]:
        """Open, running incidents with an SLA warning or breach due by `now` and not told."""
        due = or_(*(and_(moment <= now, told.is_(None)) for moment, told in _SLA_NOTICES))
        result = await self.session.scalars(
            select(Ticket)
            .where(Ticket.status.in_(OPEN_STATUSES), Ticket.paused_since.is_(None), due)
            .order_by(Ticket.id).limit(limit)
        )
        return result.all()

    async def clients_opened_since_more_than(self, since: datetime, count: int) -> bool:
        """More than `count` distinct clients opened incidents since `since` (one client's
        fifty /new are no outage; counts no further than that: asked at every
        registration, it must stay cheap in the outage it detects). `client_id + 0`: for a
        DISTINCT of the bare column SQLite walks the whole client_id index (a lookup in the
        table per incident ever: 30 ms to 2 s with 100,000 of them, at every registration);
        so it reads the opened_at range, from the covering index, instead."""
        recent = (select((Ticket.client_id + 0).label("client_id"))
                  .where(Ticket.opened_at >= since).distinct().limit(count + 1).subquery())
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


def _from_client() -> Select[TicketMessage]:
    """Clients' messages, in the order they came."""
    return (select(TicketMessage).where(TicketMessage.author == MessageAuthor.CLIENT)
            .order_by(TicketMessage.id))


class TicketMessages:
    """Messages about incidents, and the message-id map used for reply routing."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, message: TicketMessage, *, link: bool = True) -> None:
        """Keep a message; `link`: replies to it are about its incident (an edit is not
        linked again: the message it edits is)."""
        self.session.add(message)
        if link:
            await self.link(message.ticket_id, message.chat_id, message.message_id)

    async def link(self, ticket_id: int, chat_id: int, message_id: int) -> None:
        """Replies to the message are about this incident, unless it belongs to one
        already: the first link stands (a problem's update, recorded with every linked
        incident, stays the problem's own incident's message)."""
        linked = await self.session.scalar(select(MessageLink.ticket_id).where(
            MessageLink.chat_id == chat_id, MessageLink.message_id == message_id).limit(1))
        if linked is None:
            await self.link_all([ticket_id], chat_id, message_id)

    async def link_all(self, ticket_ids: Collection[int], chat_id: int, message_id: int) -> None:
        """The message belongs to each of these incidents (a client group's coalesced
        message: bot/telegram/delivery.py)."""
        for ticket_id in dict.fromkeys(ticket_ids):
            await self.session.execute(
                insert_ignoring_duplicates(self.session, MessageLink).values(
                    chat_id=chat_id, message_id=message_id, ticket_id=ticket_id))

    async def has(self, chat_id: int, message_id: int) -> bool:
        found = await self.session.scalar(
            select(TicketMessage.id).where(
                TicketMessage.chat_id == chat_id, TicketMessage.message_id == message_id
            )
        )
        return found is not None

    async def client_summary(self, ticket_id: int) -> tuple[int, datetime | None]:
        """How many messages the client wrote about a ticket, and when the last one came."""
        count, last = (await self.session.execute(
            select(func.count(), func.max(TicketMessage.created_at)).where(
                TicketMessage.ticket_id == ticket_id,
                TicketMessage.author == MessageAuthor.CLIENT,
            )
        )).one()
        return count, last

    async def first_from_client(
        self, ticket_id: int, *, with_text: bool = False
    ) -> TicketMessage | None:
        """The client's first message about an incident (`with_text`: the first that says
        something: a photo without a caption does not)."""
        query = _from_client().where(TicketMessage.ticket_id == ticket_id)
        if with_text:
            query = query.where(TicketMessage.text != "")
        return await self.session.scalar(query.limit(1))

    async def first_texts_from_client(self, ticket_ids: Collection[int]) -> dict[int, str]:
        """The text of the client's first message about each of these incidents."""
        texts = await self.session.execute(
            _from_client().where(TicketMessage.ticket_id.in_(list(ticket_ids)))
            .with_only_columns(TicketMessage.ticket_id, TicketMessage.text))
        first: dict[int, str] = {}
        for ticket_id, text in texts:
            first.setdefault(ticket_id, text or "")
        return first

    async def last_staff_text(self, ticket_id: int) -> str | None:
        """The last thing staff told the client about an incident."""
        return await self.session.scalar(
            select(TicketMessage.text)
            .where(TicketMessage.ticket_id == ticket_id,
                   TicketMessage.author == MessageAuthor.STAFF, TicketMessage.text != "")
            .order_by(TicketMessage.id.desc()).limit(1)
        )
