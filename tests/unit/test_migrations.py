"""The models and the migrations describe the same schema, and migrations run both ways.

On SQLite always; on PostgreSQL too when FRONTDESK_TEST_POSTGRES names a server (a fresh
database is made for the test and dropped after it).
"""

import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from storage.migrate import alembic_config, upgrade_async
from storage.models import Base
from tests.postgres import fresh_database

POSTGRES = os.environ.get("FRONTDESK_TEST_POSTGRES")


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}"
        return
    if not POSTGRES:
        pytest.skip("FRONTDESK_TEST_POSTGRES is not set")
    async with fresh_database(POSTGRES, "frontdesk_schema") as url:
        yield url


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_models_match_migrations(database_url: str) -> None:
    await upgrade_async(database_url)
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        diff = await connection.run_sync(_differences)
    await engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    config = alembic_config(f"sqlite+aiosqlite:///{tmp_path / 'updown.db'}")
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")


def test_old_invite_codes_get_their_prefix(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'codes.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0005")
    with sqlite3.connect(tmp_path / "codes.db") as db:
        db.execute("INSERT INTO companies (name, invite_code, maintenance, source, created_at) "
                   "VALUES ('Old', 'abcDEF123', '[]', 'chat', '2026-01-01 00:00:00'), "
                   "('New', 'org-xyz', '[]', 'chat', '2026-01-01 00:00:00')")
    command.upgrade(config, "head")
    with sqlite3.connect(tmp_path / "codes.db") as db:
        codes = sorted(code for (code,) in db.execute("SELECT invite_code FROM companies"))
    assert codes == ["org-abcDEF123", "org-xyz"]
