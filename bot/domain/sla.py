"""SLA: what each severity promises, and the timers kept on the incident.

Targets come from `[sla]` (per severity: first response and resolution, in
business hours of `[desk]` or around the clock). An incident stores when each
target falls due and when to warn, so the sweep (bot/services/sla_jobs.py) compares columns
with the clock and nothing more. The due times are recomputed from the audit
trail only when something changes them: a pause starts or ends, the severity
changes, the incident is reopened.

The clock stops while the incident waits for the client (status `waiting`) and
while it is resolved or closed (a reopened incident continues where it stopped).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.config import DeskConfig, SlaConfig, SlaTarget
from bot.domain.calendar import CALENDAR_24X7, BusinessCalendar, Pause, SlaClock
from bot.domain.enums import Severity, TicketStatus

PAUSED_STATUSES = frozenset({TicketStatus.WAITING, TicketStatus.VENDOR, TicketStatus.RESOLVED,
                             TicketStatus.CLOSED})
WAITING_STATUSES = frozenset({TicketStatus.WAITING, TicketStatus.VENDOR})
TARGETS = ("first_response", "resolution")


class Timed(Protocol):
    """What the policy reads of an incident (storage.models.Ticket). It also keeps, per
    target of TARGETS, `<target>_due`, `_warn_due`, `_warned_at`, `_breached_at`, `_met`
    and `_seconds`, set by name."""

    @property
    def severity(self) -> Severity: ...
    @property
    def opened_at(self) -> datetime: ...
    @property
    def first_response_at(self) -> datetime | None: ...
    @property
    def first_response_due(self) -> datetime | None: ...
    @property
    def resolution_due(self) -> datetime | None: ...


class StatusChange(Protocol):
    """What pauses are read from: an entry of the audit trail (storage.models.TicketEvent)."""

    @property
    def id(self) -> int | None: ...
    @property
    def at(self) -> datetime: ...
    @property
    def kind(self) -> str: ...
    @property
    def new_value(self) -> str | None: ...


@dataclass(frozen=True)
class Duration:
    """A promised time as people say it: 2 hours, 4 business hours, 3 business days."""

    value: int | float
    unit: str  # minutes | hours | days
    business: bool


@dataclass(frozen=True)
class Promise:
    """What the registration message promises, in plain words (rendered by the templates)."""

    severity: str
    response: Duration
    resolution: Duration
    around_the_clock: bool
    # When the desk is closed now (for a business-hours severity): when it opens, local time.
    back_at: datetime | None
    back_day: str | None  # today | tomorrow | weekday | date
    # Whether critical incidents are handled around the clock (the note for closed hours).
    critical_around_the_clock: bool


@dataclass(frozen=True)
class Target:
    first_response: timedelta
    resolution: timedelta
    calendar: BusinessCalendar

    def of(self, name: str) -> timedelta:
        return self.first_response if name == "first_response" else self.resolution


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)


Terms = Mapping[str, Any]
"""A company's service level as kept on its incidents (tickets.sla_terms): {"sla":
{severity: {key of [sla.<severity>]: value}}, "desk": {key of [desk]: value}}."""


def terms_of(sla: Mapping[str, Any] | None, work_time: Mapping[str, Any] | None) -> Terms | None:
    """The terms of a company's overrides; None when it has none (the desk's own)."""
    terms = {key: dict(value) for key, value in (("sla", sla), ("desk", work_time)) if value}
    return terms or None


class SlaPolicy:
    """The targets of a desk (or of one company's contract: `for_terms`), and the
    arithmetic that turns them into due times."""

    def __init__(self, desk: DeskConfig, sla: SlaConfig) -> None:
        self.config = sla
        self.desk = desk
        self._of_terms: dict[str, SlaPolicy] = {}
        self.calendar = BusinessCalendar(
            desk.timezone, desk.workday_numbers, desk.work_start, desk.work_end, desk.holidays
        )
        start, end = desk.work_start, desk.work_end
        self.business_day = timedelta(
            hours=end.hour - start.hour, minutes=end.minute - start.minute,
            seconds=end.second - start.second,
        )

    def for_terms(self, terms: Terms | None) -> SlaPolicy:
        """The policy of a company's terms over this desk's (this one for None)."""
        if not terms:
            return self
        key = json.dumps(terms, sort_keys=True, default=str)
        policy = self._of_terms.get(key)
        if policy is None:
            policy = SlaPolicy(self.desk.overridden(terms.get("desk") or {}),
                               self.config.overridden(terms.get("sla") or {}))
            self._of_terms[key] = policy
        return policy

    def calendar_for(self, severity: str) -> BusinessCalendar:
        return self.calendar if self.config.target(severity).business else CALENDAR_24X7

    def _length(self, target: SlaTarget, name: str) -> timedelta:
        hours: float | None = getattr(target, f"{name}_hours")
        days: float = getattr(target, f"{name}_days")
        if hours is not None:
            return timedelta(hours=hours)
        return (self.business_day if target.business else timedelta(days=1)) * days

    def target(self, severity: str) -> Target:
        config = self.config.target(severity)
        return Target(
            first_response=self._length(config, "response"),
            resolution=self._length(config, "resolution"),
            calendar=self.calendar_for(severity),
        )

    @staticmethod
    def _duration(target: SlaTarget, name: str) -> Duration:
        hours, days = getattr(target, f"{name}_hours"), getattr(target, f"{name}_days")
        if days is not None:
            return Duration(_number(days), "days", target.business)
        if hours < 1:
            return Duration(_number(hours * 60), "minutes", target.business)
        return Duration(_number(hours), "hours", target.business)

    def promise(self, severity: str, now: datetime) -> Promise:
        config = self.config.target(severity)
        back_at: datetime | None = None
        back_day: str | None = None
        if config.business and not self.calendar.is_open(now):
            opens = self.calendar.next_open(now)
            back_at = opens.astimezone(self.calendar.zone)
            today = now.astimezone(self.calendar.zone).date()
            days = (back_at.date() - today).days
            back_day = ("today" if days == 0 else "tomorrow" if days == 1
                        else "weekday" if days < 7 else "date")
        return Promise(
            severity=severity,
            response=self._duration(config, "response"),
            resolution=self._duration(config, "resolution"),
            around_the_clock=not config.business,
            back_at=back_at,
            back_day=back_day,
            critical_around_the_clock=not self.config.critical.business,
        )

    # -- the timers on an incident ------------------------------------------------------

    def schedule(self, ticket: Timed, pauses: Sequence[Pause], now: datetime,
                 *, new_target: bool = False) -> None:
        """(Re)compute the due and warning times of the targets not yet met.

        With `new_target` (the severity changed) a warning or breach already told is
        forgotten when its moment, under the new target, is still ahead.
        """
        target = self.target(ticket.severity)
        for name in TARGETS:
            if getattr(ticket, f"{name}_met") is not None or (
                name == "first_response" and ticket.first_response_at is not None
            ):
                setattr(ticket, f"{name}_due", None)
                setattr(ticket, f"{name}_warn_due", None)
                continue
            length = target.of(name)
            due = SlaClock.due_at(ticket.opened_at, length, pauses, target.calendar)
            warn = SlaClock.due_at(ticket.opened_at, length * self.config.warn_at, pauses,
                                   target.calendar)
            setattr(ticket, f"{name}_due", due)
            setattr(ticket, f"{name}_warn_due", warn)
            if new_target:
                if warn is None or warn > now:
                    setattr(ticket, f"{name}_warned_at", None)
                if due is None or due > now:
                    setattr(ticket, f"{name}_breached_at", None)

    def record(self, ticket: Timed, name: str, pauses: Sequence[Pause], now: datetime) -> None:
        """A target is reached (first response given, or resolved): store time and verdict."""
        target = self.target(ticket.severity)
        spent = SlaClock.elapsed(ticket.opened_at, now, pauses, target.calendar)
        setattr(ticket, f"{name}_seconds", int(spent.total_seconds()))
        setattr(ticket, f"{name}_met", spent <= target.of(name))
        setattr(ticket, f"{name}_due", None)
        setattr(ticket, f"{name}_warn_due", None)

    def remaining(self, ticket: Timed, now: datetime) -> tuple[str, timedelta] | None:
        """The nearest pending target and the time left (negative when overdue)."""
        for name in TARGETS:
            due = getattr(ticket, f"{name}_due")
            if due is not None:
                return name, due - now
        return None


def pauses_from_events(events: Sequence[StatusChange]) -> list[Pause]:
    """Intervals the incident spent off the clock, from its status changes in the trail."""
    pauses: list[Pause] = []
    since: datetime | None = None
    for event in sorted(events, key=lambda e: (e.at, e.id or 0)):
        if event.kind not in ("status", "reopened") or event.new_value is None:
            continue
        paused = event.new_value in PAUSED_STATUSES
        if paused and since is None:
            since = event.at
        elif not paused and since is not None:
            pauses.append((since, event.at))
            since = None
    if since is not None:
        pauses.append((since, None))
    return pauses


def waited(
    events: Sequence[StatusChange], status: str, start: datetime, end: datetime
) -> timedelta:
    """How long the incident of these events spent in `status` within [start, end) (an
    interval still open runs to `end`): the time waited for a third party, shown apart."""
    total = timedelta()
    since: datetime | None = None
    for event in sorted(events, key=lambda e: (e.at, e.id or 0)):
        if event.kind not in ("status", "reopened") or event.new_value is None:
            continue
        if event.new_value == status and since is None:
            since = event.at
        elif event.new_value != status and since is not None:
            total += max(timedelta(), min(event.at, end) - max(since, start))
            since = None
    if since is not None:
        total += max(timedelta(), end - max(since, start))
    return total


def sort_key(ticket: Timed) -> tuple[int, datetime]:
    """Soonest due first; paused incidents (no due time) after all running ones."""
    dues = [d for d in (ticket.first_response_due, ticket.resolution_due) if d is not None]
    if dues:
        return 0, min(dues)
    return 1, ticket.opened_at
