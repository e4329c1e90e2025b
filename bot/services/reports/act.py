"""The monthly act of performed work of one company: its incidents closed in the month and
its planned maintenance works with their status (rendered by .render, sent by .jobs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.enums import ResolutionKind, Severity
from bot.domain.maintenance import cycle_start, next_due
from bot.domain.periods import Period, PeriodKind, local_midnight
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
    minutes: int = 0  # time logged on it
    out_of_scope: str | None = None  # why the work is outside the contract


@dataclass
class ActWork:
    work: str
    every: str
    # When it was done in its current cycle (up to the period's end), and by whom.
    records: list[tuple[datetime, str | None]]
    planned_for: date | None = None  # when not done: the month it is planned for

    @property
    def done(self) -> list[datetime]:
        return [at for at, _ in self.records]

    @property
    def status(self) -> str:
        return "done" if self.records else "scheduled"


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
    place: str = ""  # where the act is drawn up ([reports] place)

    @property
    def by_severity(self) -> dict[Severity, int]:
        counts = zero_by_severity()
        for incident in self.incidents:
            counts[incident.severity] += 1
        return counts

    @property
    def in_scope(self) -> list[ActIncident]:
        return [i for i in self.incidents if i.out_of_scope is None]

    @property
    def out_of_scope(self) -> list[ActIncident]:
        """Work outside the contract, listed apart (billed separately)."""
        return [i for i in self.incidents if i.out_of_scope is not None]

    @property
    def minutes_total(self) -> int:
        return sum(i.minutes for i in self.in_scope)

    @property
    def minutes_outside(self) -> int:
        return sum(i.minutes for i in self.out_of_scope)

    @property
    def hours_included(self) -> float | None:
        """The hours of work the contract's fee includes (for the period: per month)."""
        included = self.company.hours_included
        if included is None:
            return None
        return included * (3 if self.period.kind == PeriodKind.QUARTER else 1)

    @property
    def total_resolution(self) -> timedelta:
        return sum((i.resolution for i in self.incidents), timedelta())


async def build_act(
    session: AsyncSession, company: Company, period: Period, now: datetime, desk: str,
    place: str = "",
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
            # An FAQ answer's resolution names the article ("FAQ: id"): the act says
            # "solved by following the instructions" instead.
            resolution_text=(None if ticket.resolution_kind == ResolutionKind.FAQ
                             else ticket.resolution),
            deflected=ticket.resolution_kind == ResolutionKind.FAQ,
            sla_met=all(verdicts) if verdicts else None,
            minutes=ticket.minutes_spent or 0, out_of_scope=ticket.out_of_scope,
        ))
    companies = Companies(session)
    works = []
    for planned in company.maintenance or []:
        every = planned.get("every", "monthly")
        since = local_midnight(cycle_start(every, period.first_day), period.zone)
        records = await companies.done_at(company.id, planned["work"], since, period.end)
        planned_for = None
        if not records:
            last = await companies.last_done(company.id, planned["work"], period.end)
            due = next_due(every, last.astimezone(period.zone).date() if last else None,
                           period.first_day)
            # Not done in a period that is over: planned for after it.
            planned_for = max(due, period.after_day if now >= period.end else period.first_day)
        works.append(ActWork(planned["work"], every, records, planned_for))
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
        ratings=ratings, sla=Compliance(sum(judged), len(judged)), place=place,
    )
