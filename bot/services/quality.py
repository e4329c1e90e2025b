"""The quarterly quality check: "is everything all right?", with what was done for the client.

Durable by construction:
- A campaign row per quarter (`quality_campaigns.period` is unique), created with one
  delivery row per active client in the same transaction, so it is started once, by the
  schedule or by `/quality send`, never twice.
- The sender writes deliveries to the outbox in batches; each batch commits its outbox
  rows together with the deliveries' status change (pending -> queued), so a crash
  loses at most an uncommitted batch, which the next run writes again: nobody gets the
  check twice and nobody is skipped. The outbox (PRIORITY_BROADCAST) does the rest: a
  broadcast never delays the replies to clients who are writing.
- A company's coordinators (`contacts`) get the company's period besides: its incidents,
  how fast they were answered, the time spent and the ratings (`coordinator_summaries` in
  bot/services/reports/jobs.py, for `periods_under_way`), once per period, whether the
  check was started by the schedule or by `/quality send`.
- The summary numbers are stored on the delivery, and the client's answer with them, so a
  client's quarters can be compared (`client_trend`).

Timing: `[quality] schedule` is a crontab in the desk's time zone; with
`first_workday_only` only its first match on a working day of [desk] in each month counts
(default: the first working day of January, April, July and October at 11:00). A check
missed because the bot was down is still started within `catch_up_days`. The check sent
in a quarter's first month summarises the quarter before it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.domain.calendar import WorkingDays
from bot.domain.enums import CampaignState, DeliveryState, OutboxStatus
from bot.domain.errors import UserError
from bot.domain.periods import (
    Period,
    PeriodError,
    PeriodKind,
    parse_month_or_quarter,
    previous_period,
)
from bot.messaging.callbacks import QualityAnswer
from bot.messaging.notify import Notifier
from bot.messaging.outbox import PRIORITY_BROADCAST, Keyboard, button
from bot.messaging.texts import Texts
from bot.services.ratings import SCORES, Distribution
from storage.db import Database
from storage.models import Client, QualityCampaign, QualityDelivery
from storage.repos.companies import Companies
from storage.repos.quality import Quality

TALK = "talk"
UNUSED = "none"  # "not used / nothing to rate": an answer, not a grade


@dataclass(frozen=True)
class Schedule:
    """When the checks go out (the [quality] schedule with the desk's working days)."""

    crontab: str
    first_workday_only: bool
    zone: ZoneInfo
    workdays: WorkingDays
    catch_up: timedelta

    @classmethod
    def from_config(cls, config: Config) -> Schedule:
        return cls(config.quality.crontab, config.quality.first_workday_only,
                   ZoneInfo(config.desk.timezone), WorkingDays.of(config.desk),
                   timedelta(days=config.quality.catch_up_days))

    def in_month(self, year: int, month: int) -> datetime | None:
        """The moment the check goes out in this month, or None if the schedule skips it."""
        trigger = CronTrigger.from_crontab(self.crontab, timezone=self.zone)
        start = datetime(year, month, 1, tzinfo=self.zone)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=self.zone)
        fire: datetime | None = trigger.get_next_fire_time(None, start)
        while fire is not None and fire < end:
            local = fire.astimezone(self.zone)
            if not self.first_workday_only or local.date() in self.workdays:
                return fire
            next_day = datetime.combine(local.date() + timedelta(days=1), time(0), self.zone)
            fire = trigger.get_next_fire_time(None, next_day)
        return None

    def due(self, now: datetime) -> datetime | None:
        """The latest scheduled moment at or before `now` within the catch-up window."""
        local = now.astimezone(self.zone)
        year, month = local.year, local.month
        for _ in range(3):  # this month and the two before (catch_up is at most 60 days)
            fire = self.in_month(year, month)
            if fire is not None and fire <= now:
                return fire if now - fire <= self.catch_up else None
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        return None

    def next_after(self, now: datetime) -> datetime | None:
        local = now.astimezone(self.zone)
        year, month = local.year, local.month
        for _ in range(24):
            fire = self.in_month(year, month)
            if fire is not None and fire > now:
                return fire
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return None


def checked_period(config: Config, moment: datetime) -> Period:
    """The period a check sent at `moment` sums up: the last complete quarter (or month,
    with `[quality] period = "month"`)."""
    return previous_period(PeriodKind(config.quality.period), moment,
                           ZoneInfo(config.desk.timezone))


# -- what was done for the client ---------------------------------------------------------


