"""Time as injectable dependencies, so tests can fix it or make it pass faster."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
# Elapsed time (rate-limit windows) and waiting (retry back-offs), in the bot's eyes.
Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)
