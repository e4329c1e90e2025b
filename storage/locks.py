"""A PostgreSQL session-level advisory lock (leader election, bot.app.leader).

The lock lives as long as the database session that took it, so it is held on a
connection of its own, outside the pool: closing that connection is what releases it,
and a process that dies releases it with its socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import suppress

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool


class SessionLock:
    def __init__(self, url: str, key: int, *, server_settings: Mapping[str, str]) -> None:
        self.key = key
        self._engine = create_async_engine(
            url, poolclass=NullPool, connect_args={"server_settings": dict(server_settings)})
        self._connection: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        """Take the lock unless another session holds it (connecting first if need be)."""
        if self._connection is None:
            self._connection = await self._engine.connect()
        locked = await self._connection.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
        await self._connection.commit()
        return bool(locked)

    async def check(self) -> None:
        """A cheap query on the lock's own session: it fails or hangs when the session
        (and so the lock) is gone."""
        assert self._connection is not None
        await self._connection.scalar(text("SELECT 1"))
        await self._connection.commit()

    async def release(self, timeout: float) -> None:
        """Close the lock's session (a no-op when there is none)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:  # a connection whose peer is gone may not even close in time
            await asyncio.wait_for(connection.close(), timeout=timeout)
        except Exception:
            with suppress(Exception):
                await connection.invalidate()

    async def dispose(self) -> None:
        await self._engine.dispose()
