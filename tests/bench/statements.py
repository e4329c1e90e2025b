"""SQL statements and commits per registration: what one client's first message costs the
writer, counted by a SQLAlchemy event listener on the bot's own engine.

    .venv/bin/python tests/bench/statements.py [--clients 200] [--verbose]

The real bot (`App`, in this process: its dispatcher, intake and delivery worker) on a
fresh SQLite file against the Telegram emulator; `--clients` clients each write a first
message ("Не работает интернет"), then the bot is let settle (every update handled, every
confirmation and staff card delivered). Every statement the writer's connection runs
meanwhile is counted, split by who ran it: the handling of updates (intake: the inbox, the
client, the incident, its number, events, links, the outbox rows) and delivery (claiming
and marking outbox rows). Printed: per registration, statements and commits of each, and
with --verbose the statements themselves, most frequent first. The sentence model is off
(`FRONTDESK_NO_MODEL`): it runs no SQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FRONTDESK_NO_MODEL", "1")

from sqlalchemy import event  # noqa: E402

import bot.app  # noqa: E402,F401  (first: aiogram's types as the bot builds them)
from bot.app.runtime import App  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.sandbox.emulator import FakeTelegram  # noqa: E402
from bot.sandbox.settle import settle  # noqa: E402

TOKEN = "123456:STATEMENTS"
STAFF_CHAT = -1001000
STAFF = 7001
FIRST_CLIENT = 1_000_000


class Counts:
    """Statements and commits on one engine, by the asyncio task that ran them."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.commits: Counter[str] = Counter()
        self.texts: Counter[tuple[str, str]] = Counter()
        self.on = False

    @staticmethod
    def who() -> str:
        """Delivery (its worker and the sends it starts, bot/telegram/delivery.py) or the
        handling of updates (everything else: intake, the scheduler's ticks)."""
        task = asyncio.current_task()
        coroutine = task.get_coro() if task is not None else None
        where = getattr(coroutine, "__qualname__", "")
        return "delivery" if where.startswith("DeliveryWorker") else "handling"

    def listen(self, engine: Any) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def statement(conn: Any, cursor: Any, sql: str, *_: Any) -> None:
            if self.on:
                who = self.who()
                self.statements[who] += 1
                self.texts[(who, _shape(sql))] += 1

        @event.listens_for(engine, "commit")
        def commit(conn: Any) -> None:
            if self.on:
                self.commits[self.who()] += 1


def _shape(sql: str) -> str:
    """The statement without its literal lists, short enough for a line."""
    sql = re.sub(r"\s+", " ", sql).strip()
    sql = re.sub(r"\((?:\?, )+\?\)", "(?…)", sql)
    return sql[:150]


async def measure(clients: int, verbose: bool = False) -> Counts:
    folder = Path(tempfile.mkdtemp(prefix="frontdesk-statements-"))
    counts = Counts()
    async with FakeTelegram(TOKEN) as tg:
        tg.add_group(STAFF_CHAT, "Поддержка", is_forum=True, members={STAFF: "administrator"})
        ids = [FIRST_CLIENT + i for i in range(clients + 1)]
        for user_id in ids:
            tg.add_user(user_id, f"Клиент{user_id}", language_code="ru")
        config = parse_config({
            "telegram": {"token": TOKEN, "api_base": tg.base_url, "staff_chat_id": STAFF_CHAT,
                         "staff_forum": True, "poll_timeout": 1},
            "database": {"url": f"sqlite+aiosqlite:///{folder / 'frontdesk.db'}"},
            "delivery": {"global_per_second": 1000, "per_chat_per_second": 1000,
                         "per_group_per_minute": 100000},
            "quality": {"enabled": False},
            "reports": {"directory": str(folder / "reports")},
        })
        app = App(config)
        counts.listen(app.db.engine.sync_engine)
        await app.start()
        try:
            tg.send_message(ids[0], "Не работает интернет")  # caches, first of everything
            await settle(tg, [app], _zero, timeout=60)
            counts.on = True
            for user_id in ids[1:]:
                tg.send_message(user_id, "Не работает интернет")
            await settle(tg, [app], _zero, timeout=300)
            counts.on = False
        finally:
            await app.stop()
    return counts


async def _zero() -> int:
    return 0


def render(counts: Counts, clients: int, verbose: bool = False) -> str:
    lines = [f"SQL per registration ({clients} clients' first messages, SQLite):",
             f"{'':12} {'statements':>11} {'commits':>8}"]
    for who in ("handling", "delivery"):
        lines.append(f"{who:12} {counts.statements[who] / clients:11.1f} "
                     f"{counts.commits[who] / clients:8.2f}")
    lines.append(f"{'all':12} {sum(counts.statements.values()) / clients:11.1f} "
                 f"{sum(counts.commits.values()) / clients:8.2f}")
    if verbose:
        lines.append("")
        for (who, sql), n in counts.texts.most_common():
            lines.append(f"{n / clients:6.2f} {who:9} {sql}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    counts = asyncio.run(measure(args.clients, args.verbose))
    print(render(counts, args.clients, args.verbose))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