@dataclass
class Summary:
    incidents: int = 0
    closed: int = 0
    avg_response: timedelta | None = None
    sla_kept: int | None = None
    sla_total: int | None = None


async def summaries(
    session: AsyncSession, client_ids: Sequence[int], period: Period
) -> dict[int, Summary]:
    """Per client: incidents opened in the quarter, incidents resolved or closed in it, the
    average time to the first response (`first_response_at - opened_at`, incidents opened
    in the quarter that got one) and, with SLA tracking, in how many of the quarter's
    incidents with an SLA verdict every verdict was "met"."""
    result = {client_id: Summary() for client_id in client_ids}
    if not client_ids:
        return result
    start, end = period.start, period.end
    waits: dict[int, list[timedelta]] = {}
    for t in await Quality(session).tickets_of(client_ids, start, end):
        summary = result[t.client_id]
        opened_in = start <= t.opened_at < end
        if t.resolved_at is not None and start <= t.resolved_at < end:
            summary.closed += 1
        if not opened_in:
            continue
        summary.incidents += 1
        if t.first_response_at is not None:
            waits.setdefault(t.client_id, []).append(t.first_response_at - t.opened_at)
        verdicts = [v for v in (t.first_response_met, t.resolution_met) if v is not None]
        if verdicts:
            summary.sla_total = (summary.sla_total or 0) + 1
            summary.sla_kept = (summary.sla_kept or 0) + (1 if all(verdicts) else 0)
    for client_id, spans in waits.items():
        result[client_id].avg_response = sum(spans, timedelta()) / len(spans)
    return result


async def audience(session: AsyncSession, config: Config, now: datetime) -> list[int]:
    """The clients a check goes to: with an incident in the last `recent_months` months, or
    everyone who ever started the bot. Admins are not asked."""
    since = (None if config.quality.audience == "all"
             else _months_before(now, config.quality.recent_months))
    return await Quality(session).audience(with_incident_since=since,
                                           except_users=config.telegram.admins)


