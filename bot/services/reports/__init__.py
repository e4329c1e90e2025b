"""The numbers managers look at: /stats, /org's month, the chart and the monthly act.

Everything is computed over a period [start, end) in the desk's time zone:
`week` (this calendar week, Monday first), `month` (this calendar month, the default),
`quarter` (this calendar quarter) or `YYYY-MM`. Definitions, so the figures can be
checked by hand:

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

Two passes over the period's incidents (SQLite answers `/stats month` over 100,000 of them
well within 2 s: tests/bench/stats.py): SQL aggregates by severity and UTC hour of opening
(the counts, the SLA verdicts, and the chart's days: the hours become local days, exact
for time zones of whole hours), then one narrow row per incident with its durations,
computed by the database, which the percentiles need anyway; the per-agent and
per-company figures are summed from those rows rather than scanning again for each.
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, PackageLoader, StrictUndefined
from sqlalchemy import Float, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.config import Config
from bot.domain.enums import Severity, TicketStatus
from bot.domain.errors import UserError
from bot.messaging.outbox import PRIORITY_NOTICE
from bot.messaging.texts import age
from bot.services.quality import CampaignStatus, campaign_status
from bot.services.ratings import SCORES, Distribution, rating_distribution
from storage.models import (
    Client,
    Company,
    MaintenanceDone,
    QualityCampaign,
    Rating,
    Ticket,
)
from storage.repos import OPEN_STATUSES

SEVERITIES = (Severity.CRITICAL.value, Severity.NORMAL.value, Severity.LOW.value)
CLOSED_STATUSES = (TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value)
FAQ = "faq"


class ReportError(UserError):
    """A report request that cannot be done (template: `report_reply`)."""


# -- periods ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportPeriod:
    kind: str  # week | month | quarter
    label: str  # 2026-W10 | 2026-03 | 2026Q1
    first_day: date  # local
    after_day: date  # local, exclusive
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return _utc(self.first_day, self.zone)

    @property
    def end(self) -> datetime:
        return _utc(self.after_day, self.zone)

    @property
    def last_day(self) -> date:
        return self.after_day - timedelta(days=1)

    @property
    def year(self) -> int:
        return self.first_day.year

    @property
    def month(self) -> int:
        return self.first_day.month

    def days(self, until: date | None = None) -> list[date]:
        last = self.after_day if until is None else min(self.after_day, until + timedelta(1))
        count = max(0, (last - self.first_day).days)
        return [self.first_day + timedelta(days=i) for i in range(count)]


def _utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def month_period(year: int, month: int, zone: ZoneInfo) -> ReportPeriod:
    if not 1 <= month <= 12 or not 2000 <= year <= 2999:
        raise ReportError("bad_period", text=f"{year}-{month:02d}")
    after = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return ReportPeriod("month", f"{year}-{month:02d}", date(year, month, 1), after, zone)


def previous_month(now: datetime, zone: ZoneInfo) -> ReportPeriod:
    local = now.astimezone(zone).date().replace(day=1) - timedelta(days=1)
    return month_period(local.year, local.month, zone)


def parse_month(text: str, zone: ZoneInfo) -> ReportPeriod:
    match = re.fullmatch(r"(\d{4})-(\d{1,2})", text.strip())
    if match is None:
        raise ReportError("bad_period", text=text)
    return month_period(int(match[1]), int(match[2]), zone)


def parse_period(arg: str | None, now: datetime, zone: ZoneInfo) -> ReportPeriod:
    """`week`, `month` (default), `quarter` (the current ones) or `YYYY-MM`."""
    word = (arg or "month").strip().lower()
    today = now.astimezone(zone).date()
    if word in ("month", "месяц"):
        return month_period(today.year, today.month, zone)
    if word in ("week", "неделя"):
        monday = today - timedelta(days=today.weekday())
        iso = monday.isocalendar()
        return ReportPeriod("week", f"{iso.year}-W{iso.week:02d}", monday,
                            monday + timedelta(days=7), zone)
    if word in ("quarter", "квартал"):
        number = (today.month - 1) // 3 + 1
        first = date(today.year, 3 * number - 2, 1)
        after = date(today.year + 1, 1, 1) if number == 4 else date(today.year, 3 * number + 1, 1)
        return ReportPeriod("quarter", f"{today.year}Q{number}", first, after, zone)
    return parse_month(word, zone)


# -- figures ------------------------------------------------------------------------------


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
class AgentRow:
    agent_id: int
    name: str
    handled: int = 0
    response: Durations = field(default_factory=Durations)
    ratings: Distribution = field(default_factory=Distribution)


@dataclass
class Stats:
    period: ReportPeriod
    now: datetime
    company: Company | None = None
    opened: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    closed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    open_now: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    first_response: Durations = field(default_factory=Durations)
    resolution: Durations = field(default_factory=Durations)
    sla_response: dict[str, Compliance] = field(default_factory=dict)
    sla_resolution: dict[str, Compliance] = field(default_factory=dict)
    deflected: int = 0
    reopened: int = 0
    ratings: Distribution = field(default_factory=Distribution)
    quality: list[tuple[QualityCampaign, CampaignStatus]] = field(default_factory=list)
    top_by_incidents: list[CompanyRow] = field(default_factory=list)
    top_by_time: list[CompanyRow] = field(default_factory=list)
    agents: list[AgentRow] = field(default_factory=list)
    per_day: list[tuple[date, dict[str, int]]] = field(default_factory=list)

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


def seconds_between(session: AsyncSession, start: Any, end: Any) -> ColumnElement[float]:
    """`end - start` in seconds, computed by the database."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return cast(func.extract("epoch", end - start), Float)


