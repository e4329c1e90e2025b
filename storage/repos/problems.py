"""Problems (one cause behind many incidents) and the incidents linked to them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.enums import OPEN_STATUSES, EventKind
from storage.models import Client, OutboxMessage, Problem, Ticket, TicketEvent
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

    async def closing(self, limit: int) -> list[tuple[Ticket, Problem]]:
        """The next incidents still to close of closed problems (at most `limit`, by
        problem and number): open, linked to a problem closed, and not reopened since it
        was (a client's "not fixed" after the problem's closing is theirs to keep open).

        On PostgreSQL the incidents are locked and those another worker's batch holds are
        skipped (FOR UPDATE SKIP LOCKED): two batches never close one incident; SQLite
        has one writer at a time."""
        reopened_since = select(TicketEvent.id).where(
            TicketEvent.ticket_id == Ticket.id, TicketEvent.kind == EventKind.REOPENED,
            TicketEvent.at >= Problem.closed_at).exists()
        query = (
            select(Ticket, Problem)
            .join(Problem, Problem.number == Ticket.problem_number)
            .where(Problem.closed_at.is_not(None), Ticket.status.in_(OPEN_STATUSES),
                   ~reopened_since)
            .order_by(Problem.id, Ticket.number).limit(limit))
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Ticket)
        return [(ticket, problem) for ticket, problem in await self.session.execute(query)]

    async def count_linked(self, number: int) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.problem_number == number))
        return count or 0

    async def tickets_between(self, first: int, last: int, limit: int) -> Sequence[Ticket]:
        """Open incidents numbered first..last, by number (the first `limit`)."""
        return (await self.session.scalars(
            select(Ticket).where(Ticket.number.between(first, last),
                                 Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.number).limit(limit))).all()

    async def candidates(self, since: datetime, limit: int,
                         numbers: Sequence[int] | None = None) -> Sequence[Ticket]:
        """Open incidents opened since then that are no problem, linked to none and in no
        suggestion yet (of `numbers` only, if given), by number."""
        query = select(Ticket).where(
            Ticket.opened_at >= since, Ticket.status.in_(OPEN_STATUSES),
            Ticket.problem_number.is_(None),
            ~select(Problem.id).where(Problem.ticket_id == Ticket.id).exists(),
            ~select(TicketEvent.id).where(TicketEvent.ticket_id == Ticket.id,
                                          TicketEvent.kind == EventKind.SUGGESTED).exists())
        if numbers is not None:
            query = query.where(Ticket.number.in_(list(numbers)))
        return (await self.session.scalars(query.order_by(Ticket.number).limit(limit))).all()

    async def suggested_with(self, number: int) -> list[int]:
        """The numbers of the open incidents suggested with incident `number` first."""
        rows = await self.session.scalars(
            select(Ticket.number).join(TicketEvent, TicketEvent.ticket_id == Ticket.id)
            .where(TicketEvent.kind == EventKind.SUGGESTED,
                   TicketEvent.new_value == str(number), Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.number))
        return list(dict.fromkeys(rows.all()))
