"""End-to-end fixtures: the real bot (its real aiohttp session, dispatcher, intake and
delivery worker) against the Telegram emulator on loopback, with a fresh SQLite file
(or PostgreSQL database, and several webhook workers: tests/e2e/cluster.py)."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from aiogram.client.session.aiohttp import AiohttpSession
from sqlalchemy import func, select

from bot.app.runtime import App
from bot.config import Config, parse_config
from bot.sandbox.emulator import FakeTelegram
from bot.sandbox.settle import settle as settle_bot
from storage.migrate import upgrade
from storage.models import Client, OutboxMessage
from tests.e2e.clock import SharedClock
from tests.e2e.cluster import WORKERS, new_app, webhook_settings, workers_of
from tests.postgres import fresh_database, template_database

ROOT_DIR = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-TOKEN"
STAFF_CHAT = -1001000
CLIENT = 5001
CLIENT_EN = 5002
STAFF = 7001
STAFF_2 = 7002
ADMIN = 7100
STRANGER = 9001

# Limits far above what the tests produce, except where a test sets Telegram's own.
KB = Path(__file__).parents[1] / "data" / "kb"  # the test FAQ (tests/data/kb)

FAST_DELIVERY = {"global_per_second": 1000, "per_chat_per_second": 1000,
                 "per_group_per_minute": 100000}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def close_sessions_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiogram's session waits 250 ms after closing, for TLS connections to shut down; the
    emulator speaks plain HTTP on loopback, so every bot a test stops would wait for nothing."""

    async def close(session: AiohttpSession) -> None:
        # What close() closes before its sleep; no public accessor (a rename in aiogram
        # makes every stop fail loudly here).
        client = session._session
        if client is not None and not client.closed:
            await client.close()

    monkeypatch.setattr(AiohttpSession, "close", close)


# PostgreSQL: two tests at once (two xdist workers), each three webhook workers with a pool
# and a lease's, stay well under the server's max_connections of 100 (the product's default
# pool is 10 + 10 a process).
TEST_POOL = {"pool_size": 4, "max_overflow": 4}


@pytest.fixture
def speed() -> float:
    """How many times faster than the wall's time passes for Telegram (and for the bot when
    a test gives it `telegram_time`); a test raises it with
    `@pytest.mark.parametrize("speed", ...)`."""
    return 1.0


@pytest.fixture
def telegram_time(speed: float) -> SharedClock:
    """Telegram's time, which a test may share with the bot (not `clock`: test_ratings has
    a desk clock of that name)."""
    return SharedClock(speed)


@pytest.fixture
async def tg(telegram_time: SharedClock) -> AsyncIterator[FakeTelegram]:
    time = telegram_time
    async with FakeTelegram(TOKEN, monotonic=time.monotonic, sleep=time.sleep) as fake:
        fake.add_user(CLIENT, "Анна", username="anna", language_code="ru")
        fake.add_user(CLIENT_EN, "John", username="john", language_code="en")
        fake.add_user(STAFF, "Иван", last_name="Петров", username="ivan", language_code="ru")
        fake.add_user(STAFF_2, "Мария", language_code="ru")
        fake.add_user(ADMIN, "Admin", language_code="ru")
        fake.add_user(STRANGER, "Stranger", language_code="ru")
        fake.add_group(STAFF_CHAT, "Поддержка", is_forum=True,
                       members={STAFF: "member", STAFF_2: "administrator"})
        if WORKERS > 1:  # like Telegram: several connections at once, spread over the workers
            fake.webhook_parallel = 4 * WORKERS
        yield fake


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database at the newest migration, made once per test process; each test's
    database is a copy of it. Migrating from nothing took 0.2 s of CPU per test, a fifth of
    a typical end-to-end test's. The bot still runs its upgrade at start-up and finds
    nothing to do; the migrations themselves are tested in tests/unit/test_migrations.py.
    The SQLite file's path, or the name of the PostgreSQL template database."""
    server = os.environ.get("FRONTDESK_TEST_POSTGRES")
    if not server:
        path = tmp_path_factory.mktemp("migrated") / "frontdesk.db"
        upgrade(f"sqlite+aiosqlite:///{path}")
        yield str(path)
        return
    with template_database(server, "frontdesk_template") as (name, url):
        upgrade(url)
        yield name


@pytest.fixture
async def database_url(tmp_path: Path, migrated: str) -> AsyncIterator[str]:
    """A fresh SQLite file, or a fresh PostgreSQL database when FRONTDESK_TEST_POSTGRES is
    set: a copy of `migrated`."""
    server = os.environ.get("FRONTDESK_TEST_POSTGRES")
    if not server:
        path = tmp_path / "frontdesk.db"
        with closing(sqlite3.connect(migrated)) as source, \
                closing(sqlite3.connect(path)) as copy:
            source.backup(copy)
        yield f"sqlite+aiosqlite:///{path}"
        return
    async with fresh_database(server, "frontdesk_test", template=migrated) as url:
        yield url