def _hour_bucket(session: AsyncSession, column: Any) -> ColumnElement[str]:
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H", column)
    return func.to_char(column.op("AT TIME ZONE")(literal("UTC")), "YYYY-MM-DD HH24")


def _in(column: Any, period: ReportPeriod) -> ColumnElement[bool]:
    return and_(column >= period.start, column < period.end)


def _closed_in(period: ReportPeriod) -> ColumnElement[bool]:
    return and_(Ticket.status.in_(CLOSED_STATUSES), _in(Ticket.resolved_at, period))


def _scope(company_id: int | None) -> list[ColumnElement[bool]]:
    if company_id is None:
        return []
    return [Ticket.client_id.in_(select(Client.id).where(Client.company_id == company_id))]


def _by_severity(rows: Sequence[Any]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for severity, count in rows:
        counts[severity] = counts.get(severity, 0) + int(count or 0)
    return counts


async def compute_stats(
    session: AsyncSession, period: ReportPeriod, now: datetime, *,
    company: Company | None = None, top: int = 5,
) -> Stats:
    """Every figure of /stats (of one company with `company`). Two passes over the
    incidents of the period: SQL aggregates by severity and opening hour (counts, SLA
    verdicts, the chart's days), then one row per incident with its durations (computed
    by the database) for the percentiles, the agents and the companies' staff time."""
    stats = Stats(period=period, now=now, company=company)
    scope = _scope(company.id if company is not None else None)
    opened_in = _in(Ticket.opened_at, period)
    closed_in = _closed_in(period)
    relevant = await _planned(session, or_(opened_in, closed_in), period)

    await _aggregates(session, stats, opened_in, closed_in, relevant, scope)
    stats.open_now = _by_severity((await session.execute(
        select(Ticket.severity, func.count())
        .where(Ticket.status.in_(OPEN_STATUSES), *scope).group_by(Ticket.severity)
    )).all())
    await _durations(session, stats, opened_in, closed_in, relevant, scope, top)
    stats.ratings = await _ratings(session, period, company)
    if company is None:
        campaigns = await session.scalars(
            select(QualityCampaign).where(_in(QualityCampaign.created_at, period))
            .order_by(QualityCampaign.id)
        )
        for campaign in campaigns.all():
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
    return stats


# Reading rows through an index costs SQLite about 3-4 times a sequential read: when the
# period holds more than this share of all incidents, a scan is faster.
SCAN_SHARE = 0.25


async def _planned(
    session: AsyncSession, relevant: ColumnElement[bool], period: ReportPeriod
) -> ColumnElement[bool]:
    """The period's condition as SQLite should run it. SQLite's planner knows no value
    histograms, so for the opened/resolved ranges it always picks the indexes, even when
    the period holds nearly every incident (a month with a mass outage), and then reads
    the table in random order. Counting through the indexes alone is cheap (they cover the
    count): with a large share the condition is wrapped so that no index applies, and the
    table is read once, in order. PostgreSQL plans this itself."""
    if session.get_bind().dialect.name != "sqlite":
        return relevant
    total = await session.scalar(select(func.count()).select_from(Ticket)) or 0
    opened = await session.scalar(select(func.count()).select_from(Ticket).where(
        _in(Ticket.opened_at, period))) or 0
    resolved = await session.scalar(select(func.count()).select_from(Ticket).where(
        _in(Ticket.resolved_at, period))) or 0
    if total and opened + resolved > SCAN_SHARE * total:
        return func.coalesce(relevant, False)
    return relevant


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


async def _aggregates(
    session: AsyncSession, stats: Stats, opened_in: ColumnElement[bool],
    closed_in: ColumnElement[bool], relevant: ColumnElement[bool],
    scope: list[ColumnElement[bool]],
) -> None:
    """Counts by severity and SLA verdicts, grouped by severity and the UTC hour of opening
    (so the same pass gives the chart's incidents per day)."""

    def verdicts(met: Any, breached: Any) -> tuple[Any, Any]:
        return (_count_if(and_(opened_in, met.is_(True))),
                _count_if(and_(opened_in, or_(met.is_not(None), breached.is_not(None)))))

    hour = _hour_bucket(session, Ticket.opened_at)
    rows = (await session.execute(
        select(Ticket.severity, hour, _count_if(opened_in), _count_if(closed_in),
               _count_if(and_(closed_in, Ticket.resolution_kind == FAQ)),
               _count_if(and_(closed_in, Ticket.reopen_count > 0)),
               *verdicts(Ticket.first_response_met, Ticket.first_response_breached_at),
               *verdicts(Ticket.resolution_met, Ticket.resolution_breached_at))
        .where(relevant, *scope).group_by(Ticket.severity, hour)
    )).all()
    zone = stats.period.zone
    days = {day: dict.fromkeys(SEVERITIES, 0)
            for day in stats.period.days(until=stats.now.astimezone(zone).date())}
    response: dict[str, list[int]] = {s: [0, 0] for s in SEVERITIES}
    resolution: dict[str, list[int]] = {s: [0, 0] for s in SEVERITIES}
    for severity, bucket, opened, closed, faq, reopened, r_met, r_all, s_met, s_all in rows:
        opened, closed = int(opened or 0), int(closed or 0)
        stats.opened[severity] = stats.opened.get(severity, 0) + opened
        stats.closed[severity] = stats.closed.get(severity, 0) + closed
        stats.deflected += int(faq or 0)
        stats.reopened += int(reopened or 0)
        for table, met, judged in ((response, r_met, r_all), (resolution, s_met, s_all)):
            pair = table.setdefault(severity, [0, 0])
            pair[0] += int(met or 0)
            pair[1] += int(judged or 0)
        if opened:
            moment = datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=UTC)
            day = days.setdefault(moment.astimezone(zone).date(), dict.fromkeys(SEVERITIES, 0))
            day[severity] = day.get(severity, 0) + opened
    stats.sla_response = {s: Compliance(*pair) for s, pair in response.items()}
    stats.sla_resolution = {s: Compliance(*pair) for s, pair in resolution.items()}
    stats.per_day = sorted(days.items())