def _months_before(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    day = min(moment.day, 28)
    return moment.replace(year=year, month=month + 1, day=day)


# -- rendering --------------------------------------------------------------------------------


def render_check(
    texts: Texts, language: str, period: Period, summary: Summary, config: Config
) -> str:
    return texts.client(language, "quality_check", period=period, summary=summary,
                        maintenance=config.quality.maintenance)


def check_keyboard(texts: Texts, language: str, delivery_id: int) -> Keyboard:
    names = texts.label(language, "rating")

    def one(answer: str, text: str) -> dict[str, str]:
        return button(text, QualityAnswer(delivery=delivery_id, answer=answer).pack())

    return [
        [one(str(s), names[s]) for s in (5, 4, 3)],
        [one(str(s), names[s]) for s in (2, 1)],
        [one(UNUSED, texts.label(language, "unused"))],
        [one(TALK, texts.label(language, "lets_talk"))],
    ]


def summary_of(delivery: QualityDelivery) -> Summary:
    avg = delivery.avg_response_seconds
    return Summary(delivery.incidents, delivery.closed,
                   timedelta(seconds=avg) if avg is not None else None,
                   delivery.sla_kept, delivery.sla_total)


# -- campaigns ------------------------------------------------------------------------------


async def campaign_of(session: AsyncSession, label: str) -> QualityCampaign | None:
    return await Quality(session).campaign_of(label)


async def latest_campaign(session: AsyncSession) -> QualityCampaign | None:
    return await Quality(session).latest_campaign()


async def start_campaign(
    session: AsyncSession, config: Config, period: Period, now: datetime,
    started_by: int | None = None,
) -> tuple[QualityCampaign, bool]:
    """The campaign of `period` with a delivery row per active client; (campaign, created).
    An existing campaign is returned as it is: a quarter's check is never started twice."""
    existing = await campaign_of(session, period.label)
    if existing is not None:
        return existing, False
    clients = await audience(session, config, now)
    campaign = await Quality(session).add_campaign(QualityCampaign(
        period=period.label, period_start=period.start, period_end=period.end,
        status=CampaignState.RUNNING if clients else CampaignState.DONE,
        started_by=started_by, created_at=now, finished_at=None if clients else now,
    ), clients)
    return campaign, True


async def send_pending(
    db: Database, notifier_for: Callable[[AsyncSession], Notifier], config: Config,
    now: datetime, *, limit: int | None = None,
) -> int:
    """Write pending deliveries of running campaigns to the outbox, a batch per transaction;
    stops after `limit` deliveries if given. Returns how many were handled."""
    handled = 0
    zone = ZoneInfo(config.desk.timezone)
    while limit is None or handled < limit:
        size = config.quality.batch if limit is None else min(config.quality.batch,
                                                              limit - handled)
        async with db.transaction() as session:
            rows = await Quality(session).pending(size)
            if not rows:
                await _finish_campaigns(session, now)
                break
            notifier = notifier_for(session)
            by_campaign: dict[int, list[tuple[QualityDelivery, Client]]] = {}
            periods: dict[int, Period] = {}
            for delivery, client, campaign in rows:
                by_campaign.setdefault(campaign.id, []).append((delivery, client))
                periods[campaign.id] = parse_month_or_quarter(campaign.period, zone)
            for campaign_id, pairs in by_campaign.items():
                period = periods[campaign_id]
                numbers = await summaries(session, [c.id for _, c in pairs], period)
                for delivery, client in pairs:
                    await _write(notifier, config, delivery, client, period, numbers[client.id],
                                 now)
            handled += len(rows)
    return handled


async def _write(
    notifier: Notifier, config: Config, delivery: QualityDelivery, client: Client,
    period: Period, summary: Summary, now: datetime,
) -> None:
    delivery.incidents, delivery.closed = summary.incidents, summary.closed
    delivery.avg_response_seconds = (int(summary.avg_response.total_seconds())
                                     if summary.avg_response is not None else None)
    delivery.sla_kept, delivery.sla_total = summary.sla_kept, summary.sla_total
    delivery.queued_at = now
    if client.unreachable_since is not None:
        delivery.status = DeliveryState.BLOCKED  # they blocked the bot: nothing is sent
        return
    texts = notifier.texts
    row = await notifier.out.send_text(
        client.chat_id, render_check(texts, client.language, period, summary, config),
        priority=PRIORITY_BROADCAST,
        keyboard=check_keyboard(texts, client.language, delivery.id),
    )
    delivery.status = DeliveryState.QUEUED
    delivery.outbox_id = row.id


async def _finish_campaigns(session: AsyncSession, now: datetime) -> None:
    quality = Quality(session)
    for campaign in await quality.running_campaigns():
        if not await quality.pending_count(campaign.id):
            campaign.status, campaign.finished_at = CampaignState.DONE, now


async def quality_tick(
    db: Database, notifier_for: Callable[[AsyncSession], Notifier], config: Config,
    now: datetime,
) -> int:
    """Start the quarter's campaign when its time has come (once), then write whatever is
    pending (a campaign interrupted by a restart resumes here). The scheduled job is
    `quality_job` (bot/services/reports/jobs.py): this, and the coordinators' summaries."""
    if not config.quality.enabled:
        return 0
    schedule = Schedule.from_config(config)
    fire = schedule.due(now)
    if fire is not None:
        async with db.transaction() as session:
            await start_campaign(session, config, checked_period(config, fire), now)
    return await send_pending(db, notifier_for, config, now)



async def periods_under_way(db: Database, config: Config, now: datetime) -> list[Period]:
    """The periods whose check is going out: that of the schedule's moment (within the
    catch-up window) and those of running campaigns (`/quality send`'s too)."""
    if not config.quality.enabled:
        return []
    zone = ZoneInfo(config.desk.timezone)
    async with db.reading() as session:
        periods = {c.period: parse_month_or_quarter(c.period, zone)
                   for c in await Quality(session).running_campaigns()}
    fire = Schedule.from_config(config).due(now)
    if fire is not None:
        period = checked_period(config, fire)
        periods[period.label] = period
    return list(periods.values())

# -- progress and answers ------------------------------------------------------------------


@dataclass
class CampaignStatus:
    total: int = 0
    waiting: int = 0  # not yet delivered (pending, or in the outbox)
    sent: int = 0
    failed: int = 0
    blocked: int = 0
    answered: int = 0
    talk: int = 0
    unused: int = 0  # "not used / nothing to rate": answered, not a grade
    distribution: Distribution = field(default_factory=Distribution)


async def campaign_status(session: AsyncSession, campaign: QualityCampaign) -> CampaignStatus:
    status = CampaignStatus()
    for state, score, talk, unused, sent_state, error, unreachable in await Quality(
            session).outcomes(campaign.id):
        status.total += 1
        if state == DeliveryState.BLOCKED:
            status.blocked += 1
        elif state == DeliveryState.PENDING or sent_state is None:
            status.waiting += 1
        elif sent_state == OutboxStatus.SENT:
            status.sent += 1
        elif sent_state == OutboxStatus.FAILED:
            status.failed += 1
        elif (error or "").startswith("403") or unreachable is not None:
            status.blocked += 1
        else:
            status.waiting += 1
        if score is not None:
            status.answered += 1
            status.distribution.add(score)
        elif unused is not None:
            status.answered += 1
            status.unused += 1
        if talk is not None:
            status.talk += 1
            if score is None and unused is None:
                status.answered += 1
    return status


async def who_answered(
    session: AsyncSession, label: str | None
) -> tuple[QualityCampaign | None, Sequence[tuple[QualityDelivery, Client]]]:
    """`/quality who [period]`: the campaign (the latest, or of a quarter `YYYYQn` or a
    month `YYYY-MM`) and who answered what in it."""
    quality = Quality(session)
    campaign = (await quality.campaign_of(_label(label)) if label
                else await quality.latest_campaign())
    if campaign is None:
        return None, []
    return campaign, await quality.answers(campaign.id)


def _label(text: str) -> str:
    """A campaign's label as typed (`2026q4`, `2026-Q4`, `2026-3`) in its stored form."""
    try:
        return parse_month_or_quarter(text, ZoneInfo("UTC")).label
    except PeriodError:
        return text.upper()  # names no campaign: answered "no such check"


class QualityError(UserError):
    """A quality-check answer that cannot be taken (template: `quality_error`)."""


async def delivery_for(
    session: AsyncSession, client: Client, delivery_id: int
) -> tuple[QualityDelivery, QualityCampaign]:
    """The client's own delivered check, or QualityError (forged or someone else's)."""
    if delivery_id == 0:
        raise QualityError("test")
    quality = Quality(session)
    delivery = await quality.delivery(delivery_id)
    if (delivery is None or delivery.client_id != client.id
            or delivery.status != DeliveryState.QUEUED):
        raise QualityError("invalid")
    campaign = await quality.campaign(delivery.campaign_id)
    assert campaign is not None
    return delivery, campaign


def score_of(answer: str) -> int:
    if not answer.isdigit() or int(answer) not in SCORES:
        raise QualityError("invalid")
    return int(answer)


async def client_trend(session: AsyncSession, client_id: int) -> list[dict[str, Any]]:
    """A client's quarters, oldest first: the summary numbers and their answer."""
    return [
        {"period": period, "score": d.score, "incidents": d.incidents, "closed": d.closed,
         "avg_response_seconds": d.avg_response_seconds, "sla_kept": d.sla_kept,
         "sla_total": d.sla_total, "talk": d.talk_ticket_id is not None,
         "unused": d.unused_at is not None}
        for period, d in await Quality(session).quarters_of(client_id)
    ]


@dataclass
class QuarterTrend:
    """A company's answers in one quarter's check (its employees' client trends summed)."""

    period: str
    distribution: Distribution = field(default_factory=Distribution)
    unused: int = 0  # "not used / nothing to rate"
    asked: int = 0


async def company_trends(
    session: AsyncSession, company_id: int | None = None
) -> dict[int, list[QuarterTrend]]:
    """Per company (or of one), its checks' answers, oldest period first."""
    by_company: dict[int, dict[str, QuarterTrend]] = {}
    for row in await Quality(session).company_checks(company_id):
        periods = by_company.setdefault(row.company_id, {})
        trend = periods.setdefault(row.period, QuarterTrend(row.period))
        trend.asked += 1
        if row.score is not None:
            trend.distribution.add(row.score)
        elif row.unused_at is not None:
            trend.unused += 1
    return {company: list(periods.values()) for company, periods in by_company.items()}


async def company_trend(session: AsyncSession, company_id: int) -> list[QuarterTrend]:
    """The company's checks, oldest first (shown by /org and /stats of a company)."""
    return (await company_trends(session, company_id)).get(company_id, [])


async def answered_trends(session: AsyncSession) -> list[tuple[str, list[QuarterTrend]]]:
    """The desk-wide /stats: (name, trend) of each company whose employees answered a
    check, by name."""
    trends = {company: trend for company, trend in (await company_trends(session)).items()
              if any(t.distribution.total or t.unused for t in trend)}
    names = await Companies(session).names(trends)
    return sorted(((names[c], t) for c, t in trends.items()), key=lambda row: row[0].lower())
