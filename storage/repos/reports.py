"""The queries behind /stats, /org's month and the monthly act (bot.services.reports).

A period is [start, end) in UTC. "Opened in" is by `opened_at`; "closed in" means
resolved or closed now, with `resolved_at` in the period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Float, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.domain.enums import CLOSED_STATUSES, OPEN_STATUSES, ResolutionKind, Severity
from storage.models import Client, Rating, Ticket

# Reading rows through an index costs SQLite about 3-4 times a sequential read: when the
# period holds more than this share of all incidents, a scan is faster.
SCAN_SHARE = 0.25


class HourFigures(NamedTuple):
    """Incidents of one severity opened in one UTC hour, or closed in the period."""

    severity: Severity
    hour: datetime  # UTC, the hour the incidents were opened in
    opened: int  # in the period
    closed: int  # in the period
    deflected: int  # closed by the client's FAQ answer
    reopened: int  # closed, reopened at least once before
    # SLA verdicts of those opened in the period: met, and met or breached.
    response_met: int
    response_judged: int
    resolution_met: int
    resolution_judged: int


class IncidentTimes(NamedTuple):
    """One incident opened or closed in the period, its durations (seconds, wall clock)
    computed by the database."""

    opened: int  # 1 when opened in the period
    closed: int  # 1 when closed in the period
    resolution_kind: str | None
    response: float | None  # opened_at -> first_response_at
    resolution: float | None  # opened_at -> resolved_at
    sla_resolution: int | None  # the SLA's business time, when tracked
    assignee_id: int | None
    assignee_name: str | None
    company_id: int | None


@dataclass(frozen=True)
class PeriodIncidents:
    by_hour: list[HourFigures]
    incidents: list[IncidentTimes]


class ClosedIncident(NamedTuple):
    ticket: Ticket
    client: Client
    score: int | None  # the counted rating


class Reports:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.sqlite = session.get_bind().dialect.name == "sqlite"

    async def period_incidents(
        self, start: datetime, end: datetime, company_id: int | None = None
    ) -> PeriodIncidents:
        """Two passes over the incidents opened or closed in [start, end) (of one company's
        employees with `company_id`): aggregates by severity and opening hour, then one
        narrow row per incident."""
        opened_in = _in(Ticket.opened_at, start, end)
        closed_in = _closed_in(start, end)
        scope = _scope(company_id)
        relevant = await self._planned(or_(opened_in, closed_in), start, end)

        def verdicts(met: Any, breached: Any) -> tuple[Any, Any]:
            return (_count_if(and_(opened_in, met.is_(True))),
                    _count_if(and_(opened_in, or_(met.is_not(None), breached.is_not(None)))))

        hour = self._hour_bucket(Ticket.opened_at)
        hours = await self.session.execute(
            select(Ticket.severity, hour, _count_if(opened_in), _count_if(closed_in),
                   _count_if(and_(closed_in, Ticket.resolution_kind == ResolutionKind.FAQ)),
                   _count_if(and_(closed_in, Ticket.reopen_count > 0)),
                   *verdicts(Ticket.first_response_met, Ticket.first_response_breached_at),
                   *verdicts(Ticket.resolution_met, Ticket.resolution_breached_at))
            .where(relevant, *scope).group_by(Ticket.severity, hour)
        )
        by_hour = [
            HourFigures(severity, datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=UTC),
                        *(int(n or 0) for n in counts))
            for severity, bucket, *counts in hours
        ]
        rows = await self.session.execute(
            select(case((opened_in, 1), else_=0), case((closed_in, 1), else_=0),
                   Ticket.resolution_kind,
                   self._seconds_between(Ticket.opened_at, Ticket.first_response_at),
                   self._seconds_between(Ticket.opened_at, Ticket.resolved_at),
                   Ticket.resolution_seconds, Ticket.assignee_id, Ticket.assignee_name,
                   Client.company_id)
            .join(Client, Client.id == Ticket.client_id).where(relevant, *scope)
        )
        return PeriodIncidents(by_hour, [IncidentTimes._make(row) for row in rows])

    async def open_by_severity(self, company_id: int | None = None) -> dict[Severity, int]:
        """Incidents open now, per severity."""
        rows = await self.session.execute(
            select(Ticket.severity, func.count())
            .where(Ticket.status.in_(OPEN_STATUSES), *_scope(company_id))
            .group_by(Ticket.severity)
        )
        return dict(rows.all())

    async def act_incidents(
        self, company_id: int, start: datetime, end: datetime
    ) -> list[ClosedIncident]:
        """The company's incidents closed in the period, by resolution time."""
        rows = await self.session.execute(
            select(Ticket, Client, Rating.score)
            .join(Client, Client.id == Ticket.client_id)
            .outerjoin(Rating, and_(Rating.ticket_id == Ticket.id, Rating.counted.is_(True)))
            .where(_closed_in(start, end), *_scope(company_id))
            .order_by(Ticket.resolved_at, Ticket.number)
        )
        return [ClosedIncident(*row) for row in rows]

    async def opened_count(self, company_id: int, start: datetime, end: datetime) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(Ticket)
            .where(_in(Ticket.opened_at, start, end), *_scope(company_id))
        )
        return count or 0

    async def _planned(
        self, relevant: ColumnElement[bool], start: datetime, end: datetime
    ) -> ColumnElement[bool]:
        """The period's condition as SQLite should run it. SQLite's planner knows no value
        histograms, so for the opened/resolved ranges it always picks the indexes, even
        when the period holds nearly every incident (a month with a mass outage), and then
        reads the table in random order. Counting through the indexes alone is cheap (they
        cover the count): with a large share the condition is wrapped so that no index
        applies, and the table is read once, in order. PostgreSQL plans this itself."""
        if not self.sqlite:
            return relevant
        total = await self._count()
        opened = await self._count(_in(Ticket.opened_at, start, end))
        resolved = await self._count(_in(Ticket.resolved_at, start, end))
        if total and opened + resolved > SCAN_SHARE * total:
            return func.coalesce(relevant, False)
        return relevant

    async def _count(self, *where: ColumnElement[bool]) -> int:
        count = await self.session.scalar(select(func.count()).select_from(Ticket).where(*where))
        return count or 0

    def _seconds_between(self, start: Any, end: Any) -> ColumnElement[float]:
        """`end - start` in seconds, computed by the database."""
        if self.sqlite:
            return (func.julianday(end) - func.julianday(start)) * 86400.0
        return cast(func.extract("epoch", end - start), Float)

    def _hour_bucket(self, column: Any) -> ColumnElement[str]:
        """"YYYY-MM-DD HH" of a UTC instant."""
        if self.sqlite:
            return func.strftime("%Y-%m-%d %H", column)
        return func.to_char(column.op("AT TIME ZONE")(literal("UTC")), "YYYY-MM-DD HH24")


def _in(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


def _closed_in(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(Ticket.status.in_(CLOSED_STATUSES), _in(Ticket.resolved_at, start, end))


def _scope(company_id: int | None) -> Sequence[ColumnElement[bool]]:
    """Incidents of the company's employees (None: every incident)."""
    if company_id is None:
        return ()
    return (Ticket.client_id.in_(select(Client.id).where(Client.company_id == company_id)),)


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))
