"""Planned works are reminded (bot/domain/maintenance.py says when each falls due).

The sweep runs at start-up and then hourly: a company's planned work due within
REMIND_DAYS and not done gets a line in the staff group, once per due date, and once
more when it is overdue. What was posted is a `maintenance_reminders` row (company, work,
due date, kind), written in the transaction of the outbox row, so neither a second run nor
a restart posts it again. `/org done` moves the due date on: the next one is reminded anew.
A work never done falls due when its company was added: at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.domain.maintenance import next_due
from bot.messaging.notify import Notifier
from bot.messaging.outbox import PRIORITY_STAFF
from storage.db import Database
from storage.models import MaintenanceReminder
from storage.repos.companies import Companies

REMIND_DAYS = 7
SWEEP_SECONDS = 3600


@dataclass(frozen=True)
class Reminder:
    company: str
    work: str
    due: date
    kind: str  # due | overdue
    days: int  # days until the due date (negative: overdue by)


async def maintenance_sweep(
    db: Database, notifier_for: Callable[[AsyncSession], Notifier], config: Config,
    now: datetime,
) -> int:
    """Post the planned works due within REMIND_DAYS or overdue, each once; returns how
    many reminders were posted."""
    zone = ZoneInfo(config.desk.timezone)
    today = now.astimezone(zone).date()
    async with db.transaction() as session:
        companies = Companies(session)
        reminders: list[Reminder] = []
        for company in await companies.all():
            for planned in company.maintenance or []:
                work, every = planned["work"], planned.get("every", "monthly")
                last = await companies.last_done(company.id, work, now)
                start = company.created_at.astimezone(zone).date()
                due = next_due(every, last.astimezone(zone).date() if last else None, start)
                kind = ("overdue" if due < today
                        else "due" if due <= today + timedelta(days=REMIND_DAYS) else None)
                if kind is None or await companies.reminded(company.id, work, due, kind):
                    continue
                await companies.add_reminder(MaintenanceReminder(
                    company_id=company.id, work=work, due_on=due.isoformat(), kind=kind,
                    sent_at=now))
                reminders.append(Reminder(company.name, work, due, kind, (due - today).days))
        if reminders:
            notifier = notifier_for(session)
            await notifier.out.send_text(
                notifier.staff_chat_id,
                notifier.texts.staff("maintenance_due", rows=reminders),
                priority=PRIORITY_STAFF)
    return len(reminders)
