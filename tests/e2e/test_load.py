"""200 clients writing at once: 200 distinct, gapless numbers and 200 confirmations."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.app.runtime import App
from bot.sandbox.emulator import FakeTelegram
from storage.models import Ticket
from tests.e2e.conftest import settle

CLIENTS = 200


async def test_200_clients_at_once(app: App, tg: FakeTelegram) -> None:
    first = 800_000
    for offset in range(CLIENTS):
        tg.add_user(first + offset, f"Клиент {offset}", language_code="ru")
    for offset in range(CLIENTS):
        tg.send_message(first + offset, f"Нет интернета в офисе {offset}")
    await settle(app, tg, timeout=60)
    async with app.db.transaction() as session:
        numbers = sorted(await session.scalars(select(Ticket.number)))
    assert numbers == list(range(1, CLIENTS + 1))
    confirmed = set()
    for offset in range(CLIENTS):
        sent = tg.sent(first + offset)
        assert len(sent) == 1, f"client {offset} got {len(sent)} messages"
        match = re.search(r"#(\d+)", sent[0]["plain"])
        assert match is not None
        confirmed.add(int(match.group(1)))
    assert confirmed == set(numbers)
