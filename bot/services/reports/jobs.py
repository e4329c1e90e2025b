"""Reports on their way out: /stats and /report answers, the monthly acts job, and the
coordinators' summary of their company's period (with the quality check)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.domain.calendar import WorkingDays
from bot.domain.errors import UserError
from bot.domain.periods import Period, parse_period, previous_month
from bot.messaging.notify import Notifier
from bot.messaging.outbox import PRIORITY_BROADCAST, PRIORITY_NOTICE, PRIORITY_REPLY
from bot.messaging.texts import Texts
from bot.services import companies as org
from bot.services.companies import coordinators
from bot.services.desk import Level
from bot.services.quality import periods_under_way, quality_tick
from bot.services.reports.act import Act, build_act
from bot.services.reports.render import (
    chart_labels,
    render_chart,
    reports_directory,
    template_path,
    write_act,
    write_chart,
)
from bot.services.reports.stats import Stats, compute_stats
from storage.db import Database
from storage.models import Client, Company
from storage.repos.companies import Companies
from storage.repos.counters import next_number, read_counter

log = logging.getLogger(__name__)

ACTS_SENT_PREFIX = "acts@"
SUMMARY_SENT_PREFIX = "summary@"


class ReportError(UserError):
    """A report request that cannot be done (template: `report_reply`)."""


@dataclass(frozen=True)
class ReportDesk:
    """/stats, /report and the card of `/org <name>`, answered after the update's commit (the
    handler queues them in `after_commit`): nothing of this runs while the write lock is
    held. The figures are read on a session of their own beside the writer
    (`Database.reading`), the chart and the act's files are made in a worker thread, and the
    answer goes to the outbox in a short transaction of its own. A failure is told to the
    chat asked (`report_reply` "failed") and logged, never dropped."""

    db: Database
    notifier_for: Callable[[AsyncSession], Notifier]
    config: Config
    texts: Texts
    wake: Callable[[], None]  # the delivery worker, once the answer is in the outbox

    async def send_stats(
        self, period: Period, now: datetime, *, chat_id: int, thread_id: int | None,
        priority: int,
    ) -> Stats | None:
        """The chart (a photo) and the text summary, in this order."""
        texts, config = self.texts, self.config
        try:
            async with self.db.reading() as session:
                stats = await compute_stats(session, period, now, top=config.reports.top,
                                            hour_cost=config.reports.hour_cost)
            labels = chart_labels(texts, texts.default_language, stats)
            path = await asyncio.to_thread(chart_file, config, stats, labels)
        except Exception:
            log.exception("/stats %s failed", period.label)
            await self._failed(period, chat_id=chat_id, thread_id=thread_id, priority=priority)
            return None
        async with self.db.transaction() as session:
            out = self.notifier_for(session).out
            await out.send_file(
                chat_id, path, kind="photo", filename=f"stats-{period.label}.png",
                caption_html=texts.staff("stats_caption", stats=stats), priority=priority,
                thread_id=thread_id,
            )
            await out.send_text(chat_id, texts.staff("stats", stats=stats), priority=priority,
                                thread_id=thread_id)
        self.wake()
        return stats

    async def send_org_card(
        self, company: Company, now: datetime, *, link: org.Invite, level: Level | None,
        chat_id: int, thread_id: int | None,
    ) -> Stats | None:
        """`/org <name>`: the company's card, its open incidents and this month's figures."""
        period = parse_period("month", now, self.texts.zone)
        try:
            async with self.db.reading() as session:
                open_rows = await org.open_incidents(session, company)
                people = await org.employee_count(session, company)
                stats = await compute_stats(session, period, now, company=company)
        except Exception:
            log.exception("/org %s failed", company.name)
            await self._failed(period, chat_id=chat_id, thread_id=thread_id,
                               priority=PRIORITY_REPLY)
            return None
        card = self.texts.staff("org_card", company=company, link=link, stats=stats,
                                open_rows=open_rows, people=people, level=level, now=now)
        async with self.db.transaction() as session:
            await self.notifier_for(session).reply_staff(chat_id, thread_id, card)
        self.wake()
        return stats

    async def send_act(
        self, company: Company, period: Period, now: datetime, *, chat_id: int,
        thread_id: int | None, priority: int,
    ) -> Act | None:
        """The act as PDF (when it can be made), HTML and CSV files in the reports directory,
        all sent as documents."""
        config = self.config
        try:
            async with self.db.reading() as session:
                act = await build_act(session, company, period, now, config.desk.name,
                                      config.reports.place)
            paths = await asyncio.to_thread(write_act_files, config, act)
        except Exception:
            log.exception("/report %s %s failed", company.name, period.label)
            await self._failed(period, chat_id=chat_id, thread_id=thread_id, priority=priority)
            return None
        async with self.db.transaction() as session:
            await send_act_files(self.notifier_for(session), act, paths, chat_id=chat_id,
                                 thread_id=thread_id, priority=priority)
        self.wake()
        return act

    async def _failed(self, period: Period, *, chat_id: int, thread_id: int | None,
                      priority: int) -> None:
        async with self.db.transaction() as session:
            notifier = self.notifier_for(session)
            await notifier.out.send_text(chat_id, notifier.texts.staff(
                "report_reply", code="failed", period=period), priority=priority,
                thread_id=thread_id)
        self.wake()


def chart_file(config: Config, stats: Stats, labels: dict[str, Any]) -> Path:
    """The chart of `stats` rendered and written to the reports directory (CPU and disk:
    run it in a worker thread)."""
    return write_chart(render_chart(stats, labels), reports_directory(config),
                       stats.period.label)


def write_act_files(config: Config, act: Act) -> list[Path]:
    """The act's files, in the desk's language, with its company's template if it has one."""
    return write_act(act, reports_directory(config) / "acts" / act.period.label,
                     config.desk.language, template_path(config, act.company))


