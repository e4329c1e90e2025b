"""Calendar periods in the desk's time zone: a week, a month or a quarter of local days,
with its UTC bounds [start, end) for queries.

Labels: `2026-W10` (ISO week), `2026-03` (month), `2026Q1` (quarter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.domain.errors import UserError


class PeriodError(UserError):
    """Text that names no period: code "bad_period", `text` what was given."""


class PeriodKind(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which `day` begins in `zone`."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    kind: PeriodKind
    label: str
    first_day: date  # local
    after_day: date  # local, exclusive
    zone: ZoneInfo

    @classmethod
    def week_of(cls, day: date, zone: ZoneInfo) -> Period:
        monday = day - timedelta(days=day.weekday())
        iso = monday.isocalendar()
        return cls(PeriodKind.WEEK, f"{iso.year}-W{iso.week:02d}", monday,
                   monday + timedelta(days=7), zone)

    @classmethod
    def month_of(cls, year: int, month: int, zone: ZoneInfo) -> Period:
        if not 1 <= month <= 12 or not 2000 <= year <= 2999:
            raise PeriodError("bad_period", text=f"{year}-{month:02d}")
        return cls(PeriodKind.MONTH, f"{year}-{month:02d}", date(year, month, 1),
                   _month_after(year, month), zone)

    @classmethod
    def quarter_of(cls, year: int, number: int, zone: ZoneInfo) -> Period:
        first = date(year, 3 * number - 2, 1)
        return cls(PeriodKind.QUARTER, f"{year}Q{number}", first,
                   _month_after(year, 3 * number), zone)

    @classmethod
    def containing(cls, kind: PeriodKind, moment: datetime, zone: ZoneInfo) -> Period:
        """The period of this kind that `moment` falls in (in `zone`)."""
        today = moment.astimezone(zone).date()
        if kind == PeriodKind.WEEK:
            return cls.week_of(today, zone)
        if kind == PeriodKind.MONTH:
            return cls.month_of(today.year, today.month, zone)
        return cls.quarter_of(today.year, (today.month - 1) // 3 + 1, zone)

    @property
    def start(self) -> datetime:
        return local_midnight(self.first_day, self.zone)

    @property
    def end(self) -> datetime:
        return local_midnight(self.after_day, self.zone)

    @property
    def last_day(self) -> date:
        return self.after_day - timedelta(days=1)

    @property
    def year(self) -> int:
        return self.first_day.year

    @property
    def month(self) -> int:
        return self.first_day.month

    @property
    def quarter(self) -> int:
        return (self.first_day.month - 1) // 3 + 1

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        return Period.containing(self.kind, self.start - timedelta(microseconds=1), self.zone)

    def days(self, until: date | None = None) -> list[date]:
        """The local days of the period (up to `until`, inclusive)."""
        last = self.after_day if until is None else min(self.after_day, until + timedelta(1))
        count = max(0, (last - self.first_day).days)
        return [self.first_day + timedelta(days=i) for i in range(count)]


def _month_after(year: int, month: int) -> date:
    """The first day of the month after `month`."""
    return date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)


def parse_month(text: str, zone: ZoneInfo) -> Period:
    """`YYYY-MM` (or `YYYY-M`)."""
    match = re.fullmatch(r"(\d{4})-(\d{1,2})", text.strip())
    if match is None:
        raise PeriodError("bad_period", text=text)
    return Period.month_of(int(match[1]), int(match[2]), zone)


def parse_month_or_quarter(text: str, zone: ZoneInfo) -> Period:
    """`YYYY-MM`, or a quarter: `YYYY-Qn`, `YYYYQn` (an act's period)."""
    match = re.fullmatch(r"(\d{4})-?[QqКк]([1-4])", text.strip())
    if match is not None:
        return Period.quarter_of(int(match[1]), int(match[2]), zone)
    return parse_month(text, zone)


WORDS = {
    "week": PeriodKind.WEEK, "неделя": PeriodKind.WEEK,
    "month": PeriodKind.MONTH, "месяц": PeriodKind.MONTH,
    "quarter": PeriodKind.QUARTER, "квартал": PeriodKind.QUARTER,
}


def parse_period(arg: str | None, now: datetime, zone: ZoneInfo) -> Period:
    """`week`, `month` (the default), `quarter` (the current ones) or `YYYY-MM`."""
    word = (arg or "month").strip().lower()
    kind = WORDS.get(word)
    if kind is not None:
        return Period.containing(kind, now, zone)
    return parse_month(word, zone)


def previous_month(now: datetime, zone: ZoneInfo) -> Period:
    return Period.containing(PeriodKind.MONTH, now, zone).previous()


def previous_period(kind: PeriodKind, moment: datetime, zone: ZoneInfo) -> Period:
    """The last complete period of `kind` before `moment` (what a quality check sent then
    sums up)."""
    return Period.containing(kind, moment, zone).previous()
