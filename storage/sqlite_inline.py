"""SQLite statements on the event loop's own thread: the one place that reaches into aiosqlite.

aiosqlite hands every call to a worker thread and awaits the answer. A statement here takes
about a tenth of a millisecond; the hand-over and back costs several times that, and a unit
of work makes a dozen or two of them while holding the write lock (storage/db.py). Measured:
600 registrations went from ~50/s to the figures in tests/bench/outage.py.

aiosqlite has no public switch for this (its only knobs are the connector and the fetch
chunk size), and SQLAlchemy's async SQLite dialect needs an aiosqlite connection. So the
override below replaces aiosqlite's private `Connection._execute`, the coroutine every
public call (execute, cursor, commit, fetch...) goes through. The worker thread still runs:
aiosqlite opens and closes the sqlite3 connection there, and SQLAlchemy queues its
isolation-level changes straight to it. tests/unit/test_sqlite_inline.py fails, naming this
module, if an aiosqlite release changes what the override relies on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import aiosqlite

FETCH_CHUNK = 64  # aiosqlite's default rows per fetch when a cursor is iterated


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose statements run inline instead of on its thread."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # The same guard as aiosqlite's own, so a closed connection fails the same way
        # (SQLAlchemy maps this ValueError to OperationalError).
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


def inline_creator(path: str, *, timeout: float) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    """An `async_creator` for SQLAlchemy: opens `path` as an InlineConnection."""

    def connect() -> sqlite3.Connection:
        # Opened on aiosqlite's thread, used on the loop's: hence check_same_thread=False.
        return sqlite3.connect(path, timeout=timeout, check_same_thread=False)

    async def create() -> aiosqlite.Connection:
        return await InlineConnection(connect, FETCH_CHUNK)

    return create
