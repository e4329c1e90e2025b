"""What a contract costs: the time logged on incidents and the reopenings, per company
and per client, over a period [start, end) (bot.services.reports.stats)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.domain.enums import EventKind
from storage.models import Client, Ticket, TicketEvent, TimeEntry


class Reopened(NamedTuple):
    client: Client
    reopens: int  # reopenings in the period
    incidents: int  # of how many incidents


class ReopenedIncident(NamedTuple):
    ticket: Ticket
    client: Client
    reopens: int


class Contracts:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def minutes_by_company(
        self, start: datetime, end: datetime, company_id: int | None = None
    ) -> dict[int, int]:
        """Minutes logged in the period on the incidents of each company's people."""
        query = (select(Client.company_id, func.sum(TimeEntry.minutes))
                 .join(Ticket, Ticket.id == TimeEntry.ticket_id)
                 .join(Client, Client.id == Ticket.client_id)
                 .where(TimeEntry.at >= start, TimeEntry.at < end,
                        Client.company_id.is_not(None))
                 .group_by(Client.company_id))
        if company_id is not None:
            query = query.where(Client.company_id == company_id)
        rows = await self.session.execute(query)
        return {company: int(minutes or 0) for company, minutes in rows if company is not None}

    def _reopen_events(self, start: datetime, end: datetime) -> ColumnElement[bool]:
        return and_(TicketEvent.kind == EventKind.REOPENED, TicketEvent.at >= start,
                    TicketEvent.at < end)

    async def reopens_by_company(self, start: datetime, end: datetime) -> dict[int, int]:
        rows = await self.session.execute(
            select(Client.company_id, func.count())
            .select_from(TicketEvent)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .join(Client, Client.id == Ticket.client_id)
            .where(self._reopen_events(start, end), Client.company_id.is_not(None))
            .group_by(Client.company_id))
        return {company: count for company, count in rows if company is not None}

    async def reopens_by_client(self, start: datetime, end: datetime, limit: int
                                ) -> list[Reopened]:
        """The clients whose incidents were reopened most in the period."""
        count = func.count().label("reopens")
        rows = await self.session.execute(
            select(Client, count, func.count(func.distinct(Ticket.id)))
            .select_from(TicketEvent)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .join(Client, Client.id == Ticket.client_id)
            .where(self._reopen_events(start, end))
            .group_by(Client.id).order_by(count.desc(), Client.id).limit(limit))
        return [Reopened(*row) for row in rows]

    async def most_reopened(self, start: datetime, end: datetime, limit: int
                            ) -> list[ReopenedIncident]:
        """The incidents reopened most in the period (the most iterations)."""
        count = func.count().label("reopens")
        rows = await self.session.execute(
            select(Ticket, Client, count)
            .select_from(TicketEvent)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .join(Client, Client.id == Ticket.client_id)
            .where(self._reopen_events(start, end))
            .group_by(Ticket.id, Client.id).order_by(count.desc(), Ticket.number).limit(limit))
        return [ReopenedIncident(*row) for row in rows]
