"""Leadership: exactly one process runs the scheduler and the delivery worker.

On PostgreSQL the leader holds a session-level advisory lock on a connection of
its own (outside the pool: closing it is what releases the lock). When the
leader process dies, PostgreSQL closes its session, the lock is free, and the
next worker to try (every `retry_seconds`, 1 s) takes over.

Only one sender at a time is what keeps an outbox row from going out twice,
so a lost lock must stop the old leader before the new one starts:
- the leader checks its connection every `retry_seconds`, with a timeout of
  `check_seconds` (1.5 s: a loaded event loop must not depose a healthy leader);
  a failed or slow check deposes it (its duties stop at once);
- a worker that takes over from another leader waits `grace_seconds` (retry +
  check, 2.5 s by default) before starting its duties, the time the old leader
  needs to notice, if it is alive at all;
- the leader's session asks the server for TCP keepalives, so a leader cut off
  by the network loses its lock within about half a minute rather than hours.
A process that dies is noticed at once (its socket closes): takeover then takes
at most retry + grace seconds, 3.5 s with the defaults, so a new leader sends
within 5 s of the old one's death (tests/e2e/test_workers.py). It starts from
the old leader's rate-limit history (bot/telegram/delivery.py, `SendHistory`).

SQLite means one process, which is always the leader.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from contextlib import suppress

from storage.db import Database
from storage.locks import SessionLock

log = logging.getLogger(__name__)

LOCK_KEY = 0x46524F4E_54444553  # "FRONTDES"; chat ids (bot/telegram/intake.py) never come near it
Duty = Callable[[], Awaitable[None]]
# Keepalives on the leader's session: a peer gone silent is dropped after ~10 + 3 * 5 s.
KEEPALIVES = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5",
              "tcp_keepalives_count": "3", "application_name": "frontdesk-leader"}


class Leadership:
    def __init__(
        self,
        db: Database,
        *,
        on_elected: Duty,
        on_deposed: Duty,
        retry_seconds: float = 1.0,
        check_seconds: float = 1.5,
        grace_seconds: float | None = None,
    ) -> None:
        self.db = db
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self.retry_seconds = retry_seconds
        self.check_seconds = check_seconds
        self.grace_seconds = (retry_seconds + check_seconds if grace_seconds is None
                              else grace_seconds)
        self.is_leader = False
        self.elections = 0  # times this process became the leader (for logs and tests)
        self._lock: SessionLock | None = None
        self._task: asyncio.Task[None] | None = None
        self._saw_other_leader = False

    async def start(self) -> None:
        """One attempt now (a lone process leads as soon as this returns), then campaign
        in the background until stop()."""
        if self.db.is_sqlite:
            await self._elected()
            return
        self._lock = SessionLock(self.db.url, LOCK_KEY, server_settings=KEEPALIVES)
        try:
            won = await self._attempt()
        except Exception as exc:  # the campaign below keeps trying
            log.warning("leadership: cannot reach the database (%s)", exc)
            won = False
        if won:
            await self._elected()
        self._task = asyncio.create_task(self._campaign(), name="leadership")

    async def halt(self) -> None:
        """No more elections or depositions; a lock held stays held until stop()."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def stop(self) -> None:
        """Give up leadership without calling on_deposed: the caller has stopped the
        duties already (the lock is released last, so nobody else sends meanwhile)."""
        await self.halt()
        await self._release()
        self.is_leader = False
        if self._lock is not None:
            await self._lock.dispose()

    async def _campaign(self) -> None:
        while True:
            try:
                if self.is_leader:
                    await self._hold()
                elif await self._attempt():
                    if self._saw_other_leader and self.grace_seconds > 0:
                        log.info("leadership: lock taken over; duties start in %.1fs, once "
                                 "the old leader has surely stopped", self.grace_seconds)
                        await asyncio.sleep(self.grace_seconds)
                    await self._elected()
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: whoever holds the lock now leads
                log.warning("leadership: connection lost (%s)", exc)
                await self._release()
                if self.is_leader:
                    await self._deposed()
            await asyncio.sleep(self.retry_seconds)

    async def _attempt(self) -> bool:
        assert self._lock is not None
        locked = await self._lock.try_acquire()
        if not locked:
            self._saw_other_leader = True
        return locked

    async def _hold(self) -> None:
        """The lock's session is checked: a failed or slow check deposes the leader."""
        assert self._lock is not None
        await asyncio.wait_for(self._lock.check(), timeout=self.check_seconds)

    async def _release(self) -> None:
        if self._lock is not None:
            await self._lock.release(timeout=self.check_seconds)

    async def _elected(self) -> None:
        self.elections += 1
        self._saw_other_leader = False
        log.info("leadership: process %d leads; scheduler and delivery run here", os.getpid())
        self.is_leader = True
        try:
            await self.on_elected()
        except Exception:
            log.exception("leadership: starting the duties failed; stepping down")
            await self._release()
            await self._deposed()
            raise

    async def _deposed(self) -> None:
        log.warning("leadership: process %d lost it; scheduler and delivery stop here",
                    os.getpid())
        self.is_leader = False
        try:
            await self.on_deposed()
        except Exception:
            log.exception("leadership: stopping the duties failed")