async def send_act_files(
    notifier: Notifier, act: Act, paths: Sequence[Path], *, chat_id: int,
    thread_id: int | None, priority: int, contacts: Sequence[Client] = (),
) -> None:
    """The act's files to the chat asked, and to the company's coordinators (`contacts`)."""
    texts = notifier.texts
    for index, path in enumerate(paths):
        caption = texts.staff("report_caption", act=act) if index == 0 else None
        await notifier.out.send_file(chat_id, path, filename=path.name, caption_html=caption,
                                     priority=priority, thread_id=thread_id)
        for contact in contacts:
            note = texts.client(contact.language, "act_sent", ticket=None, act=act) \
                if index == 0 else None
            await notifier.out.send_file(contact.chat_id, path, filename=path.name,
                                         caption_html=note, priority=priority)


async def monthly_acts(
    db: Database, notifier_for: Callable[[AsyncSession], Notifier], config: Config,
    now: datetime,
) -> int:
    """The scheduled job: on the first working day of a month, from `send_hour` on (or later
    that month if the bot was down), last month's acts of every company with incidents
    resolved or planned works go to the staff group. Once per month: a counter row
    (`counters` "acts@YYYY-MM") is taken in the same transaction as the outbox rows."""
    if not config.reports.monthly_acts:
        return 0
    zone = ZoneInfo(config.desk.timezone)
    local = now.astimezone(zone)
    day = WorkingDays.of(config.desk).first_in_month(local.year, local.month)
    if local.date() < day or (local.date() == day and local.hour < config.reports.send_hour):
        return 0
    period = previous_month(now, zone)
    counter = ACTS_SENT_PREFIX + period.label
    # Three steps, so that nothing slow (the queries over the month, a PDF takes about a
    # second) runs while the database's write lock is held: the acts are gathered on a
    # read session, rendered outside any transaction, then sent in the one that takes the
    # month's counter (which checks it again).
    acts: list[tuple[Act, list[Client]]] = []
    async with db.reading() as session:
        if await read_counter(session, counter):
            return 0
        for company in await Companies(session).all():
            act = await build_act(session, company, period, now, config.desk.name,
                                  config.reports.place)
            if act.incidents or act.works:
                acts.append((act, await coordinators(session, company)))
    files = [await asyncio.to_thread(write_act_files, config, act) for act, _ in acts]
    async with db.transaction() as session:
        if await next_number(session, counter) != 1:
            return 0  # another worker sent them meanwhile
        notifier = notifier_for(session)
        staff = notifier.staff_chat_id
        for (act, contacts), paths in zip(acts, files, strict=True):
            await send_act_files(notifier, act, paths, chat_id=staff, thread_id=None,
                                 priority=PRIORITY_NOTICE, contacts=contacts)
        await notifier.out.send_text(staff, notifier.texts.staff(
            "report_reply", code="monthly", period=period, count=len(acts)),
            priority=PRIORITY_NOTICE)
    return len(acts)


async def quality_job(
    db: Database, notifier_for: Callable[[AsyncSession], Notifier], config: Config,
    now: datetime,
) -> int:
    """The scheduled quality job: the clients' check (`quality_tick`), and to the companies'
    coordinators their company's period, once the check of the period is under way."""
    handled = await quality_tick(db, notifier_for, config, now)
    for period in await periods_under_way(db, config, now):
        await coordinator_summaries(db, notifier_for, config, period, now)
    return handled


async def coordinator_summaries(
    db: Database, notifier_for: Callable[[AsyncSession], Notifier], config: Config,
    period: Period, now: datetime,
) -> int:
    """The period of each company with coordinators (`contacts`), to them: incidents, how
    fast they were answered, the time spent, the ratings and the planned works. Once per
    period: gathered on a read session, written in the transaction that takes the period's
    counter ("summary@<period>", checked again there). Returns how many coordinators were
    written to."""
    counter = SUMMARY_SENT_PREFIX + period.label
    sends: list[tuple[Act, list[Client]]] = []
    async with db.reading() as session:
        if await read_counter(session, counter):
            return 0
        for company in await Companies(session).all():
            reachable = [c for c in await coordinators(session, company)
                         if c.unreachable_since is None]
            if reachable:
                sends.append((await build_act(session, company, period, now,
                                              config.desk.name), reachable))
    async with db.transaction() as session:
        if await next_number(session, counter) != 1:
            return 0  # another worker, or a tick before this one, wrote them
        notifier = notifier_for(session)
        for act, contacts in sends:
            for contact in contacts:
                await notifier.out.send_text(contact.chat_id, notifier.texts.client(
                    contact.language, "company_summary", ticket=None, act=act),
                    priority=PRIORITY_BROADCAST)
    return sum(len(contacts) for _, contacts in sends)

