"""Planned works of a contract: how often (`daily`, `weekly`, `monthly`, `quarterly`,
`yearly`, or `months:N`, every N months) and when each falls due.

A work is due one interval after it was last done; a work never done is due at once.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

FIXED = ("daily", "weekly", "monthly", "quarterly", "yearly")
_EVERY_MONTHS = re.compile(r"^months:(\d{1,2})$")
MONTHS_OF = {"monthly": 1, "quarterly": 3, "yearly": 12}


def months_of(every: str) -> int | None:
    """The work's interval in months (None for daily and weekly works)."""
    if every in MONTHS_OF:
        return MONTHS_OF[every]
    found = _EVERY_MONTHS.match(every)
    return int(found[1]) if found else None


def is_periodicity(every: str) -> bool:
    months = months_of(every)
    return every in FIXED or (months is not None and 1 <= months <= 36)


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day when it is shorter)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def next_due(every: str, last_done: date | None, today: date) -> date:
    """When the work falls due: an interval after it was last done; at once (today) when it
    was never done."""
    if last_done is None:
        return today
    if every == "daily":
        return last_done + timedelta(days=1)
    if every == "weekly":
        return last_done + timedelta(days=7)
    return add_months(last_done, months_of(every) or 1)


def cycle_start(every: str, first_day: date) -> date:
    """Where the cycle of a work that ends with the month of `first_day` begins: a work done
    anywhere in it counts as done for that month's act."""
    if every == "quarterly":
        return date(first_day.year, 3 * ((first_day.month - 1) // 3) + 1, 1)
    if every == "yearly":
        return date(first_day.year, 1, 1)
    months = months_of(every)
    if months and months > 1 and every.startswith("months:"):
        return add_months(first_day, 1 - months)
    return first_day
