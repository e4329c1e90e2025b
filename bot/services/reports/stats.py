"""The figures of /stats and of /org's month.

Everything is computed over a period [start, end) in the desk's time zone
(bot.domain.periods). Definitions, so the figures can be checked by hand:

- opened: incidents opened in the period (by their current severity);
- closed: incidents resolved or closed whose resolution falls in the period (a reopened
  incident is not closed until it is resolved again); open now: open at this moment;
- first response: `first_response_at - opened_at` of incidents opened in the period that
  got one; resolution: `resolved_at - opened_at` of the closed ones that staff resolved
  (an FAQ deflection is the client's own doing and is left out); wall-clock time.
  Median: the middle value (the mean of the two middle ones for an even count);
  p90: nearest rank (the value at position ceil(0.9 n) of the sorted list);
- SLA compliance per severity, of incidents opened in the period with a verdict: met
  (`*_met` true) against breached (`*_met` false, or overdue without an answer yet:
  `*_breached_at` set while `*_met` is unknown); incidents still within their time have
  no verdict and are not counted;
- deflected by FAQ: closed ones with `resolution_kind` "faq"; reopen rate: the share of
  the closed ones that were reopened at least once;
- ratings: `bot.services.ratings.rating_distribution` (counted ratings, by the first rating's time);
- quality checks: the campaigns started in the period (`bot.services.quality.campaign_status`);
- staff time, per company: of the closed incidents, the SLA resolution time when it was
  tracked (business time, waiting for the client excluded), else `resolved_at - opened_at`;
- per agent (the assignee): closed incidents, their median first response, the ratings
  attributed to the agent.

Aggregates in the database, no row per incident in Python (`/stats month` over 100,000
incidents: tests/bench/stats.py; the queries: storage.repos.reports): the incidents opened
in the period by severity and UTC hour of opening (the counts, the SLA verdicts, and the
chart's days: the hours become local days, exact for time zones of whole hours), those
closed by severity and assignee, and per company; each group brings its durations, which
the percentiles need, as one list.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.enums import Severity, TicketStatus
from bot.domain.periods import Period
from bot.domain.sla import waited
from bot.services.bell import Followups, followups
from bot.services.quality import (
    CampaignStatus,
    QuarterTrend,
    answered_trends,
    campaign_status,
    company_trend,
)
from bot.services.ratings import Distribution, rating_distribution
from storage.models import Company, QualityCampaign
from storage.repos.companies import Companies
from storage.repos.contracts import Contracts, Reopened, ReopenedIncident
from storage.repos.events import TicketEvents
from storage.repos.quality import Quality
from storage.repos.reports import ClosedGroup, CompanyFigures, OpenedHour, Reports

SEVERITIES = tuple(Severity)


def zero_by_severity() -> dict[Severity, int]:
    return dict.fromkeys(SEVERITIES, 0)


@dataclass(frozen=True)
class Durations:
    """Wall-clock durations (seconds): how many, the median and the 90th percentile."""

    count: int = 0
    median: float | None = None
    p90: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Durations:
        if not values:
            return cls()
        ordered = sorted(values)
        rank = math.ceil(0.9 * len(ordered))
        # Durations come from the database as floats (SQLite: julianday differences, good
        # to ~10 microseconds): milliseconds are plenty.
        return cls(len(ordered), round(statistics.median(ordered), 3),
                   round(ordered[rank - 1], 3))

    @property
    def median_delta(self) -> timedelta | None:
        return timedelta(seconds=self.median) if self.median is not None else None

    @property
    def p90_delta(self) -> timedelta | None:
        return timedelta(seconds=self.p90) if self.p90 is not None else None


@dataclass(frozen=True)
class Compliance:
    met: int = 0
    total: int = 0

    @property
    def percent(self) -> float | None:
        return round(100 * self.met / self.total, 1) if self.total else None


@dataclass
class CompanyRow:
    company_id: int
    name: str
    incidents: int = 0  # opened in the period
    closed: int = 0  # closed in the period (their staff time is `staff_seconds`)
    staff_seconds: float = 0.0

    @property
    def staff_time(self) -> timedelta:
        return timedelta(seconds=round(self.staff_seconds))


@dataclass
class ContractRow:
    """What a company's contract cost in the period: logged hours at the desk's rate
    against its fee (`[reports] hour_cost`, `fee` of `[[companies]]`)."""

    company_id: int
    name: str
    minutes: int
    fee: float | None
    hour_cost: float | None
    reopens: int = 0

    @property
    def hours(self) -> float:
        return round(self.minutes / 60, 2)

    @property
    def cost(self) -> float | None:
        return round(self.minutes / 60 * self.hour_cost, 2) if self.hour_cost else None

    @property
    def ratio(self) -> float | None:
        """Cost per unit of fee: above 1 the company is served at a loss."""
        return round(self.cost / self.fee, 2) if self.cost is not None and self.fee else None


@dataclass
class AgentRow:
    agent_id: int
    name: str
    handled: int = 0
    response: Durations = field(default_factory=Durations)
    ratings: Distribution = field(default_factory=Distribution)


@dataclass
class Stats:
    period: Period
    now: datetime
    company: Company | None = None
    opened: dict[Severity, int] = field(default_factory=zero_by_severity)
    closed: dict[Severity, int] = field(default_factory=zero_by_severity)
    open_now: dict[Severity, int] = field(default_factory=zero_by_severity)
    first_response: Durations = field(default_factory=Durations)
    resolution: Durations = field(default_factory=Durations)
    sla_response: dict[Severity, Compliance] = field(default_factory=dict)
    sla_resolution: dict[Severity, Compliance] = field(default_factory=dict)
    deflected: int = 0
    reopened: int = 0
    ratings: Distribution = field(default_factory=Distribution)
    quality: list[tuple[QualityCampaign, CampaignStatus]] = field(default_factory=list)
    followups: Followups = field(default_factory=Followups)  # the bell: taken or not
    trend: list[QuarterTrend] = field(default_factory=list)  # a company's quarterly answers
    # The whole desk: (company, its trend) of the companies whose employees answered a check.
    trends: list[tuple[str, list[QuarterTrend]]] = field(default_factory=list)
    # Waiting for a third party ("/status N vendor"): incidents, and the time, within the
    # period; off the SLA clock, shown apart.
    vendor_incidents: int = 0
    vendor_wait: timedelta = field(default_factory=timedelta)
    top_by_incidents: list[CompanyRow] = field(default_factory=list)
    top_by_time: list[CompanyRow] = field(default_factory=list)
    agents: list[AgentRow] = field(default_factory=list)
    per_day: list[tuple[date, dict[Severity, int]]] = field(default_factory=list)
    # Time logged in the period (with `company`: on its incidents), and, for the whole desk,
    # the companies by cost against fee and the clients and incidents reopened most.
    minutes: int = 0
    contracts: list[ContractRow] = field(default_factory=list)
    difficult_clients: list[Reopened] = field(default_factory=list)
    difficult_incidents: list[ReopenedIncident] = field(default_factory=list)

    @property
    def opened_total(self) -> int:
        return sum(self.opened.values())

    @property
    def closed_total(self) -> int:
        return sum(self.closed.values())

    @property
    def open_now_total(self) -> int:
        return sum(self.open_now.values())

    @property
    def reopen_rate(self) -> float | None:
        return round(100 * self.reopened / self.closed_total, 1) if self.closed_total else None

    @property
    def deflected_share(self) -> float | None:
        return round(100 * self.deflected / self.closed_total, 1) if self.closed_total else None

    def sla_total(self, which: str) -> Compliance:
        table = self.sla_response if which == "response" else self.sla_resolution
        return Compliance(sum(c.met for c in table.values()), sum(c.total for c in table.values()))


async def compute_stats(
    session: AsyncSession, period: Period, now: datetime, *,
    company: Company | None = None, top: int = 5, hour_cost: float | None = None,
) -> Stats:
    """Every figure of /stats (of one company with `company`); `hour_cost`: the desk's
    hourly rate, for what each contract costs."""
    stats = Stats(period=period, now=now, company=company)
    company_id = company.id if company is not None else None
    reports = Reports(session)
    opened = await reports.opened_by_hour(period.start, period.end, company_id)
    closed = await reports.closed_by_agent(period.start, period.end, company_id)
    companies = [] if company is not None else await reports.by_company(
        period.start, period.end)
    _aggregates(stats, opened, closed)
    _durations(stats, opened, closed)
    stats.open_now = zero_by_severity() | await reports.open_by_severity(company_id)
    if companies:
        await _top_companies(session, stats, companies, top)
    stats.ratings = await _ratings(session, period, company)
    if company is not None:
        stats.trend = await company_trend(session, company.id)
    if company is None:
        await _vendor_waits(session, stats)
    if company is None:
        stats.followups = await followups(session, period.start, period.end)
        stats.trends = await answered_trends(session)
        for campaign in await Quality(session).campaigns_started(period.start, period.end):
            stats.quality.append((campaign, await campaign_status(session, campaign)))
        by_agent = await rating_distribution(session, period.start, period.end, by="agent")
        agents = {a.agent_id: a for a in stats.agents}
        for (agent_id, name), distribution in by_agent.items():
            row = agents.get(agent_id)
            if row is None:
                row = agents[agent_id] = AgentRow(agent_id, name or f"id{agent_id}")
                stats.agents.append(row)
            row.ratings = distribution
    stats.agents.sort(key=lambda a: (-a.handled, a.name))
    await _contracts(session, stats, company, top, hour_cost)
    return stats


async def _contracts(session: AsyncSession, stats: Stats, company: Company | None, top: int,
                     hour_cost: float | None) -> None:
    """Hours per company, cost against fee (highest share first: those served at a loss),
    reopenings per company and per client."""
    period = stats.period
    contracts = Contracts(session)
    minutes = await contracts.minutes_by_company(
        period.start, period.end, company.id if company is not None else None)
    if company is not None:
        stats.minutes = minutes.get(company.id, 0)
        return
    stats.minutes = sum(minutes.values())
    reopens = await contracts.reopens_by_company(period.start, period.end)
    rows = [ContractRow(c.id, c.name, minutes.get(c.id, 0), c.fee, hour_cost,
                        reopens.get(c.id, 0))
            for c in await Companies(session).all()
            if c.id in minutes or c.fee or c.id in reopens]
    rows.sort(key=lambda r: (r.ratio is None, -(r.ratio or 0), -r.minutes, r.name))
    stats.contracts = rows[:top]
    stats.difficult_clients = await contracts.reopens_by_client(period.start, period.end, top)
    stats.difficult_incidents = await contracts.most_reopened(period.start, period.end, top)
async def _vendor_waits(session: AsyncSession, stats: Stats) -> None:
    period = stats.period
    end = min(period.end, stats.now)
    for trail in (await TicketEvents(session).status_trails(TicketStatus.VENDOR, end)).values():
        wait = waited(trail, TicketStatus.VENDOR, period.start, end)
        if wait > timedelta():
            stats.vendor_incidents += 1
            stats.vendor_wait += wait


def _aggregates(stats: Stats, opened: Sequence[OpenedHour],
                closed: Sequence[ClosedGroup]) -> None:
    """Counts and SLA verdicts by severity, and the chart's incidents per local day."""
    zone = stats.period.zone
    days = {day: zero_by_severity()
            for day in stats.period.days(until=stats.now.astimezone(zone).date())}
    response: dict[Severity, list[int]] = {s: [0, 0] for s in SEVERITIES}
    resolution: dict[Severity, list[int]] = {s: [0, 0] for s in SEVERITIES}
    for hour in opened:
        severity = hour.severity
        stats.opened[severity] += hour.opened
        for table, met, judged in ((response, hour.response_met, hour.response_judged),
                                   (resolution, hour.resolution_met, hour.resolution_judged)):
            table[severity][0] += met
            table[severity][1] += judged
        day = days.setdefault(hour.hour.astimezone(zone).date(), zero_by_severity())
        day[severity] += hour.opened
    for group in closed:
        stats.closed[group.severity] += group.closed
        stats.deflected += group.deflected
        stats.reopened += group.reopened
    stats.sla_response = {s: Compliance(*pair) for s, pair in response.items()}
    stats.sla_resolution = {s: Compliance(*pair) for s, pair in resolution.items()}
    stats.per_day = sorted(days.items())


