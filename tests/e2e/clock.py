"""Time for Telegram and the bot of one test: the wall's, or faster, and movable.

The emulator takes its `monotonic`/`sleep` (call times, limit windows, fault durations,
refused connections), and a test that needs time to pass gives the bot all three
(`now` for outbox back-offs, `monotonic` for its rate limiter, `sleep` for the polling
back-off). Seconds then pass at `speed` times the wall's rate, or at once with
`advance`, for both sides alike: a 10 s outage is still 10 s in everybody's eyes, and a
limit one side keeps is the limit the other one checks. What stays on the wall's time
is what does not measure time passing in the scenario (request timeouts, the delivery
worker's idle poll, the scheduler).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta

# The wall's seconds a request may lose on its way on a loaded 2-core machine (a busy event
# loop at either end). The bot keeps 0.3 s to spare between two messages to one chat, but
# on a clock `speed` times faster those are 0.3 / speed of the wall's, a pause any busy
# process takes; measured in the scenario's seconds the same delay is `speed` times longer.
REQUEST_JITTER = 0.05


class SharedClock:
    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self._real_start = time.monotonic()
        self._wall_start = datetime.now(UTC)
        self._moved = 0.0
        self._advanced = asyncio.Event()

    def elapsed(self) -> float:
        return (time.monotonic() - self._real_start) * self.speed + self._moved

    def request_jitter(self) -> float:
        """The tolerance for Telegram's limits on this clock: a request's delay on the way,
        beyond what it would be on the wall's (none at the wall's pace, where the limits are
        held to the letter)."""
        return REQUEST_JITTER * (self.speed - 1.0)

    def monotonic(self) -> float:
        return self._real_start + self.elapsed()

    def now(self) -> datetime:
        return self._wall_start + timedelta(seconds=self.elapsed())

    async def sleep(self, seconds: float) -> None:
        until = self.elapsed() + seconds
        while (left := until - self.elapsed()) > 0:
            advanced = self._advanced
            with suppress(TimeoutError):
                await asyncio.wait_for(advanced.wait(), left / self.speed)

    def advance(self, seconds: float) -> None:
        """Make `seconds` pass at once."""
        self._moved += seconds
        advanced, self._advanced = self._advanced, asyncio.Event()
        advanced.set()  # sleepers look at the time again


class MovableClock:
    """The desk's clock for a test: real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset
