"""storage/sqlite_inline.py overrides a private aiosqlite method: these fail, saying what to
do, when an aiosqlite release changes it (e.g. after `make lock UPGRADE=1`)."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

import aiosqlite
from sqlalchemy import text

from storage.db import create_engine
from storage.sqlite_inline import InlineConnection

CHANGED = (
    f"aiosqlite {aiosqlite.__version__} changed its private Connection._execute, which "
    "storage/sqlite_inline.py overrides to run SQLite statements on the event loop's thread; "
    "adapt the override to this aiosqlite, or pin the previous one in the lock files"
)


def test_aiosqlite_still_has_the_coroutine_the_override_replaces() -> None:
    hook = inspect.getattr_static(aiosqlite.Connection, "_execute", None)
    assert inspect.iscoroutinefunction(hook), CHANGED
    kinds = [param.kind for param in inspect.signature(hook).parameters.values()]
    assert kinds == [
        inspect.Parameter.POSITIONAL_OR_KEYWORD,  # self
        inspect.Parameter.POSITIONAL_OR_KEYWORD,  # the sqlite3 callable
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
    ], CHANGED


async def test_statements_through_the_engine_run_on_the_loops_thread(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    try:
        async with engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert isinstance(driver, InlineConnection)
            # The attributes the override's closed-connection guard reads.
            assert driver._running is True and driver._connection is not None, CHANGED
            await driver.create_function("thread_ident", 0, threading.get_ident)
            ran_on = await connection.scalar(text("SELECT thread_ident()"))
    finally:
        await engine.dispose()
    assert ran_on == threading.get_ident(), CHANGED
