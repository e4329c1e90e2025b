"""The monthly act of performed work of one company: its incidents closed in the month and
its planned maintenance works with their status (rendered by .render, sent by .jobs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.enums import ResolutionKind, Severity
from bot.domain.periods import Period, local_midnight
from bot.services.ratings import Distribution
from bot.services.reports.stats import Compliance, Durations, zero_by_severity
from storage.models import Company
from storage.repos.companies import Companies
from storage.repos.reports import Reports


@dataclass
class ActIncident:
    number: int
    opened_at: datetime
    resolved_at: datetime
    subject: str
    severity: Severity
    client: str
    assignee: str | None
    response: timedelta | None
    resolution: timedelta
    rating: int | None
    resolution_text: str | None
    deflected: bool
    sla_met: bool | None  # every verdict met; None: no SLA verdict


@dataclass
class ActWork:
    work: str
    every: str
    done: list[datetime]  # when it was done in its current cycle (up to the period's end)

    @property
    def status(self) -> str:
        return "done" if self.done else "scheduled"


@dataclass
class Act:
    desk: str
    company: Company
    period: Period
    generated_at: datetime
    incidents: list[ActIncident]
    works: list[ActWork]
    opened: int
    response: Durations
    resolution: Durations
    ratings: Distribution
    sla: Compliance

    @property
    def by_severity(self) -> dict[Severity, int]:
        counts = zero_by_severity()
        for incident in self.incidents:
            counts[incident.severity] += 1
        return counts

    @property
    def total_resolution(self) -> timedelta:
        return sum((i.resolution for i in self.incidents), timedelta())


def _cycle_start(every: str, period: Period) -> date:
    """Where the cycle of a periodic work that ends with the period's month begins."""
    first = period.first_day
    if every == "quarterly":
        return date(first.year, 3 * ((first.month - 1) // 3) + 1, 1)
    if every == "yearly":
        return date(first.year, 1, 1)
    return first


async def build_act(
    session: AsyncSession, company: Company, period: Period, now: datetime, desk: str,
) -> Act:
    """The monthly act of one company: its incidents closed in the period and its planned
    works with their status (done in the work's cycle, or scheduled)."""
    reports = Reports(session)
    incidents = []
    for ticket, client, score in await reports.act_incidents(company.id, period.start,
                                                             period.end):
        assert ticket.resolved_at is not None
        verdicts = [v for v in (ticket.first_response_met, ticket.resolution_met) if v is not None]
        incidents.append(ActIncident(
            number=ticket.number, opened_at=ticket.opened_at, resolved_at=ticket.resolved_at,
            subject=ticket.subject, severity=ticket.severity, client=client.display_name,
            assignee=ticket.assignee_name,
            response=(ticket.first_response_at - ticket.opened_at
                      if ticket.first_response_at is not None else None),
            resolution=ticket.resolved_at - ticket.opened_at, rating=score,
            resolution_text=ticket.resolution,
            deflected=ticket.resolution_kind == ResolutionKind.FAQ,
            sla_met=all(verdicts) if verdicts else None,
        ))
    companies = Companies(session)
    works = []
    for planned in company.maintenance or []:
        every = planned.get("every", "monthly")
        since = local_midnight(_cycle_start(every, period), period.zone)
        done = await companies.done_at(company.id, planned["work"], since, period.end)
        works.append(ActWork(planned["work"], every, done))
    opened = await reports.opened_count(company.id, period.start, period.end)
    ratings = Distribution()
    for incident in incidents:
        if incident.rating is not None:
            ratings.add(incident.rating)
    judged = [i.sla_met for i in incidents if i.sla_met is not None]
    return Act(
        desk=desk, company=company, period=period, generated_at=now, incidents=incidents,
        works=works, opened=opened,
        response=Durations.of([i.response.total_seconds() for i in incidents
                               if i.response is not None]),
        resolution=Durations.of([i.resolution.total_seconds() for i in incidents
                                 if not i.deflected]),
        ratings=ratings, sla=Compliance(sum(judged), len(judged)),
    )
