"""What a client sees: numbers, follow-ups, the choice between incidents, /my, /status."""

from __future__ import annotations

from sqlalchemy import select

from bot.app.runtime import App
from bot.sandbox.emulator import FakeTelegram
from storage.models import Ticket, TicketMessage
from tests.e2e.conftest import CLIENT, CLIENT_EN, STAFF_CHAT, settle, texts_to


async def tickets(app: App) -> list[Ticket]:
    async with app.db.transaction() as session:
        return list(await session.scalars(select(Ticket).order_by(Ticket.number)))


async def test_start_greets_in_the_clients_language(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "/start")
    tg.send_message(CLIENT_EN, "/start")
    await settle(app, tg)
    assert "Здравствуйте, Анна" in texts_to(tg, CLIENT)[0]
    assert "/my" in texts_to(tg, CLIENT)[0]
    assert "Hello, John" in texts_to(tg, CLIENT_EN)[0]
    assert await tickets(app) == []  # a greeting is not an incident


async def test_commands_are_registered_for_private_chats_and_the_staff_group(
    app: App, tg: FakeTelegram
) -> None:
    private = tg.commands["all_private_chats"]
    staff = tg.commands[f"chat:{STAFF_CHAT}"]
    assert {c["command"] for c in private} >= {"new", "my", "status", "help"}
    assert {c["command"] for c in staff} >= {"take", "close", "tickets", "help"}
    assert "all_private_chats@en" in tg.commands


async def test_message_registers_incident_and_followups_attach(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "Не открывается 1С у бухгалтера")
    await settle(app, tg)
    first = texts_to(tg, CLIENT)
    assert len(first) == 1 and "#1" in first[0] and "зарегистрировано" in first[0]
    tg.send_message(CLIENT, "Ошибка: нет лицензии")
    tg.send_message(CLIENT, photo=True, caption="скриншот")
    await settle(app, tg)
    assert [t.number for t in await tickets(app)] == [1]
    replies = texts_to(tg, CLIENT)
    assert "Добавили к обращению #1" in replies[1]
    assert len(replies) == 2  # one acknowledgement for a burst of follow-ups
    topic = tg.topics(STAFF_CHAT)[0]
    in_topic = tg.sent(STAFF_CHAT, topic["message_thread_id"])
    assert "Ошибка: нет лицензии" in in_topic[1]["plain"]
    assert "photo" in in_topic[2]  # the screenshot itself reaches staff


async def test_new_command_starts_a_separate_incident(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "Принтер не печатает")
    await settle(app, tg)
    tg.send_message(CLIENT, "/new")
    await settle(app, tg)
    tg.send_message(CLIENT, "И ещё: не работает сканер")
    await settle(app, tg)
    tg.send_message(CLIENT, "/new Третья проблема: монитор мигает")
    await settle(app, tg)
    assert [t.number for t in await tickets(app)] == [1, 2, 3]
    assert [t.subject for t in await tickets(app)][2] == "Третья проблема: монитор мигает"


async def test_with_several_open_incidents_the_client_is_asked_which(
    app: App, tg: FakeTelegram
) -> None:
    tg.send_message(CLIENT, "Принтер не печатает")
    await settle(app, tg)
    tg.send_message(CLIENT, "/new Сканер не сканирует")
    await settle(app, tg)
    question = tg.send_message(CLIENT, "он снова пишет ошибку")
    await settle(app, tg)
    assert "К какому относится" in texts_to(tg, CLIENT)[-1]
    message_id, data = tg.find_button(CLIENT, "Дополнить #1") or (0, "")
    tg.press_button(CLIENT, CLIENT, message_id, data)
    await settle(app, tg)
    async with app.db.transaction() as session:
        attached = await session.scalar(
            select(TicketMessage.ticket_id).where(
                TicketMessage.message_id == question["message_id"]
            )
        )
    assert attached == (await tickets(app))[0].id
    # Pressing again does not attach it twice.
    tg.press_button(CLIENT, CLIENT, message_id, data)
    await settle(app, tg)
    assert tg.callback_answers[-1].get("text")


async def test_reply_to_a_bot_message_routes_to_that_incident(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "Принтер не печатает")
    await settle(app, tg)
    registered_1 = tg.sent(CLIENT)[-1]["message_id"]
    tg.send_message(CLIENT, "/new Сканер не сканирует")
    await settle(app, tg)
    tg.send_message(CLIENT, "проверила кабель", reply_to=registered_1)
    await settle(app, tg)
    assert "Добавили к обращению #1" in texts_to(tg, CLIENT)[-1]


async def test_my_and_status_show_only_own_incidents(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "Не работает почта")
    tg.send_message(CLIENT_EN, "My laptop does not boot")
    await settle(app, tg)
    number_en = next(t.number for t in await tickets(app) if t.subject.startswith("My"))
    tg.send_message(CLIENT, "/my")
    tg.send_message(CLIENT, f"/status {number_en}")
    tg.send_message(CLIENT_EN, f"/status {number_en}")
    tg.send_message(CLIENT_EN, "/status")
    await settle(app, tg)
    mine = texts_to(tg, CLIENT)
    assert "Не работает почта" in mine[-2] and "laptop" not in mine[-2]
    assert f"#{number_en} не найдено" in mine[-1]
    theirs = texts_to(tg, CLIENT_EN)
    assert f"Incident #{number_en}" in theirs[-2] and "registered" in theirs[-2]
    assert "/status 42" in theirs[-1]


async def test_my_with_no_incidents(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT_EN, "/my")
    await settle(app, tg)
    assert "no incidents yet" in texts_to(tg, CLIENT_EN)[-1]
