"""`python -m bot sandbox`: the real bot wired to the emulator on loopback, in this terminal.

Nothing is faked on the bot's side: the same App, HTTP session, database,
intake and delivery worker as in production, only `[telegram] api_base` points
at the emulator. The database is a temporary SQLite file unless `--db` is given.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from bot.app.runtime import App
from bot.config import parse_config
from bot.sandbox.emulator import FakeTelegram
from bot.sandbox.settle import settle
from bot.sandbox.terminal import run_terminal
from storage.repos.outbox import Outbox

TOKEN = "100000:SANDBOX"
CLIENT_ID = 1001
STAFF_ID = 2001
STAFF_CHAT_ID = -1009000


async def run_sandbox(script: Path | None = None, db_path: Path | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="frontdesk-sandbox-") as scratch:
        database = db_path or Path(scratch) / "sandbox.db"
        async with FakeTelegram(TOKEN) as tg:
            tg.add_user(CLIENT_ID, "Анна", username="anna_client", language_code="ru")
            tg.add_user(STAFF_ID, "Иван", username="ivan_support", language_code="ru")
            tg.add_group(STAFF_CHAT_ID, "Поддержка", is_forum=True,
                         members={STAFF_ID: "administrator"})
            config = parse_config({
                "telegram": {"token": TOKEN, "api_base": tg.base_url,
                             "staff_chat_id": STAFF_CHAT_ID, "poll_timeout": 1},
                "database": {"url": f"sqlite+aiosqlite:///{database}"},
                "desk": {"name": "Sandbox IT"},
                # The emulator has no limits of its own; keep the conversation snappy.
                "delivery": {"per_chat_per_second": 20, "per_group_per_minute": 600},
            })
            app = App(config)

            async def undelivered() -> int:
                async with app.db.transaction() as session:  # held rows: none in the sandbox
                    return len(await Outbox(session).due(app.clock() + timedelta(days=1), 1))

            async def bot_settled(timeout: float) -> None:
                await settle(tg, [app], undelivered, timeout)

            await app.start()
            try:
                if script is not None:
                    with script.open(encoding="utf-8") as lines:
                        return await run_terminal(
                            tg, client_id=CLIENT_ID, staff_id=STAFF_ID,
                            staff_chat_id=STAFF_CHAT_ID, script=lines, out=sys.stdout,
                            settle=bot_settled,
                        )
                return await run_terminal(
                    tg, client_id=CLIENT_ID, staff_id=STAFF_ID, staff_chat_id=STAFF_CHAT_ID,
                    script=None, out=sys.stdout, settle=bot_settled,
                )
            finally:
                await app.stop()