def _durations(stats: Stats, opened: Sequence[OpenedHour],
               closed: Sequence[ClosedGroup]) -> None:
    """Percentiles of the durations and the agents' figures (the assignee of the closed
    ones)."""
    agents: dict[int, AgentRow] = {}
    agent_waits: dict[int, list[float]] = {}
    for group in closed:
        if group.agent_id is None:
            continue
        agent = agents.get(group.agent_id)
        if agent is None:
            agent = agents[group.agent_id] = AgentRow(
                group.agent_id, group.agent_name or f"id{group.agent_id}")
            agent_waits[group.agent_id] = []
        agent.handled += group.closed
        agent_waits[group.agent_id] += group.waits
    stats.first_response = Durations.of([wait for hour in opened for wait in hour.waits])
    stats.resolution = Durations.of([fix for group in closed for fix in group.fixes])
    for agent_id, values in agent_waits.items():
        agents[agent_id].response = Durations.of(values)
    stats.agents = list(agents.values())


async def _top_companies(
    session: AsyncSession, stats: Stats, companies: Sequence[CompanyFigures], top: int
) -> None:
    names = await Companies(session).names([c.company_id for c in companies])
    rows = [CompanyRow(c.company_id, names.get(c.company_id, f"#{c.company_id}"), c.opened,
                       c.closed, round(c.staff_seconds, 3)) for c in companies]
    by_count = [r for r in rows if r.incidents]
    stats.top_by_incidents = sorted(by_count, key=lambda r: (-r.incidents, r.name))[:top]
    by_time = [r for r in rows if r.closed]
    stats.top_by_time = sorted(by_time, key=lambda r: (-r.staff_seconds, r.name))[:top]


async def _ratings(session: AsyncSession, period: Period, company: Company | None
                   ) -> Distribution:
    if company is None:
        return (await rating_distribution(session, period.start, period.end)).get(
            None, Distribution())
    members = await Companies(session).employee_ids(company.id)
    merged = Distribution()
    by_client = await rating_distribution(session, period.start, period.end, by="client")
    for client_id, distribution in by_client.items():
        if client_id in members:
            for score, count in distribution.counts.items():
                merged.counts[score] = merged.counts.get(score, 0) + count
    return merged
