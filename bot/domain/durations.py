"""Durations as staff type them: `30m`, `1h30`, `1h 30m`, `1.5h`, `2d` (also ч, мин, д)."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:[.,]\d+)?)\s*(d|д|дн|h|ч|m|м|мин|min)?", re.IGNORECASE)
_UNIT_MINUTES = {"d": 1440, "д": 1440, "дн": 1440, "h": 60, "ч": 60,
                 "m": 1, "м": 1, "мин": 1, "min": 1}
_WHOLE = re.compile(r"^(?:\d+(?:[.,]\d+)?\s*(?:d|д|дн|h|ч|min|мин|m|м)?\s*)+$", re.IGNORECASE)


def parse_duration(text: str) -> tuple[float, str] | None:
    """A duration and its largest unit ("days", "hours" or "minutes"), in minutes; None
    when `text` is no duration. A bare number after hours is minutes (`1h30`); a bare
    number alone is minutes."""
    text = text.strip().lower()
    if not text or not _WHOLE.match(text):
        return None
    total, unit, previous = 0.0, "", ""
    for number, given in _PART.findall(text):
        value = float(number.replace(",", "."))
        name = given or ("m" if previous in ("h", "ч", "") else "")
        if not name:
            return None
        total += value * _UNIT_MINUTES[name]
        size = "days" if _UNIT_MINUTES[name] == 1440 else "hours" if _UNIT_MINUTES[
            name] == 60 else "minutes"
        unit = unit or size
        previous = name
    return (total, unit) if total > 0 else None


def parse_minutes(text: str) -> int | None:
    """Whole minutes of a duration (`1h30` -> 90); None when it is none or under a minute."""
    found = parse_duration(text)
    if found is None or found[0] < 1:
        return None
    return round(found[0])
