"""Working days, business hours and the SLA clock.

The contract promises response times in business time (critical tickets may be
measured around the clock). All instants in and out are timezone-aware UTC; the
calendar converts to its own timezone internally, so working hours follow the
desk's wall clock across DST changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config import DeskConfig

Pause = tuple[datetime, datetime | None]
"""An interval while the ticket waits for the client; `None` end = still waiting."""


def _require_aware(at: datetime, name: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {at.isoformat()}")


@dataclass(frozen=True)
class WorkingDays:
    """Which local dates are working days: the weekdays of [desk] minus its holidays."""

    weekdays: frozenset[int]  # 0 (Mon) .. 6 (Sun)
    holidays: frozenset[date] = frozenset()

    @classmethod
    def of(cls, desk: DeskConfig) -> WorkingDays:
        return cls(frozenset(desk.workday_numbers), frozenset(desk.holidays))

    def __contains__(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays

    def first_in_month(self, year: int, month: int) -> date:
        day = date(year, month, 1)
        while day not in self:
            day += timedelta(days=1)
        return day


class BusinessCalendar:
    """Working days and hours of one desk in one timezone."""

    def __init__(
        self,
        timezone: str,
        workdays: Iterable[int],
        start: time,
        end: time,
        holidays: Iterable[date] = (),
        *,
        around_the_clock: bool = False,
    ) -> None:
        self.timezone = timezone
        self.zone = ZoneInfo(timezone)
        self.days = WorkingDays(frozenset(workdays), frozenset(holidays))
        self.start = start
        self.end = end
        self.around_the_clock = around_the_clock
        if around_the_clock:
            return
        if not self.days.weekdays:
            raise ValueError("workdays must not be empty")
        if not self.days.weekdays <= set(range(7)):
            raise ValueError(
                f"workdays must be 0 (Mon) .. 6 (Sun), got {sorted(self.days.weekdays)}")
        if start >= end:
            # Overnight shifts are not supported: a business day is one local date.
            raise ValueError(f"start {start} must be before end {end}")

    def __repr__(self) -> str:
        if self.around_the_clock:
            return "BusinessCalendar(around_the_clock=True)"
        return (
            f"BusinessCalendar({self.timezone!r}, workdays={sorted(self.days.weekdays)}, "
            f"{self.start}-{self.end}, holidays={len(self.days.holidays)})"
        )

    def _open_intervals(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """UTC (open, close) of each business day, from the local day of `since` onwards."""
        day = since.astimezone(self.zone).date()
        while True:
            if day in self.days:
                opens = datetime.combine(day, self.start, tzinfo=self.zone).astimezone(UTC)
                closes = datetime.combine(day, self.end, tzinfo=self.zone).astimezone(UTC)
                yield opens, closes
            day += timedelta(days=1)

    def is_open(self, at: datetime) -> bool:
        _require_aware(at, "at")
        if self.around_the_clock:
            return True
        local = at.astimezone(self.zone)
        return local.date() in self.days and self.start <= local.time() < self.end

    def next_open(self, at: datetime) -> datetime:
        """The first moment at or after `at` when the desk is open."""
        _require_aware(at, "at")
        at = at.astimezone(UTC)
        if self.around_the_clock:
            return at
        for opens, closes in self._open_intervals(at):
            if at < closes:
                return max(at, opens)
        raise AssertionError("unreachable: the calendar yields business days forever")

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when `duration` of business time has passed since `start`."""
        _require_aware(start, "start")
        if duration < timedelta(0):
            raise ValueError(f"duration must not be negative, got {duration}")
        start = start.astimezone(UTC)
        if self.around_the_clock or not duration:
            return start + duration
        remaining = duration
        for opens, closes in self._open_intervals(start):
            begin = max(start, opens)
            if begin >= closes:
                continue
            available = closes - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise AssertionError("unreachable: the calendar yields business days forever")

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time between two instants (zero if `end` is not after `start`)."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return timedelta(0)
        if self.around_the_clock:
            return end - start
        total = timedelta(0)
        for opens, closes in self._open_intervals(start):
            if opens >= end:
                break
            overlap = min(closes, end) - max(opens, start)
            if overlap > timedelta(0):
                total += overlap
        return total


CALENDAR_24X7 = BusinessCalendar("UTC", range(7), time(0), time(0), around_the_clock=True)
"""For severities whose response time is promised in calendar hours."""


class SlaClock:
    """SLA arithmetic for one ticket: business time that counts, minus client-wait pauses."""

    @staticmethod
    def _merged_pauses(
        pauses: Sequence[Pause], since: datetime, until: datetime | None
    ) -> list[tuple[datetime, datetime | None]]:
        """Pauses clipped to [since, until), sorted, overlaps merged; an open one stays open."""
        clipped: list[tuple[datetime, datetime | None]] = []
        for pause_start, pause_end in pauses:
            _require_aware(pause_start, "pause start")
            begin = max(pause_start.astimezone(UTC), since)
            end = pause_end.astimezone(UTC) if pause_end is not None else until
            if until is not None and end is not None:
                end = min(end, until)
            if end is None or begin < end:
                clipped.append((begin, end))
        clipped.sort(key=lambda pause: pause[0])
        merged: list[tuple[datetime, datetime | None]] = []
        for begin, end in clipped:
            if merged:
                last_begin, last_end = merged[-1]
                if last_end is None:
                    break  # an open pause swallows everything after it
                if begin <= last_end:
                    new_end = None if end is None else max(last_end, end)
                    merged[-1] = (last_begin, new_end)
                    continue
            merged.append((begin, end))
        return merged

    @staticmethod
    def elapsed(
        opened_at: datetime,
        now: datetime,
        pauses: Sequence[Pause],
        calendar: BusinessCalendar,
    ) -> timedelta:
        """Business time the ticket has been on the clock between `opened_at` and `now`."""
        _require_aware(opened_at, "opened_at")
        _require_aware(now, "now")
        opened_at, now = opened_at.astimezone(UTC), now.astimezone(UTC)
        total = calendar.elapsed(opened_at, now)
        for begin, end in SlaClock._merged_pauses(pauses, opened_at, now):
            total -= calendar.elapsed(begin, end if end is not None else now)
        return total

    @staticmethod
    def due_at(
        opened_at: datetime,
        target: timedelta,
        pauses: Sequence[Pause],
        calendar: BusinessCalendar,
    ) -> datetime | None:
        """When `target` business time will have been spent, shifted by the pauses.

        None while the ticket is paused (waiting for the client) before the target
        was reached: the due time is unknown until the client answers.
        """
        _require_aware(opened_at, "opened_at")
        cursor = opened_at.astimezone(UTC)
        remaining = target
        for pause_start, pause_end in SlaClock._merged_pauses(pauses, cursor, None):
            worked = calendar.elapsed(cursor, pause_start)
            if worked >= remaining:
                return calendar.add(cursor, remaining)
            remaining -= worked
            if pause_end is None:
                return None
            cursor = max(cursor, pause_end)
        return calendar.add(cursor, remaining)