async def _durations(
    session: AsyncSession, stats: Stats, opened_in: ColumnElement[bool],
    closed_in: ColumnElement[bool], relevant: ColumnElement[bool],
    scope: list[ColumnElement[bool]], top: int,
) -> None:
    """One row per incident of the period, durations computed by the database: the
    percentiles need every value; per-agent and per-company sums ride along (one scan
    instead of one per grouping)."""
    response = seconds_between(session, Ticket.opened_at, Ticket.first_response_at)
    resolution = seconds_between(session, Ticket.opened_at, Ticket.resolved_at)
    rows = (await session.execute(
        select(case((opened_in, 1), else_=0), case((closed_in, 1), else_=0),
               Ticket.resolution_kind, response, resolution, Ticket.resolution_seconds,
               Ticket.assignee_id, Ticket.assignee_name, Client.company_id)
        .join(Client, Client.id == Ticket.client_id).where(relevant, *scope)
    )).all()
    waits: list[float] = []
    fixes: list[float] = []
    agents: dict[int, AgentRow] = {}
    agent_waits: dict[int, list[float]] = {}
    companies: dict[int, CompanyRow] = {}
    for opened, closed, kind, wait, fix, staff, agent_id, agent_name, company_id in rows:
        if opened and wait is not None:
            waits.append(wait)
        company = companies.get(company_id) if company_id is not None else None
        if company is None and company_id is not None:
            company = companies[company_id] = CompanyRow(company_id, "")
        if company is not None and opened:
            company.incidents += 1
        if not closed:
            continue
        if kind != FAQ and fix is not None:
            fixes.append(fix)
        if agent_id is not None:
            agent = agents.get(agent_id)
            if agent is None:
                agent = agents[agent_id] = AgentRow(agent_id, agent_name or f"id{agent_id}")
                agent_waits[agent_id] = []
            agent.handled += 1
            if wait is not None:
                agent_waits[agent_id].append(wait)
        if company is not None:
            # Staff time: the SLA resolution time when tracked, else wall clock.
            company.closed += 1
            company.staff_seconds += staff if staff is not None else (fix or 0.0)
    stats.first_response = Durations.of(waits)
    stats.resolution = Durations.of(fixes)
    for agent_id, values in agent_waits.items():
        if values:
            agents[agent_id].response = Durations.of(values)
    stats.agents = list(agents.values())
    if stats.company is not None or not companies:
        return
    names = dict((await session.execute(
        select(Company.id, Company.name).where(Company.id.in_(list(companies)))
    )).all())
    for row in companies.values():
        row.name = names.get(row.company_id, f"#{row.company_id}")
        row.staff_seconds = round(row.staff_seconds, 3)
    by_count = [r for r in companies.values() if r.incidents]
    stats.top_by_incidents = sorted(by_count, key=lambda r: (-r.incidents, r.name))[:top]
    by_time = [r for r in companies.values() if r.closed]
    stats.top_by_time = sorted(by_time, key=lambda r: (-r.staff_seconds, r.name))[:top]


