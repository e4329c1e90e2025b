"""Bot API calls that wait for the update's commit.

A handler runs inside the update's transaction, and on SQLite that transaction holds the
process-wide write lock (storage/db.py). A Telegram round trip there (answering a button
press takes one, up to the request timeout) would stop every other update for its length.
So a handler does not await such a call: it hands the call, unsent, to `AfterCommit`
(`after_commit(callback.answer(text))`: aiogram's method object, bound to the bot), and the
unit of work (bot/telegram/middleware.py) sends the calls once the transaction has
committed — or drops them when it rolled back. A call that fails then (a press answered
too late: "query is too old") is logged; the update stays handled. What must reach the
client for sure goes to the outbox instead, in the transaction.

Longer work that must not run under the lock either (a report: figures, a chart, files)
is queued as a job (`after_commit.later(job)`): a coroutine function run after the calls,
once committed. A job reports its own failures (bot/services/reports/jobs.py); one that
raises anyway is logged and the next still runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.methods import TelegramMethod

log = logging.getLogger(__name__)


class AfterCommit:
    """One update's Bot API calls, to be made after its commit (built by its Scope)."""

    def __init__(self) -> None:
        self._calls: list[TelegramMethod[Any]] = []
        self._jobs: list[Callable[[], Awaitable[object]]] = []

    def __call__(self, call: TelegramMethod[Any]) -> None:
        """Queue `call` (a method object bound to the bot, e.g. `callback.answer()`)."""
        self._calls.append(call)

    def later(self, job: Callable[[], Awaitable[object]]) -> None:
        """Queue `job` (a coroutine function), to run after the commit and the calls."""
        self._jobs.append(job)

    async def flush(self) -> None:
        """Make the queued calls, then run the jobs, in order; a failure is logged and the
        rest still go."""
        calls, self._calls = self._calls, []
        jobs, self._jobs = self._jobs, []
        for call in calls:
            try:
                await call
            except (TelegramAPIError, TelegramNetworkError, TimeoutError) as exc:
                log.warning("%s after the commit failed: %s", call.__api_method__, exc)
        for job in jobs:
            try:
                await job()
            except Exception:
                log.exception("a job after the commit failed")
