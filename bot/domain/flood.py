"""A client's token bucket (issue 14: one client cannot stall the desk). Pure: the caller
keeps the state (on the client row, so every webhook worker sees the same bucket) and
passes the moment from the injectable clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Bucket:
    tokens: float
    full: bool  # refilled to the brim before this message: the burst is over


def take(tokens: float | None, at: datetime | None, now: datetime,
         per_minute: float, burst: int) -> tuple[bool, Bucket]:
    """(admitted, the bucket after this message): `tokens` as of `at` (None: a fresh one)."""
    level = float(burst) if tokens is None else tokens
    if at is not None:
        elapsed = max(0.0, (now - at).total_seconds())
        level = min(float(burst), level + elapsed * per_minute / 60.0)
    full = level >= burst
    if level >= 1.0:
        return True, Bucket(level - 1.0, full)
    return False, Bucket(level, full)