async def _ratings(
    session: AsyncSession, period: ReportPeriod, company: Company | None
) -> Distribution:
    if company is None:
        return (await rating_distribution(session, period.start, period.end)).get(
            None, Distribution())
    members = set(await session.scalars(select(Client.id).where(Client.company_id == company.id)))
    merged = Distribution()
    by_client = await rating_distribution(session, period.start, period.end, by="client")
    for client_id, distribution in by_client.items():
        if client_id in members:
            for score, count in distribution.counts.items():
                merged.counts[score] = merged.counts.get(score, 0) + count
    return merged


# -- the chart ------------------------------------------------------------------------------

COLOURS = {"critical": "#d64545", "normal": "#e5b73b", "low": "#4caf50"}


def render_chart(stats: Stats, labels: dict[str, Any]) -> bytes:
    """A PNG: incidents per day stacked by severity, SLA compliance per severity, the
    rating distribution. Rendered off-screen (the Agg canvas, no pyplot state), so it can
    run in a worker thread.

    `labels`: "title", "per_day", "sla", "ratings", "response", "resolution",
    "severity" ({severity: name}), "rating" ({score: name})."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 10), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(3, 1, height_ratios=[1.3, 1, 1])
    figure.suptitle(labels["title"], fontsize=14)

    per_day, sla, ratings = axes
    days = [day for day, _ in stats.per_day]
    positions = list(range(len(days)))
    bottom = [0] * len(days)
    for severity in SEVERITIES:
        values = [counts.get(severity, 0) for _, counts in stats.per_day]
        per_day.bar(positions, values, bottom=bottom, color=COLOURS[severity],
                    label=labels["severity"][severity])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    per_day.set_title(labels["per_day"])
    step = max(1, len(days) // 15)
    per_day.set_xticks(positions[::step], [f"{d:%d.%m}" for d in days[::step]])
    per_day.legend(loc="upper left", fontsize=8)
    per_day.set_ylim(bottom=0)

    width = 0.38
    names = [labels["severity"][s] for s in SEVERITIES]
    for offset, (which, table) in zip((-width / 2, width / 2),
                                      (("response", stats.sla_response),
                                       ("resolution", stats.sla_resolution)), strict=True):
        percents = [float(table.get(s, Compliance()).percent or 0) for s in SEVERITIES]
        bars = sla.bar([i + offset for i in range(len(SEVERITIES))], percents, width,
                       label=labels[which], color="#4a78c2" if which == "response" else "#8fb0e0")
        for bar, severity in zip(bars, SEVERITIES, strict=True):
            compliance = table.get(severity, Compliance())
            if compliance.total:
                sla.annotate(f"{compliance.met}/{compliance.total}",
                             (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                             ha="center", va="bottom", fontsize=8)
    sla.set_xticks(range(len(SEVERITIES)), names)
    sla.set_ylim(0, 110)
    sla.set_ylabel("%")
    sla.set_title(labels["sla"])
    sla.legend(loc="lower right", fontsize=8)

    counts = [stats.ratings.counts.get(s, 0) for s in SCORES]
    bars = ratings.bar([labels["rating"][s] for s in SCORES], counts,
                       color=["#2e7d32", "#7cb342", "#fdd835", "#fb8c00", "#c62828"])
    for bar, score in zip(bars, SCORES, strict=True):
        ratings.annotate(f"{stats.ratings.percent[score]}%",
                         (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                         ha="center", va="bottom", fontsize=8)
    average = stats.ratings.average
    ratings.set_title(f"{labels['ratings']} ({stats.ratings.total}"
                      + (f", {average:.2f}" if average is not None else "") + ")")
    ratings.set_ylim(bottom=0, top=max([*counts, 1]) * 1.2)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def chart_labels(texts: Any, language: str, stats: Stats) -> dict[str, Any]:
    """The chart's words from the desk's templates (labels.j2)."""
    words = texts.label(language, "chart")
    return {
        **words,
        "title": f"{words['title']} {stats.period.label}"
                 + (f" · {stats.company.name}" if stats.company is not None else ""),
        "severity": texts.label(language, "severity"),
        "rating": texts.label(language, "rating"),
    }


# -- the act of performed work ----------------------------------------------------------------


@dataclass
class ActIncident:
    number: int
    opened_at: datetime
    resolved_at: datetime
    subject: str
    severity: str
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
    period: ReportPeriod
    generated_at: datetime
    incidents: list[ActIncident]
    works: list[ActWork]
    opened: int
    response: Durations
    resolution: Durations
    ratings: Distribution
    sla: Compliance

    @property
    def by_severity(self) -> dict[str, int]:
        counts = dict.fromkeys(SEVERITIES, 0)
        for incident in self.incidents:
            counts[incident.severity] = counts.get(incident.severity, 0) + 1
        return counts

    @property
    def total_resolution(self) -> timedelta:
        return sum((i.resolution for i in self.incidents), timedelta())


def _cycle_start(every: str, period: ReportPeriod) -> date:
    """Where the cycle of a periodic work that ends with the period's month begins."""
    first = period.first_day
    if every == "quarterly":
        return date(first.year, 3 * ((first.month - 1) // 3) + 1, 1)
    if every == "yearly":
        return date(first.year, 1, 1)
    return first


async def build_act(
    session: AsyncSession, company: Company, period: ReportPeriod, now: datetime, desk: str,
) -> Act:
    """The monthly act of one company: its incidents closed in the period and its planned
    works with their status (done in the work's cycle, or scheduled)."""
    members = select(Client.id).where(Client.company_id == company.id)
    rows = (await session.execute(
        select(Ticket, Client, Rating.score)
        .join(Client, Client.id == Ticket.client_id)
        .outerjoin(Rating, and_(Rating.ticket_id == Ticket.id, Rating.counted.is_(True)))
        .where(_closed_in(period), Ticket.client_id.in_(members))
        .order_by(Ticket.resolved_at, Ticket.number)
    )).all()
    incidents = []
    for ticket, client, score in rows:
        assert ticket.resolved_at is not None
        verdicts = [v for v in (ticket.first_response_met, ticket.resolution_met) if v is not None]
        incidents.append(ActIncident(
            number=ticket.number, opened_at=ticket.opened_at, resolved_at=ticket.resolved_at,
            subject=ticket.subject, severity=ticket.severity, client=client.display_name,
            assignee=ticket.assignee_name,
            response=(ticket.first_response_at - ticket.opened_at
                      if ticket.first_response_at is not None else None),
            resolution=ticket.resolved_at - ticket.opened_at, rating=score,
            resolution_text=ticket.resolution, deflected=ticket.resolution_kind == FAQ,
            sla_met=all(verdicts) if verdicts else None,
        ))
    works = []
    for planned in company.maintenance or []:
        every = planned.get("every", "monthly")
        since = _utc(_cycle_start(every, period), period.zone)
        done = await session.scalars(
            select(MaintenanceDone.done_at).where(
                MaintenanceDone.company_id == company.id, MaintenanceDone.work == planned["work"],
                MaintenanceDone.done_at >= since, MaintenanceDone.done_at < period.end,
            ).order_by(MaintenanceDone.done_at)
        )
        works.append(ActWork(planned["work"], every, list(done)))
    opened = await session.scalar(
        select(func.count()).select_from(Ticket)
        .where(_in(Ticket.opened_at, period), Ticket.client_id.in_(members))
    ) or 0
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


def _act_environment(loader: Any, zone: ZoneInfo) -> Environment:
    env = Environment(loader=loader, autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["local"] = lambda m: m.astimezone(zone).strftime("%d.%m.%Y %H:%M")
    env.filters["day"] = lambda m: m.astimezone(zone).strftime("%d.%m.%Y")
    env.filters["age"] = lambda d: age(d) if d is not None else "—"
    return env


def template_path(config: Config) -> Path | None:
    path = config.reports.act_template
    if path is None:
        return None
    base = config.source.parent if config.source is not None else Path.cwd()
    return path if path.is_absolute() else base / path


def render_act_html(act: Act, language: str, template: Path | None = None) -> str:
    """The act as a printable HTML document (A4, one page per month); `template`: a desk's
    own Jinja2 file, else the bundled bot/messaging/templates/reports/act_<language>.html."""
    if template is not None:
        env = _act_environment(FileSystemLoader(str(template.parent)), act.period.zone)
        return env.get_template(template.name).render(act=act, language=language)
    env = _act_environment(PackageLoader("bot.messaging", "templates"), act.period.zone)
    return env.get_template(f"reports/act_{language}.html").render(act=act, language=language)


CSV_HEADER = {
    "ru": ["Номер", "Открыто", "Решено", "Тема", "Важность", "Сотрудник клиента",
           "Исполнитель", "Реакция, мин", "Решение, мин", "Оценка", "SLA"],
    "en": ["Number", "Opened", "Resolved", "Subject", "Severity", "Client employee",
           "Engineer", "Response, min", "Resolution, min", "Rating", "SLA"],
}


def act_csv(act: Act, language: str) -> str:
    """The act's incidents as CSV (UTF-8; a header row, an incident per row, then totals)."""
    zone = act.period.zone
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER[language])

    def minutes(delta: timedelta | None) -> str:
        return "" if delta is None else str(round(delta.total_seconds() / 60))

    for i in act.incidents:
        writer.writerow([
            i.number, i.opened_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            i.resolved_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), i.subject, i.severity,
            i.client, i.assignee or "", minutes(i.response), minutes(i.resolution),
            i.rating or "", "" if i.sla_met is None else ("met" if i.sla_met else "breached"),
        ])
    writer.writerow([])
    total = "Итого" if language == "ru" else "Total"
    writer.writerow([total, len(act.incidents)])
    for severity, count in act.by_severity.items():
        writer.writerow([severity, count])
    return out.getvalue()


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name, flags=re.UNICODE).strip("_")[:80] or "company"


