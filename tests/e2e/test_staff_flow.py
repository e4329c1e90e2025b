"""What staff do from the group: answer, note, change status, close, reopen; and who may."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from bot.app.runtime import App
from bot.config import Config
from bot.messaging.callbacks import TicketAction
from bot.sandbox.emulator import FakeTelegram
from storage.models import Ticket, TicketEvent
from tests.e2e.cluster import new_app
from tests.e2e.conftest import (
    ADMIN,
    CLIENT,
    STAFF,
    STAFF_2,
    STAFF_CHAT,
    STRANGER,
    settle,
    texts_to,
)


async def open_incident(app: App, tg: FakeTelegram, text: str = "Не работает VPN") -> int:
    tg.send_message(CLIENT, text)
    await settle(app, tg)
    return int(tg.topics(STAFF_CHAT)[-1]["message_thread_id"])


async def ticket_1(app: App) -> Ticket:
    async with app.db.transaction() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.number == 1))
    assert ticket is not None
    return ticket


async def test_incident_gets_a_topic_with_a_card(app: App, tg: FakeTelegram) -> None:
    topic = await open_incident(app, tg, "Не работает VPN у всего отдела продаж")
    assert tg.topics(STAFF_CHAT)[0]["name"].startswith("#1 · Анна · Не работает VPN")
    card = tg.sent(STAFF_CHAT, topic)[0]
    assert "#1" in card["plain"] and "@anna" in card["plain"]
    labels = [b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert labels[:2] == ["Взять", "Закрыть"]


async def test_staff_answer_in_topic_reaches_client_signed_and_notes_do_not(
    app: App, tg: FakeTelegram
) -> None:
    topic = await open_incident(app, tg)
    tg.send_message(STAFF, "Перезапустите клиент VPN, пожалуйста", chat_id=STAFF_CHAT,
                    thread_id=topic)
    tg.send_message(STAFF, "!клиент сложный, звонить после обеда", chat_id=STAFF_CHAT,
                    thread_id=topic)
    await settle(app, tg)
    to_client = texts_to(tg, CLIENT)
    assert to_client[-1] == "#1 · Иван Петров:\nПерезапустите клиент VPN, пожалуйста"
    assert not any("сложный" in text for text in to_client)
    ticket = await ticket_1(app)
    assert ticket.first_response_at is not None
    assert ticket.assignee_id == STAFF and ticket.status == "in_progress"


async def test_staff_answer_by_reply_in_a_group_without_topics(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    tg.chats[STAFF_CHAT].info.pop("is_forum")
    app = new_app(make_config(desk={"signature": "role"}))
    await app.start()
    try:
        tg.send_message(CLIENT, "Не печатает принтер")
        await settle(app, tg)
        card = tg.sent(STAFF_CHAT)[0]
        assert tg.topics(STAFF_CHAT) == [] and "#1" in card["plain"]
        tg.send_message(CLIENT, "модель HP 1020")
        await settle(app, tg)
        followup = tg.sent(STAFF_CHAT)[-1]
        assert followup["reply_to_message"]["message_id"] == card["message_id"]
        tg.send_message(STAFF, "Сейчас подключусь", chat_id=STAFF_CHAT,
                        reply_to=followup["message_id"])
        tg.send_message(STAFF, "просто болтаем в группе", chat_id=STAFF_CHAT)
        await settle(app, tg)
        assert texts_to(tg, CLIENT)[-1] == "#1 · Служба поддержки:\nСейчас подключусь"
        assert not any("болтаем" in text for text in texts_to(tg, CLIENT))
    finally:
        await app.stop()


async def test_media_both_ways(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, photo=True, caption="вот ошибка")
    await settle(app, tg)
    topic = int(tg.topics(STAFF_CHAT)[0]["message_thread_id"])
    assert any("photo" in m for m in tg.sent(STAFF_CHAT, topic))
    tg.send_message(STAFF, document="instruction.pdf", caption="Инструкция",
                    chat_id=STAFF_CHAT, thread_id=topic)
    tg.send_message(STAFF, voice=True, chat_id=STAFF_CHAT, thread_id=topic)
    await settle(app, tg)
    to_client = tg.sent(CLIENT)
    assert "document" in to_client[-2] and "Инструкция" in to_client[-2]["plain"]
    assert "voice" in to_client[-1]


async def test_status_changes_are_announced_and_audited(app: App, tg: FakeTelegram) -> None:
    topic = await open_incident(app, tg)
    message_id, data = tg.find_button(STAFF_CHAT, "Взять", thread_id=topic) or (0, "")
    tg.press_button(STAFF, STAFF_CHAT, message_id, data)
    await settle(app, tg)
    tg.send_message(STAFF, "/status waiting Пришлите скриншот ошибки", chat_id=STAFF_CHAT,
                    thread_id=topic)
    await settle(app, tg)
    tg.send_message(STAFF, "/status 1 resolved Переустановили сертификат", chat_id=STAFF_CHAT)
    await settle(app, tg)
    to_client = texts_to(tg, CLIENT)
    assert "Иван Петров взял обращение #1" in to_client[1]
    assert "нужен ваш ответ" in to_client[2] and "Пришлите скриншот ошибки" in to_client[2]
    assert "решено" in to_client[3] and "Переустановили сертификат" in to_client[3]
    assert tg.sent(CLIENT)[3]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Не решено"
    async with app.db.transaction() as session:
        events = list(await session.scalars(select(TicketEvent).order_by(TicketEvent.id)))
    assert [(e.kind, e.old_value, e.new_value) for e in events] == [
        ("opened", None, "new"),
        ("assigned", None, "Иван Петров"),
        ("status", "new", "taken"),
        ("status", "taken", "waiting"),
        ("status", "waiting", "resolved"),
    ]
    assert {e.actor_id for e in events[1:]} == {STAFF}


async def test_close_then_client_reopens_with_the_same_number(app: App, tg: FakeTelegram) -> None:
    topic = await open_incident(app, tg)
    tg.send_message(STAFF, "/close Заменили роутер", chat_id=STAFF_CHAT, thread_id=topic)
    await settle(app, tg)
    # One message: the closure with the rating request (bot/services/ratings.py).
    assert "закрыто" in texts_to(tg, CLIENT)[-1] and "Заменили роутер" in texts_to(tg, CLIENT)[-1]
    message_id, data = tg.find_button(CLIENT, "Не решено") or (0, "")
    tg.press_button(CLIENT, CLIENT, message_id, data)
    await settle(app, tg)
    assert "#1 снова открыто" in texts_to(tg, CLIENT)[-1]
    ticket = await ticket_1(app)
    assert ticket.status == "new" and ticket.reopen_count == 1
    # Closed again, the client replies to the closure message: reopened a second time.
    tg.send_message(STAFF, "/close 1", chat_id=STAFF_CHAT)
    await settle(app, tg)
    tg.send_message(CLIENT, "опять не работает", reply_to=tg.sent(CLIENT)[-1]["message_id"])
    await settle(app, tg)
    ticket = await ticket_1(app)
    assert ticket.reopen_count == 2 and ticket.status == "new"
    assert "🔄 #1 открыто снова клиентом — опять не работает" in texts_to(tg, STAFF_CHAT, topic)[-2]


async def test_staff_reopen_and_severity_and_tickets(app: App, tg: FakeTelegram) -> None:
    topic = await open_incident(app, tg)
    tg.send_message(STAFF, "/sev low", chat_id=STAFF_CHAT, thread_id=topic)
    tg.send_message(STAFF, "/close", chat_id=STAFF_CHAT, thread_id=topic)
    tg.send_message(STAFF, "/reopen 1", chat_id=STAFF_CHAT)
    tg.send_message(STAFF, "/tickets", chat_id=STAFF_CHAT)
    await settle(app, tg)
    assert "низкая" in texts_to(tg, CLIENT)[1]
    # Answers to commands may overtake incident lines of other topics: find it by content.
    listing = next(t for t in texts_to(tg, STAFF_CHAT) if t.startswith("Открытые обращения"))
    assert "#1 · низкая" in listing and "Анна" in listing


async def test_staff_command_errors_are_explained(app: App, tg: FakeTelegram) -> None:
    await open_incident(app, tg)
    tg.send_message(STAFF, "/take", chat_id=STAFF_CHAT)
    tg.send_message(STAFF, "/take 99", chat_id=STAFF_CHAT)
    tg.send_message(STAFF, "/status 1 flying", chat_id=STAFF_CHAT)
    tg.send_message(STAFF, "/sev 1 urgent", chat_id=STAFF_CHAT)
    tg.send_message(STAFF, "/help", chat_id=STAFF_CHAT)
    await settle(app, tg)
    replies = texts_to(tg, STAFF_CHAT)[-5:]
    assert "Укажите номер обращения" in replies[0]
    assert "#99 не найдено" in replies[1]
    assert "Статус может быть" in replies[2]
    assert "Важность может быть" in replies[3]
    assert "/take 42" in replies[4]


async def test_non_staff_cannot_act(app: App, tg: FakeTelegram) -> None:
    await open_incident(app, tg)
    tg.send_message(STRANGER, "/close 1")
    tg.send_message(CLIENT, "/take 1")
    await settle(app, tg)
    assert "только для сотрудников" in texts_to(tg, STRANGER)[-1]
    assert "только для сотрудников" in texts_to(tg, CLIENT)[-1]
    # A stranger forging the staff button's data in their own chat.
    forged = TicketAction(action="close", number=1).pack()
    tg.press_button(STRANGER, STRANGER, 1, forged, check=False)
    await settle(app, tg)
    assert "только для сотрудников" in tg.callback_answers[-1]["text"]
    assert (await ticket_1(app)).status == "new"


async def test_admin_and_group_member_may_act_from_a_private_chat(
    app: App, tg: FakeTelegram
) -> None:
    await open_incident(app, tg)
    tg.send_message(ADMIN, "/take 1")
    await settle(app, tg)
    assert (await ticket_1(app)).assignee_id == ADMIN
    tg.send_message(STAFF_2, "/close 1 Готово")
    await settle(app, tg)
    assert (await ticket_1(app)).status == "closed"


async def test_forged_and_stale_buttons_change_nothing(app: App, tg: FakeTelegram) -> None:
    topic = await open_incident(app, tg)
    card_id = tg.sent(STAFF_CHAT, topic)[0]["message_id"]
    for data in ("t:take:999", "t:explode:1", "garbage", "p:1:999999", "ca:notfixed:1"):
        tg.press_button(STAFF, STAFF_CHAT, card_id, data, check=False)
    tg.press_button(CLIENT, CLIENT, 1, "ca:notfixed:1", check=False)  # not closed: refused
    await settle(app, tg)
    answers = [a.get("text", "") for a in tg.callback_answers]
    assert len(answers) == 6 and all(answers)
    ticket = await ticket_1(app)
    assert ticket.status == "new" and ticket.assignee_id is None and ticket.reopen_count == 0
