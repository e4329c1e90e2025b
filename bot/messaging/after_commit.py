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
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.methods import TelegramMethod

log = logging.getLogger(__name__)


class AfterCommit:
    """One update's Bot API calls, to be made after its commit (built by its Scope)."""

    def __init__(self) -> None:
        self._calls: list[TelegramMethod[Any]] = []

    def __call__(self, call: TelegramMethod[Any]) -> None:
        """Queue `call` (a method object bound to the bot, e.g. `callback.answer()`)."""
        self._calls.append(call)

    async def flush(self) -> None:
        """Make the queued calls, in order; a failure is logged and the rest still go."""
        calls, self._calls = self._calls, []
        for call in calls:
            try:
                await call
            except (TelegramAPIError, TelegramNetworkError, TimeoutError) as exc:
                log.warning("%s after the commit failed: %s", call.__api_method__, exc)
