"""A caption over Telegram's 1,024 characters: cut by the text splitter, the rest follows."""

from __future__ import annotations

from bot.app.runtime import App
from bot.messaging.outbox import CAPTION_LIMIT
from bot.sandbox.emulator import FakeTelegram
from bot.sandbox.textparse import utf16_len
from tests.e2e.conftest import CLIENT, STAFF, STAFF_CHAT, settle


def letters(text: str) -> str:
    return "".join(text.split())


async def test_a_photo_answer_with_a_long_caption_reaches_the_client_whole(
    app: App, tg: FakeTelegram
) -> None:
    tg.send_message(CLIENT, "Не работает сканер")
    await settle(app, tg)
    topic = int(tg.topics(STAFF_CHAT)[0]["message_thread_id"])
    # Within Telegram's limit as staff sent it; over it with the answer's header, and
    # longer still as HTML (every <, > and & escaped), so a raw cut would break an entity.
    caption = ("Сделайте так: " + " ".join(f"<шаг {n}> & ещё" for n in range(80)))[:1020]
    tg.send_message(STAFF, chat_id=STAFF_CHAT, thread_id=topic, photo=True, caption=caption)
    await settle(app, tg)
    photo, *rest = tg.sent(CLIENT)[1:]
    assert "photo" in photo and utf16_len(photo["caption"]) <= CAPTION_LIMIT
    assert rest and all("photo" not in message for message in rest)
    shown = letters(" ".join(message["plain"] for message in [photo, *rest]))
    assert shown.startswith("#1") and shown.endswith(letters(caption))
