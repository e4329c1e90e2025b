"""The scheduled jobs: one table, one tick.

APScheduler only ticks. Every job is an idempotent sweep over the database (bot/services:
sla_jobs, ratings, quality, surge, reports, retention): it
selects what is due and not yet done and marks it done in the transaction that does it, so
a tick that runs twice, late, or again after a restart changes nothing more. A job is a
function of the moment it runs at (tests call them with a fixed one) returning how much it
wrote to the outbox. The scheduler runs paused, and resumes on the leader only
(bot/app/leader.py); a tick missed meanwhile runs on resuming.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING

from bot.app.container import Container
from bot.domain.clock import Clock
from bot.services.flood import FLUSH_SECONDS, announce_held
from bot.services.maintenance import SWEEP_SECONDS as MAINTENANCE_SECONDS
from bot.services.maintenance import maintenance_sweep
from bot.services.problems import (
    CLOSE_SWEEP_SECONDS,
    SUGGEST_SECONDS,
    close_linked,
    suggest_problems,
)
from bot.services.ratings import rating_sweep
from bot.services.reports.jobs import monthly_acts, quality_job
from bot.services.retention import retention_sweep
from bot.services.sla_jobs import confirm_sweep
from bot.services.sla_jobs import run_all as sla_and_reminders
from bot.services.surge import post_surge_digest

log = logging.getLogger(__name__)

SURGE_DIGEST_SECONDS = 60
MONTHLY_ACTS_SECONDS = 300


@dataclass(frozen=True)
class Job:
    id: str
    seconds: float
    run: Callable[[datetime], Awaitable[int | bool]]
    at_start: bool = True  # the first tick on starting, not an interval later


def job_table(container: Container) -> list[Job]:
    """The jobs this configuration runs."""
    c, db = container.config, container.db
    notifier_for = container.notifier_for
    rows: list[tuple[bool, Job]] = [
        (True, Job("sla", c.sla.sweep_seconds,  # SLA warnings and breaches, status reminders
                   lambda now: sla_and_reminders(db, notifier_for, c, now))),
        (bool(c.desk.confirm_days), Job(  # resolved, no objection: closed ("solved -> closed")
            "confirm", c.sla.sweep_seconds,
            lambda now: confirm_sweep(db, container.desk_for, now))),
        (True, Job("ratings", c.ratings.sweep_seconds,  # delayed requests, the one reminder
                   lambda now: rating_sweep(db, container.ratings_for, c.ratings, now))),
        (c.quality.enabled, Job("quality", c.quality.sweep_seconds,  # the quarterly check
                                lambda now: quality_job(db, notifier_for, c, now))),
        (bool(c.desk.surge_threshold), Job(  # one digest a minute in a surge
            "surge", SURGE_DIGEST_SECONDS,
            lambda now: post_surge_digest(db, notifier_for, now), at_start=False)),
        (bool(c.desk.suggest_problem_after), Job(  # similar new incidents: "a problem?"
            "problems", SUGGEST_SECONDS,
            lambda now: suggest_problems(db, container.semantic, notifier_for, c.desk, now),
            at_start=False)),
        (True, Job(  # one line a minute per incident of a client over their limit
            "flood", FLUSH_SECONDS,
            lambda now: announce_held(db, notifier_for, now), at_start=False)),
        (c.reports.monthly_acts, Job(  # last month's acts, on the first working day
            "monthly_acts", MONTHLY_ACTS_SECONDS,
            lambda now: monthly_acts(db, notifier_for, c, now))),
        (True, Job("maintenance", MAINTENANCE_SECONDS,  # planned works due within 7 days
                   lambda now: maintenance_sweep(db, notifier_for, c, now))),
        (True, Job("retention", c.retention.sweep_seconds,  # old inbox and outbox rows
                   lambda now: retention_sweep(db, c.retention, now))),
        # Last, so the first ticks of the jobs above come as early as before it.
        (True, Job(  # a closed problem's linked incidents a restart left open
            "problem_close", CLOSE_SWEEP_SECONDS,
            lambda now: close_linked(db, container.problems_for, lambda: now))),
    ]
    return [job for enabled, job in rows if enabled]


class Scheduler:
    def __init__(self, jobs: Sequence[Job], clock: Clock, on_wrote: Callable[[], None]) -> None:
        self.jobs = {job.id: job for job in jobs}
        self.clock = clock
        self.on_wrote = on_wrote
        self.timer = AsyncIOScheduler(timezone=UTC, job_defaults={"misfire_grace_time": None})
        self._ticking = asyncio.Lock()

    def start(self) -> None:
        """Every job on its interval, paused until `resume`."""
        for job in self.jobs.values():
            first = {"next_run_time": datetime.now(UTC)} if job.at_start else {}
            self.timer.add_job(self.tick, "interval", args=[job.id], seconds=job.seconds,
                               id=job.id, name=job.id, max_instances=1, coalesce=True, **first)
        self.timer.start(paused=True)

    def resume(self) -> None:
        if self.timer.running:
            self.timer.resume()

    def pause(self) -> None:
        """No tick starts from now on (one under way goes on: `wait_idle`)."""
        if self.timer.running:
            self.timer.pause()

    async def wait_idle(self) -> None:
        """Until no tick is under way."""
        async with self._ticking:
            pass

    def idle(self) -> bool:
        """No tick under way, and none due by the scheduler's own time (not the desk's
        clock, which tests fix)."""
        if self._ticking.locked():
            return False
        if self.timer.state != STATE_RUNNING:
            return True
        now = datetime.now(UTC)
        return not any(job.next_run_time is not None and job.next_run_time <= now
                       for job in self.timer.get_jobs())

    async def shutdown(self) -> None:
        """No tick ever again (the lock stays held: the database is about to close); one
        under way finishes first."""
        if self.timer.running:
            self.timer.shutdown(wait=False)
        await self._ticking.acquire()

    async def tick(self, job_id: str) -> None:
        """One run of a job. It starts under the lock (`shutdown` may hold it for good
        meanwhile), and its clock is read there: a tick that waited sees the time it runs at."""
        job = self.jobs[job_id]
        try:
            async with self._ticking:
                wrote = await job.run(self.clock())
        except Exception:  # the next tick tries again; the state is in the database
            log.exception("%s job failed", job.id)
            return
        if wrote:
            self.on_wrote()
