"""The queries behind /stats, /org's month and the monthly act (bot.services.reports).

A period is [start, end) in UTC. "Opened in" is by `opened_at`; "closed in" means
resolved or closed now, with `resolved_at` in the period.

`/stats month` over 100,000 incidents (tests/bench/stats.py) is four aggregate statements,
two over each of the two covering indexes (`ix_tickets_opened_report`,
`ix_tickets_resolved_report`, storage.models): the table itself is not read, and no row
per incident comes to Python. The durations the percentiles need come as one text list
per group (SQLite: `group_concat` of `printf('%!.20g')`, which round-trips a double
exactly; PostgreSQL: `string_agg`, its float output is exact too), parsed and sorted here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Float, String, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.domain.enums import CLOSED_STATUSES, OPEN_STATUSES, ResolutionKind, Severity
from storage.models import Client, Rating, Ticket


class OpenedHour(NamedTuple):
    """Incidents of one severity opened in one UTC hour of the period."""

    severity: Severity
    hour: datetime  # UTC
    opened: int
    # SLA verdicts: met, and met or breached.
    response_met: int
    response_judged: int
    resolution_met: int
    resolution_judged: int
    waits: list[float]  # opened_at -> first_response_at (seconds) of those answered


class ClosedGroup(NamedTuple):
    """Incidents of one severity and one assignee (None: nobody) closed in the period."""

    severity: Severity
    agent_id: int | None
    agent_name: str | None  # the name on (one of) the incidents
    closed: int
    deflected: int  # closed by the client's FAQ answer
    reopened: int  # reopened at least once before
    fixes: list[float]  # opened_at -> resolved_at (seconds), FAQ deflections left out
    waits: list[float]  # opened_at -> first_response_at (seconds) of those answered


class CompanyFigures(NamedTuple):
    """One company's incidents in the period (its employees')."""

    company_id: int
    opened: int
    closed: int
    # Of the closed ones: the SLA resolution time when tracked, else resolved_at - opened_at.
    staff_seconds: float


class ClosedIncident(NamedTuple):
    ticket: Ticket
    client: Client
    score: int | None  # the counted rating


class Reports:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.sqlite = session.get_bind().dialect.name == "sqlite"

    async def opened_by_hour(
        self, start: datetime, end: datetime, company_id: int | None = None
    ) -> list[OpenedHour]:
        """The incidents opened in [start, end) (of one company's employees with
        `company_id`), by severity and UTC hour of opening."""
        hour = self._hour_bucket(Ticket.opened_at)

        def verdicts(met: Any, breached: Any) -> tuple[Any, Any]:
            return _count_if(met.is_(True)), _count_if(or_(met.is_not(None), breached.is_not(None)))

        rows = await self.session.execute(
            select(Ticket.severity, hour, func.count(),
                   *verdicts(Ticket.first_response_met, Ticket.first_response_breached_at),
                   *verdicts(Ticket.resolution_met, Ticket.resolution_breached_at),
                   self._values(self._seconds_between(Ticket.opened_at, Ticket.first_response_at),
                                when=Ticket.first_response_at.is_not(None)))
            .where(_in(Ticket.opened_at, start, end), *_scope(company_id))
            .group_by(Ticket.severity, hour)
        )
        return [
            OpenedHour(severity, datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=UTC),
                       int(opened), int(response_met or 0), int(response_judged or 0),
                       int(resolution_met or 0), int(resolution_judged or 0), _floats(waits))
            for (severity, bucket, opened, response_met, response_judged, resolution_met,
                 resolution_judged, waits) in rows
        ]

    async def closed_by_agent(
        self, start: datetime, end: datetime, company_id: int | None = None
    ) -> list[ClosedGroup]:
        """The incidents closed in [start, end), by severity and assignee."""
        fix = self._seconds_between(Ticket.opened_at, Ticket.resolved_at)
        faq_kind = ResolutionKind.FAQ
        faq = Ticket.resolution_kind == faq_kind
        rows = await self.session.execute(
            select(Ticket.severity, Ticket.assignee_id, func.max(Ticket.assignee_name),
                   func.count(), _count_if(faq), _count_if(Ticket.reopen_count > 0),
                   self._values(fix, when=Ticket.resolution_kind.is_distinct_from(faq_kind)),
                   self._values(self._seconds_between(Ticket.opened_at, Ticket.first_response_at),
                                when=Ticket.first_response_at.is_not(None)))
            .where(_closed_in(start, end), *_scope(company_id))
            .group_by(Ticket.severity, Ticket.assignee_id)
        )
        return [
            ClosedGroup(severity, agent_id, name, int(closed), int(deflected or 0),
                        int(reopened or 0), _floats(fixes), _floats(waits))
            for severity, agent_id, name, closed, deflected, reopened, fixes, waits in rows
        ]

    async def by_company(self, start: datetime, end: datetime) -> list[CompanyFigures]:
        """Per company: its employees' incidents opened in [start, end), and those closed in
        it with their staff time. Counted per client over the report indexes (which hold
        `client_id`) and added up per company here: joining every incident to its client
        cost a lookup per incident, most of these two queries' time at 100,000 (issue 15)."""
        company_of: dict[int, int] = dict((await self.session.execute(  # type: ignore[arg-type]
            select(Client.id, Client.company_id).where(Client.company_id.is_not(None))
        )).all())
        opened: dict[int, int] = {}
        for client_id, count in await self.session.execute(
            select(Ticket.client_id, func.count())
            .where(_in(Ticket.opened_at, start, end)).group_by(Ticket.client_id)
        ):
            company = company_of.get(client_id)
            if company is not None:
                opened[company] = opened.get(company, 0) + int(count)
        staff = func.coalesce(Ticket.resolution_seconds,
                              self._seconds_between(Ticket.opened_at, Ticket.resolved_at))
        closed: dict[int, tuple[int, float]] = {}
        for client_id, count, seconds in await self.session.execute(
            select(Ticket.client_id, func.count(), func.sum(staff))
            .where(_closed_in(start, end)).group_by(Ticket.client_id)
        ):
            company = company_of.get(client_id)
            if company is not None:
                done, spent = closed.get(company, (0, 0.0))
                closed[company] = (done + int(count), spent + float(seconds or 0))
        return [CompanyFigures(company_id, opened.get(company_id, 0),
                               *closed.get(company_id, (0, 0.0)))
                for company_id in sorted(opened.keys() | closed.keys())]

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

    def _values(self, value: ColumnElement[Any], *, when: ColumnElement[bool]
                ) -> ColumnElement[str | None]:
        """The group's numbers of the rows `when` holds for, as one comma-separated text
        (`_floats` reads it), each exactly as the database computed it. `when` is a test of
        the columns (their nulls), not of `value`: written as `value IS NOT NULL`, SQLite
        computed the value twice over (julianday() parses the text: a sixth of these queries'
        instructions at 100,000 incidents)."""
        if self.sqlite:  # printf() makes "0.0" of a null
            return func.group_concat(case((when, func.printf("%!.20g", value))))
        return func.string_agg(case((when, cast(value, String))), literal(","))

    def _seconds_between(self, start: Any, end: Any) -> ColumnElement[float]:
        """`end - start` in seconds, computed by the database."""
        if self.sqlite:
            return (func.julianday(end) - func.julianday(start)) * 86400.0
        return cast(func.extract("epoch", end - start), Float)

    def _hour_bucket(self, column: Any) -> ColumnElement[str]:
        """"YYYY-MM-DD HH" of a UTC instant."""
        if self.sqlite:  # as SQLAlchemy stores it, "YYYY-MM-DD HH:MM:SS.ffffff": cut, not
            return func.substr(column, 1, 13)  # parsed by strftime (a third of the query)
        return func.to_char(column.op("AT TIME ZONE")(literal("UTC")), "YYYY-MM-DD HH24")


def _floats(values: str | None) -> list[float]:
    return list(map(float, values.split(","))) if values else []


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
