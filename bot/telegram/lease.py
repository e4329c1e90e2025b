"""PostgreSQL, several workers: this worker's heartbeat, and the updates of dead ones.

Every BEAT_SECONDS the worker writes its heartbeat (the database server's time, on a
pool of its own so a backlog holding every connection of the main pool does not
silence it) and takes over the pending updates of workers silent for SILENT_SECONDS
(bot/telegram/intake.py, `Intake.adopt`). A worker killed with updates still queued
thus has them handled elsewhere within SILENT_SECONDS + BEAT_SECONDS (3 s), instead
of waiting for an age-based sweep. It runs on every worker, not only on the leader:
the worker that died may be the leader.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from contextlib import suppress
from datetime import timedelta

from bot.telegram.intake import Intake
from storage.db import Database
from storage.repos.fleet import Workers

log = logging.getLogger(__name__)

BEAT_SECONDS = 0.5
SILENT_SECONDS = 2.5  # five beats missed: the worker is dead (or too stuck to count on)


def new_worker_id() -> str:
    """Unique per process start: a restarted worker is a new one, its old updates orphans."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    def __init__(self, url: str, intake: Intake, worker_id: str) -> None:
        # Its own small pool: a beat must not queue behind the desk's busy connections, or
        # a worker at its peak would look dead.
        self.db = Database(url, pool_size=1, max_overflow=1)
        self.intake = intake
        self.worker_id = worker_id
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """The first beat (and what dead workers left) now, then every BEAT_SECONDS."""
        async with self.db.transaction() as session:
            await Workers(session).forget_silent()
        await self._round()
        self._task = asyncio.create_task(self._run(), name="lease")

    async def stop(self) -> None:
        """Stop beating and leave (the intake is idle by now: nothing is left behind)."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        with suppress(Exception):
            async with self.db.transaction() as session:
                await Workers(session).leave(self.worker_id)
        await self.db.dispose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(BEAT_SECONDS)
            try:
                await self._round()
            except Exception as exc:  # the database is away: beat again next time
                log.warning("worker heartbeat failed (%s)", exc)

    async def _round(self) -> None:
        async with self.db.transaction() as session:
            await Workers(session).beat(self.worker_id, os.getpid())
        async with self.db.transaction() as session:
            orphans = await Workers(session).take_over(
                self.worker_id, timedelta(seconds=SILENT_SECONDS))
        if orphans:
            log.warning("took over %d updates of a worker that stopped beating",
                        len(orphans))
            self.intake.adopt(orphans)