@pytest.fixture
def make_config(database_url: str, tg: FakeTelegram, tmp_path: Path) -> Callable[..., Config]:
    port = free_port()  # the webhook workers' (unused in polling mode)

    def make(**sections: dict[str, Any]) -> Config:
        data: dict[str, Any] = {
            "telegram": {"token": TOKEN, "api_base": tg.base_url, "staff_chat_id": STAFF_CHAT,
                         "admins": [ADMIN], "poll_timeout": 1, "request_timeout": 5},
            "database": {"url": database_url, **TEST_POOL},
            "delivery": dict(FAST_DELIVERY),
            # No quarterly check from the scheduler: whether one is due depends on today's
            # date. tests/e2e/test_quality.py turns it on and fixes the clock.
            "quality": {"enabled": False},
            # Charts and acts in the test's own folder, not in the checkout.
            "reports": {"directory": str(tmp_path / "reports")},
        }
        if WORKERS > 1:
            data["telegram"].update(webhook_settings(port))
        if os.environ.get("FRONTDESK_TEST_REDIS"):  # dialog state in Redis, keys of this test
            data["redis"] = {"url": os.environ["FRONTDESK_TEST_REDIS"],
                             "prefix": f"frontdesk-test-{uuid.uuid4().hex[:12]}"}
        for name, values in sections.items():
            data[name] = {**data.get(name, {}), **values}
        return parse_config(data)

    return make


@pytest.fixture
async def app(make_config: Callable[..., Config]) -> AsyncIterator[App]:
    bot_app = new_app(make_config())
    await bot_app.start()
    yield bot_app
    await bot_app.stop()


@pytest.fixture
async def faq_app(make_config: Callable[..., Config]) -> AsyncIterator[App]:
    """The bot with the test FAQ."""
    bot_app = new_app(make_config(kb={"path": str(KB)}))
    await bot_app.start()
    yield bot_app
    await bot_app.stop()


async def pending_outbox(app: App) -> int:
    async with app.db.transaction() as session:
        count = await session.scalar(
            select(func.count()).select_from(OutboxMessage)
            .where(OutboxMessage.status == "pending")
        )
    return count or 0


async def due_outbox(app: App) -> int:
    """Pending rows due now: a row the bot scheduled for later (the leave of a group that
    may still be linked: bot/services/groups.py) is not waited for."""
    now = app.container.clock()
    async with app.db.transaction() as session:
        count = await session.scalar(
            select(func.count()).select_from(OutboxMessage)
            .where(OutboxMessage.status == "pending",
                   OutboxMessage.not_before.is_(None) | (OutboxMessage.not_before <= now)))
    return count or 0


async def pending_to_reachable(app: App) -> int:
    """Pending rows, less those held for clients who blocked the bot (pending for good)."""
    async with app.db.transaction() as session:
        count = await session.scalar(
            select(func.count()).select_from(OutboxMessage)
            .join(Client, Client.chat_id == OutboxMessage.chat_id, isouter=True)
            .where(OutboxMessage.status == "pending", Client.unreachable_since.is_(None)))
    return count or 0


async def settle(
    app: App, tg: FakeTelegram, timeout: float = 15.0,
    undelivered: Callable[[App], Awaitable[int]] = pending_outbox,
) -> None:
    """Wait until every update is handled and every message delivered (every worker's, in
    a cluster: a follower's rows are found in the database): bot/sandbox/settle.py."""
    await settle_bot(tg, workers_of(app), lambda: undelivered(app), timeout)


def texts_to(tg: FakeTelegram, chat_id: int, thread_id: int | None = None) -> list[str]:
    return [m.get("plain", "") for m in tg.sent(chat_id, thread_id)]


def start_with_kb(tmp_path: Path, kb: Path) -> subprocess.CompletedProcess[str]:
    """`python -m bot run` with the FAQ at `kb` (a file or folder) and nothing to reach: a
    broken KB must stop it before it tries Telegram."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[telegram]\ntoken = "{TOKEN}"\napi_base = "http://127.0.0.1:9"\n'
        f"staff_chat_id = -100\n[database]\n"
        f'url = "sqlite+aiosqlite:///{tmp_path / "db.sqlite"}"\n[kb]\npath = "{kb}"\n',
        encoding="utf-8",
    )
    return subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(config)],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2], check=False,
    )
