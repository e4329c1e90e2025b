"""Engine and sessions: one transaction per unit of work.

SQLite is the embedded default: WAL mode, a busy timeout, and every transaction
starts with BEGIN IMMEDIATE so concurrent writers queue instead of failing at
commit. Inside one process writers are also serialised by an asyncio lock, so
they wait without polling the file lock, and statements run on the event loop's
thread (storage/sqlite_inline.py).

`reading()` is for long reads (the reports): on SQLite a connection of its own beside the
writer (WAL lets it read a snapshot while others write), its statements on aiosqlite's
thread so the event loop stays free, `PRAGMA query_only`; it never takes the write lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.sqlite_inline import inline_creator

SQLITE_BUSY_TIMEOUT_MS = 15_000


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE below is the only BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _configure_sqlite_reader(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")  # deferred: one snapshot, no write lock


def create_engine(
    url: str, *, echo: bool = False, pool_size: int = 10, max_overflow: int = 10
) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url, echo=echo, async_creator=inline_creator(
                parsed.database or ":memory:", timeout=SQLITE_BUSY_TIMEOUT_MS / 1000
            ),
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=max_overflow,
                               pool_pre_ping=True)


class Database:
    """Owns the engine; `transaction()` is the only way code gets a session."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 10, max_overflow: int = 10
    ) -> None:
        """`pool_size`, `max_overflow`: PostgreSQL's connection pool (SQLite has one writer
        connection and one reader)."""
        self.url = url
        self.engine = create_engine(url, echo=echo, pool_size=pool_size,
                                    max_overflow=max_overflow)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # In memory every connection is a database of its own: there the reads take the
        # writer's way.
        self._reader: AsyncEngine | None = None
        if self.is_sqlite and (make_url(url).database or ":memory:") != ":memory:":
            self._reader = create_async_engine(url, echo=echo)
            _configure_sqlite_reader(self._reader)
        self._read_sessions = async_sessionmaker(self._reader or self.engine,
                                                 expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self._write_lock or nullcontext(), self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only session in one transaction (one snapshot), beside the writer: it
        neither waits for nor holds the write lock (and may write nothing: query_only, READ
        ONLY). Its objects stay readable after it (no expiry at its end)."""
        if self.is_sqlite and self._reader is None:
            async with self.transaction() as session:
                yield session
            return
        async with self._read_sessions() as session, session.begin():
            if not self.is_sqlite:
                await session.execute(text("SET TRANSACTION READ ONLY"))
            yield session

    async def dispose(self) -> None:
        if self._reader is not None:
            await self._reader.dispose()
        await self.engine.dispose()
