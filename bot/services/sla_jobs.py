"""Scheduled jobs: plain async functions over the database, run by APScheduler every minute.

The scheduler only ticks; durable state lives in the incident rows. Each job
selects what is due *and not yet done* (a flag or a timestamp on the incident),
does it, and sets the flag in the same transaction as the outbox rows it writes,
so running a job twice, many times, or again after a restart changes nothing.
Tests call the functions directly with a fixed `now`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.domain.enums import ActorKind, EventKind, Severity
from bot.messaging.notify import Notifier
from bot.messaging.outbox import PRIORITY_STAFF
from bot.services.desk import Desk, mention
from storage.db import Database
from storage.models import Ticket, TicketEvent
from storage.repos.companies import Companies
from storage.repos.events import TicketEvents
from storage.repos.tickets import TicketMessages, Tickets

NotifierFactory = Callable[[AsyncSession], Notifier]

# Above this many notices in one run (a mass outage) staff get one summary message
# instead of a line in each incident's thread: the group's rate limit is 20 a minute.
DETAIL_LIMIT = 10
BATCH = 500


@dataclass
class SweepResult:
    warned: list[tuple[int, str]] = field(default_factory=list)  # (ticket number, target)
    breached: list[tuple[int, str]] = field(default_factory=list)
    reminded: list[int] = field(default_factory=list)

    @property
    def wrote(self) -> bool:
        return bool(self.warned or self.breached or self.reminded)


async def sla_sweep(
    db: Database, notifier_for: NotifierFactory, config: Config, now: datetime
) -> SweepResult:
    """Warn the staff group at `warn_at` of a target and escalate at its breach, once each."""
    result = SweepResult()
    async with db.transaction() as session:
        tickets = await Tickets(session).sla_notices_due(now, BATCH)
        if not tickets:
            return result
        notices: list[tuple[Ticket, str, str, datetime]] = []
        for ticket in tickets:
            for target in ("first_response", "resolution"):
                due = getattr(ticket, f"{target}_due")
                warn_due = getattr(ticket, f"{target}_warn_due")
                breached = getattr(ticket, f"{target}_breached_at") is not None
                if due is not None and due <= now and not breached:
                    setattr(ticket, f"{target}_breached_at", now)
                    # A breach found first (e.g. after downtime) makes the warning moot.
                    if getattr(ticket, f"{target}_warned_at") is None:
                        setattr(ticket, f"{target}_warned_at", now)
                    notices.append((ticket, target, "breach", due))
                    result.breached.append((ticket.number, target))
                elif (warn_due is not None and warn_due <= now
                      and getattr(ticket, f"{target}_warned_at") is None):
                    setattr(ticket, f"{target}_warned_at", now)
                    notices.append((ticket, target, "warn", due))
                    result.warned.append((ticket.number, target))
        events = TicketEvents(session)
        for ticket, target, kind, _due_at in notices:
            await events.add(TicketEvent(
                ticket_id=ticket.id, at=now, actor_kind=ActorKind.SYSTEM, actor_id=None,
                actor_name=None,
                kind=EventKind.SLA_BREACH if kind == "breach" else EventKind.SLA_WARNING,
                old_value=None, new_value=target,
            ))
        notifier = notifier_for(session)
        escalation = list(config.sla.escalation)
        if len(notices) > DETAIL_LIMIT:
            await _summary(notifier, "sla_summary", notices, escalation)
            return result
        managers = await Companies(session).managers_of({t.id for t, *_ in notices})
        for ticket, target, kind, due_at in notices:
            if kind == "breach":
                manager = managers.get(ticket.id)
                await notifier.staff_line(ticket, "sla_breach", target=target, due=due_at,
                                          mentions=escalation + ([mention(manager)]
                                                                 if manager else []))
            else:
                await notifier.staff_line(ticket, "sla_warning", target=target, due=due_at,
                                          left=due_at - now if due_at else timedelta(0))
    return result


async def _summary(
    notifier: Notifier, message: str, notices: Sequence[tuple[Ticket, str, str, datetime]],
    mentions: list[int | str],
) -> None:
    rows = [(ticket.number, target, kind) for ticket, target, kind, _ in notices]
    await notifier.out.send_text(
        notifier.staff_chat_id,
        notifier.texts.staff(message, rows=rows, mentions=mentions),
        priority=PRIORITY_STAFF,
    )


async def status_reminders(
    db: Database, notifier_for: NotifierFactory, config: Config, now: datetime
) -> SweepResult:
    """An open critical incident (`status_reminder_hours`) or normal one
    (`status_reminder_normal_hours`) with no message to its client for that long: the client
    gets a status update that says what is true (the engineer's last words, who is on it,
    when the next update comes) and the assignee a reminder, once per interval."""
    result = SweepResult()
    intervals = {severity: timedelta(hours=hours) for severity, hours in (
        (Severity.CRITICAL, config.sla.status_reminder_hours),
        (Severity.NORMAL, config.sla.status_reminder_normal_hours)) if hours > 0}
    if not intervals:
        return result
    async with db.transaction() as session:
        rows = await Tickets(session).quiet(
            {severity: now - every for severity, every in intervals.items()}, BATCH)
        if not rows:
            return result
        notifier = notifier_for(session)
        detailed = len(rows) <= DETAIL_LIMIT
        on_duty = list(config.sla.on_duty)
        hours_text = f"{config.sla.status_reminder_hours:g}"
        events = TicketEvents(session)
        messages = TicketMessages(session)
        for ticket, client in rows:
            every = intervals[ticket.severity]
            ticket.client_updated_at = now
            await events.add(TicketEvent(
                ticket_id=ticket.id, at=now, actor_kind=ActorKind.SYSTEM, actor_id=None,
                actor_name=None, kind=EventKind.STATUS_REMINDER, old_value=None,
                new_value=ticket.status,
            ))
            await notifier.to_client(ticket, client, "status_reminder",
                                     signature=notifier.worker(ticket),
                                     last_words=await messages.last_staff_text(ticket.id),
                                     next_at=now + every)
            if detailed:
                await notifier.staff_line(
                    ticket, "reminder_line", assignee_id=ticket.assignee_id,
                    assignee_name=ticket.assignee_name, hours=f"{every / timedelta(hours=1):g}",
                    mentions=on_duty,
                )
            result.reminded.append(ticket.number)
        if not detailed:
            await notifier.out.send_text(
                notifier.staff_chat_id,
                notifier.texts.staff("reminder_summary", numbers=result.reminded,
                                     hours=hours_text, mentions=on_duty),
                priority=PRIORITY_STAFF,
            )
    return result


DeskFactory = Callable[[AsyncSession, datetime], Desk]


async def confirm_sweep(db: Database, desk_for: DeskFactory, now: datetime) -> int:
    """The scheduled job: resolved incidents not objected to within `[desk] confirm_days`
    are closed ("solved -> closed"); returns how many. Idempotent: a closed incident is no
    longer resolved."""
    async with db.transaction() as session:
        return len(await desk_for(session, now).close_unobjected())


async def run_all(
    db: Database, notifier_for: NotifierFactory, config: Config, now: datetime
) -> bool:
    """One tick of every job; True when something was written to the outbox."""
    sweep = await sla_sweep(db, notifier_for, config, now)
    reminders = await status_reminders(db, notifier_for, config, now)
    return sweep.wrote or reminders.wrote
