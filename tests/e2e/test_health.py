"""/health in the staff group: outbox depth, oldest pending, last error, 429s in the last hour."""

from __future__ import annotations

from bot.app.runtime import App
from bot.messaging.outbox import PRIORITY_NOTICE, OutboxWriter
from bot.sandbox.emulator import FakeTelegram, Fault
from storage.repos.outbox import Outbox
from tests.e2e.conftest import CLIENT, CLIENT_EN, STAFF, STAFF_CHAT, settle, texts_to


async def health_reply(tg: FakeTelegram, chat_id: int, before: int) -> str:
    def found() -> str | None:
        for message in tg.sent(chat_id)[before:]:
            if "Доставка сообщений" in message.get("plain", ""):
                return str(message["plain"])
        return None

    return str(await tg.wait_for(found, timeout=10))


async def test_health_shows_queue_errors_and_429s(app: App, tg: FakeTelegram) -> None:
    tg.inject(Fault.too_many_requests(retry_after=1), count=1)
    tg.send_message(CLIENT, "Не открывается 1С")
    await settle(app, tg)
    assert "#1" in texts_to(tg, CLIENT)[0]  # delivered after the 429

    before = len(tg.sent(STAFF_CHAT))
    tg.send_message(STAFF, "/health", chat_id=STAFF_CHAT)
    text = await health_reply(tg, STAFF_CHAT, before)
    assert "Очередь пуста" in text
    assert "за час: 1" in text
    assert "Ошибок нет" in text

    # A message Telegram keeps failing: it stays in the queue, with its error shown.
    tg.inject(Fault.server_error(502), chat_id=CLIENT_EN)
    async with app.db.transaction() as session:
        await OutboxWriter(Outbox(session), app.clock()).send_text(
            CLIENT_EN, "stuck", priority=PRIORITY_NOTICE)
    app.delivery.wake()
    await tg.wait_for(lambda: tg.calls_to("sendMessage", CLIENT_EN), timeout=5)

    before = len(tg.sent(STAFF_CHAT))
    tg.send_message(STAFF, "/health", chat_id=STAFF_CHAT)
    text = await health_reply(tg, STAFF_CHAT, before)
    assert "В очереди: 1" in text
    assert f"чат {CLIENT_EN}" in text and "Bad Gateway" in text


async def test_health_is_for_the_staff_group_only(app: App, tg: FakeTelegram) -> None:
    tg.send_message(STAFF, "/health")  # in the private chat with the bot
    await settle(app, tg)
    assert not any("Доставка сообщений" in text for text in texts_to(tg, STAFF))
