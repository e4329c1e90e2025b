"""Problems (one cause behind many incidents) and the incidents linked to them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.enums import OPEN_STATUSES
from storage.models import Client, OutboxMessage, Problem, Ticket
from storage.repos.tickets import TicketWithClient

OPEN_TITLES_LIMIT = 50  # open problems a new report is compared with


class Problems:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, problem: Problem) -> Problem:
        self.session.add(problem)
        await self.session.flush()
        return problem

    async def by_number(self, number: int) -> Problem | None:
        return await self.session.scalar(select(Problem).where(Problem.number == number))

    async def by_ticket(self, ticket_id: int) -> Problem | None:
        return await self.session.scalar(select(Problem).where(Problem.ticket_id == ticket_id))

    async def by_fingerprint(self, fingerprint: str) -> Problem | None:
        return await self.session.scalar(
            select(Problem).where(Problem.fingerprint == fingerprint))

    async def by_card_message(self, chat_id: int, message_id: int) -> Problem | None:
        """The problem whose staff-group message (opened by monitoring) this is."""
        return await self.session.scalar(
            select(Problem).join(OutboxMessage, OutboxMessage.id == Problem.card_outbox_id)
            .where(OutboxMessage.chat_id == chat_id,
                   OutboxMessage.telegram_message_id == message_id))

    async def open(self, limit: int = OPEN_TITLES_LIMIT) -> Sequence[Problem]:
        """Open problems, newest first."""
        return (await self.session.scalars(
            select(Problem).where(Problem.closed_at.is_(None))
            .order_by(Problem.id.desc()).limit(limit))).all()

    async def latest_open(self) -> Problem | None:
        return await self.session.scalar(
            select(Problem).where(Problem.closed_at.is_(None)).order_by(Problem.id.desc())
            .limit(1))

    async def linked(self, number: int, *, open_only: bool = True) -> list[TicketWithClient]:
        """The incidents linked to problem `number`, with their clients, by number."""
        query = (select(Ticket, Client).join(Client, Client.id == Ticket.client_id)
                 .where(Ticket.problem_number == number))
        if open_only:
            query = query.where(Ticket.status.in_(OPEN_STATUSES))
        result = await self.session.execute(query.order_by(Ticket.number))
        return [TicketWithClient(ticket, client) for ticket, client in result]

    async def count_linked(self, number: int) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.problem_number == number))
        return count or 0

    async def tickets_between(self, first: int, last: int) -> Sequence[Ticket]:
        """Open incidents numbered first..last, by number."""
        return (await self.session.scalars(
            select(Ticket).where(Ticket.number.between(first, last),
                                 Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.number))).all()
