"""Whether a worker of the bot has something under way, for whoever must wait until it
has not (the tests and the sandbox: bot/sandbox/settle.py).

Besides the awaitable "idle", `started` counts every piece of work ever begun. Work
moves between parts (an update from the emulator to the intake, a message from a
handler to the outbox and on to Telegram); a waiter that looks at every part, sees
each of them idle, and sees the same counts when it looks again after a pause knows
nothing slipped between its looks, with no quiet time to guess.
"""

from __future__ import annotations

import asyncio


class Activity:
    def __init__(self) -> None:
        self.started = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def idle(self) -> bool:
        return self._idle.is_set()

    def begin(self) -> None:
        """Something is under way (and counted)."""
        self.started += 1
        self._idle.clear()

    def end(self) -> None:
        """Nothing is under way any more."""
        self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()