def write_act(act: Act, directory: Path, language: str,
              template: Path | None = None) -> list[Path]:
    """The act's HTML and CSV files in `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"act-{_slug(act.company.name)}-{act.period.label}"
    html = directory / f"{stem}.html"
    html.write_text(render_act_html(act, language, template), encoding="utf-8")
    table = directory / f"{stem}.csv"
    table.write_text(act_csv(act, language), encoding="utf-8-sig")
    return [html, table]


def reports_directory(config: Config) -> Path:
    path = config.reports.directory
    base = config.source.parent if config.source is not None else Path.cwd()
    return path if path.is_absolute() else base / path


def write_chart(png: bytes, directory: Path, label: str, keep_days: int = 7) -> Path:
    """Save a chart for the outbox to upload; charts older than `keep_days` are removed."""
    folder = directory / "charts"
    folder.mkdir(parents=True, exist_ok=True)
    cutoff = _time.time() - keep_days * 86400
    for old in folder.glob("stats-*.png"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    path = folder / f"stats-{_slug(label)}-{_time.time_ns()}.png"
    path.write_bytes(png)
    return path


# -- sending: /stats, /report and the monthly job ------------------------------------------------


async def send_stats(
    session: AsyncSession, notifier: Any, config: Config, period: ReportPeriod, now: datetime,
    *, chat_id: int, thread_id: int | None, priority: int, company: Company | None = None,
) -> Stats:
    """The chart (a photo) and the text summary, written to the outbox in this order. The
    chart is rendered in a worker thread so the event loop keeps serving other chats."""
    import asyncio

    texts = notifier.texts
    stats = await compute_stats(session, period, now, company=company, top=config.reports.top)
    labels = chart_labels(texts, texts.default_language, stats)
    png = await asyncio.to_thread(render_chart, stats, labels)
    path = write_chart(png, reports_directory(config), period.label)
    await notifier.out.send_file(
        chat_id, path, kind="photo", filename=f"stats-{period.label}.png",
        caption_html=texts.staff("stats_caption", stats=stats), priority=priority,
        thread_id=thread_id,
    )
    await notifier.out.send_text(chat_id, texts.staff("stats", stats=stats), priority=priority,
                                 thread_id=thread_id)
    return stats


async def send_act(
    session: AsyncSession, notifier: Any, config: Config, company: Company,
    period: ReportPeriod, now: datetime, *, chat_id: int, thread_id: int | None, priority: int,
    act: Act | None = None,
) -> Act:
    """The act as HTML and CSV files in the reports directory, both sent as documents."""
    texts = notifier.texts
    if act is None:
        act = await build_act(session, company, period, now, config.desk.name)
    language = texts.default_language
    paths = write_act(act, reports_directory(config) / "acts" / period.label, language,
                      template_path(config))
    for index, path in enumerate(paths):
        caption = texts.staff("report_caption", act=act) if index == 0 else None
        await notifier.out.send_file(chat_id, path, filename=path.name, caption_html=caption,
                                     priority=priority, thread_id=thread_id)
    return act


def first_workday(year: int, month: int, config: Config) -> date:
    holidays = set(config.desk.holidays)
    workdays = set(config.desk.workday_numbers)
    day = date(year, month, 1)
    while day.weekday() not in workdays or day in holidays:
        day += timedelta(days=1)
    return day


ACTS_SENT_PREFIX = "acts@"


async def monthly_acts(db: Any, notifier_for: Any, config: Config, now: datetime) -> int:
    """The scheduled job: on the first working day of a month, from `send_hour` on (or later
    that month if the bot was down), last month's acts of every company with incidents
    resolved or planned works go to the staff group. Once per month: a counter row
    (`counters` "acts@YYYY-MM") is taken in the same transaction as the outbox rows."""
    from storage.repos import next_number

    if not config.reports.monthly_acts:
        return 0
    zone = ZoneInfo(config.desk.timezone)
    local = now.astimezone(zone)
    day = first_workday(local.year, local.month, config)
    if local.date() < day or (local.date() == day and local.hour < config.reports.send_hour):
        return 0
    period = previous_month(now, zone)
    name = ACTS_SENT_PREFIX + period.label
    async with db.transaction() as session:
        if await next_number(session, name) != 1:
            return 0
        notifier = notifier_for(session)
        staff = config.telegram.staff_chat_id
        sent = 0
        for company in (await session.scalars(select(Company).order_by(Company.name))).all():
            act = await build_act(session, company, period, now, config.desk.name)
            if not act.incidents and not act.works:
                continue
            await send_act(session, notifier, config, company, period, now, chat_id=staff,
                           thread_id=None, priority=PRIORITY_NOTICE, act=act)
            sent += 1
        await notifier.out.send_text(staff, notifier.texts.staff(
            "report_reply", code="monthly", period=period, count=sent),
            priority=PRIORITY_NOTICE)
    return sent
