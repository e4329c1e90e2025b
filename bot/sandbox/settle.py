"""Waiting until the bot is done: every update handled, every message delivered.

No quiet time is guessed. The emulator and every worker of the bot say whether they
are idle and count the work they start (`FakeTelegram.idle`/`activity`, `App.idle`,
bot/telegram/activity.py). The bot is done when all of them are idle, the outbox
holds nothing the caller still waits for, and the counts are the same after that
look at the database as before it: work handed from one part to another meanwhile
(an update to the intake, a message to Telegram) would have changed one of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress

from bot.app.runtime import App
from bot.sandbox.emulator import FakeTelegram

Undelivered = Callable[[], Awaitable[int]]

# A scheduled job that is due runs as soon as the scheduler's timer fires: looked at again
# this often meanwhile.
JOB_DUE_TICK = 0.01
# Rows waiting for their time (a retry, a rate limit) or, with several workers, for the
# leader's next look are sent with a call to Telegram, which is waited for; the outbox is
# looked at again this often anyway (a row may also fail without a call).
UNDELIVERED_TICK = 0.1


async def settle(
    tg: FakeTelegram, apps: Sequence[App], undelivered: Undelivered, timeout: float = 15.0
) -> None:
    """Return once `tg` and every one of `apps` are idle and `undelivered()` is 0."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    left = -1
    while (remaining := deadline - loop.time()) > 0:
        try:
            await asyncio.wait_for(_all_idle(tg, apps), remaining)
        except TimeoutError:
            break
        mark = _quiet_mark(tg, apps)
        if mark is None:  # a scheduled job is due, or work began again meanwhile
            await asyncio.sleep(JOB_DUE_TICK)
            continue
        left = await undelivered()
        if _quiet_mark(tg, apps) != mark:
            continue
        if left == 0:
            return
        with suppress(TimeoutError):
            await _next_call(tg, min(UNDELIVERED_TICK, max(deadline - loop.time(), 0.0)))
    busy = [f"worker {n}" for n, app in enumerate(apps) if not app.idle()]
    raise TimeoutError(
        f"the bot did not settle within {timeout}s: emulator {'idle' if tg.idle else 'busy'}, "
        f"busy: {busy or 'none'}, undelivered outbox rows: {left if left >= 0 else '?'}"
    )


async def _all_idle(tg: FakeTelegram, apps: Sequence[App]) -> None:
    await tg.wait_idle(timeout=float("inf"))
    for app in apps:
        await app.intake.activity.wait_idle()
        await app.delivery.activity.wait_idle()


async def _next_call(tg: FakeTelegram, timeout: float) -> None:
    seen = tg.activity
    await tg.wait_for(lambda: tg.activity != seen, timeout)


def _quiet_mark(tg: FakeTelegram, apps: Sequence[App]) -> tuple[int, ...] | None:
    """The counts of work started, if everything is idle right now."""
    if not tg.idle or not all(app.idle() for app in apps):
        return None
    counts = [tg.activity]
    for app in apps:
        counts += [app.intake.activity.started, app.delivery.activity.started]
    return tuple(counts)
