"""Ratings of closed incidents, who they are attributed to, and the scores reports count."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, NamedTuple, TypeVar

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.domain.enums import RatingState, TicketStatus
from storage.models import Client, Rating, RatingAgent, Ticket


class RatedTicket(NamedTuple):
    rating: Rating
    ticket: Ticket
    client: Client


K = TypeVar("K")


class ScoreCount(NamedTuple, Generic[K]):
    """How many counted ratings of `key` have this score."""

    key: K
    score: int
    ratings: int


class Ratings:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, rating: Rating) -> Rating:
        self.session.add(rating)
        await self.session.flush()
        return rating

    async def by_id(self, rating_id: int) -> Rating | None:
        return await self.session.get(Rating, rating_id)

    async def bad_followups(self, start: datetime, end: datetime) -> tuple[int, int]:
        """Counted bad ratings (Плохо/Ужас) first given in [start, end): (all, taken)."""
        row = (await self.session.execute(
            select(func.count(), func.count(Rating.followup_by))
            .where(Rating.counted.is_(True), Rating.score.in_((1, 2)),
                   Rating.rated_at >= start, Rating.rated_at < end)
        )).one()
        return int(row[0]), int(row[1])

    async def of_ticket(self, ticket_id: int) -> Rating | None:
        return await self.session.scalar(select(Rating).where(Rating.ticket_id == ticket_id))

    async def set_agents(self, rating_id: int, agents: dict[int, str]) -> None:
        """Attribute the rating to these staff members (id: name) and no one else."""
        await self.session.execute(delete(RatingAgent).where(RatingAgent.rating_id == rating_id))
        self.session.add_all(RatingAgent(rating_id=rating_id, agent_id=agent_id, agent_name=name)
                             for agent_id, name in agents.items())

    async def agent_names(self, rating_id: int) -> list[str]:
        return list(await self.session.scalars(
            select(RatingAgent.agent_name).where(RatingAgent.rating_id == rating_id)))

    async def open_question(self, client_id: int, asked_since: datetime) -> Rating | None:
        """The client's follow-up question still open, the latest asked since then."""
        return await self.session.scalar(
            select(Rating).where(Rating.client_id == client_id, Rating.question_open.is_(True),
                                 Rating.question_at >= asked_since)
            .order_by(Rating.question_at.desc()).limit(1)
        )

    async def requests_due(self, now: datetime, limit: int) -> list[RatedTicket]:
        """Delayed requests whose time has come, the longest due first."""
        return await self._rated(
            _with_ticket().where(Rating.state == RatingState.SCHEDULED, Rating.send_at <= now)
            .order_by(Rating.send_at).limit(limit))

    async def unanswered(self, requested_before: datetime, limit: int) -> list[RatedTicket]:
        """Requests about incidents still closed, with no rating and no reminder yet."""
        return await self._rated(
            _with_ticket().where(Rating.state == RatingState.REQUESTED, Rating.score.is_(None),
                                 Rating.reminded_at.is_(None),
                                 Rating.requested_at <= requested_before,
                                 Ticket.status == TicketStatus.CLOSED)
            .order_by(Rating.requested_at).limit(limit))

    async def _rated(self, query: Select[Rating, Ticket, Client]) -> list[RatedTicket]:
        return [RatedTicket(*row) for row in await self.session.execute(query)]

    # -- counted scores, by the first rating's time in [start, end) ------------------------

    async def score_counts(self, start: datetime, end: datetime) -> list[ScoreCount[None]]:
        rows = await self.session.execute(
            select(Rating.score, func.count()).where(*_counted(start, end))
            .group_by(Rating.score))
        return [ScoreCount(None, s, n) for s, n in rows if s is not None]

    async def score_counts_by_client(
        self, start: datetime, end: datetime
    ) -> list[ScoreCount[int]]:
        rows = await self.session.execute(
            select(Rating.client_id, Rating.score, func.count()).where(*_counted(start, end))
            .group_by(Rating.client_id, Rating.score))
        return [ScoreCount(c, s, n) for c, s, n in rows if s is not None]

    async def score_counts_by_agent(
        self, start: datetime, end: datetime
    ) -> list[ScoreCount[tuple[int, str]]]:
        """Keyed by (agent id, name): a rating counts for each agent it is attributed to."""
        rows = await self.session.execute(
            select(RatingAgent.agent_id, RatingAgent.agent_name, Rating.score, func.count())
            .join(Rating, Rating.id == RatingAgent.rating_id).where(*_counted(start, end))
            .group_by(RatingAgent.agent_id, RatingAgent.agent_name, Rating.score))
        return [ScoreCount((a, name), s, n) for a, name, s, n in rows if s is not None]


def _with_ticket() -> Select[Rating, Ticket, Client]:
    return (select(Rating, Ticket, Client)
            .join(Ticket, Ticket.id == Rating.ticket_id)
            .join(Client, Client.id == Rating.client_id))


def _counted(start: datetime, end: datetime) -> tuple[ColumnElement[bool], ...]:
    return (Rating.counted.is_(True), Rating.score.is_not(None),
            Rating.rated_at >= start, Rating.rated_at < end)
