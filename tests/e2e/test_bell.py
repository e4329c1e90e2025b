"""The bell (bot/services/bell.py): a quarterly "Ужас" travels to the staff group like a
bad rating, the client is asked what is wrong and their answer joins the alert's thread;
"Взять" gives the follow-up an owner (staff only, data checked); "not used" is counted
apart; /quality who; /stats counts bad ratings and answers with and without an owner; the
company's quarterly trend in /org."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, update

from bot.app.runtime import App
from bot.config import Config
from bot.messaging.callbacks import BellTake
from bot.sandbox.emulator import FakeTelegram
from bot.services import quality as q
from storage.models import Client, Company, QualityDelivery, Ticket
from tests.e2e.cluster import new_app
from tests.e2e.conftest import (
    ADMIN,
    CLIENT,
    CLIENT_EN,
    STAFF,
    STAFF_2,
    STAFF_CHAT,
    settle,
    texts_to,
)


def general(tg: FakeTelegram) -> list[dict[str, Any]]:
    """The staff group's own messages (not in an incident's topic)."""
    return [m for m in tg.sent(STAFF_CHAT) if "message_thread_id" not in m]


def press(tg: FakeTelegram, user: int, chat: int, label: str) -> tuple[int, str]:
    found = tg.find_button(chat, label)
    assert found is not None, f"no button {label!r}"
    tg.press_button(user, chat, *found)
    return found


async def staff_says(app: App, tg: FakeTelegram, user: int, text: str) -> list[str]:
    before = len(tg.sent(STAFF_CHAT))
    tg.send_message(user, text, chat_id=STAFF_CHAT)
    await settle(app, tg)
    return [m.get("plain", "") for m in tg.sent(STAFF_CHAT)[before:]]


async def test_a_quarterly_terrible_rings_the_bell_and_the_followup_is_taken(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    tg.chats[STAFF_CHAT].members[ADMIN] = "administrator"
    app = new_app(make_config())  # the default audience: everyone, incidents or not
    await app.start()
    try:
        tg.send_message(CLIENT, "Не работает VPN")
        tg.send_message(CLIENT_EN, "/start")
        await settle(app, tg)
        tg.send_message(ADMIN, "/quality send", chat_id=STAFF_CHAT)
        await settle(app, tg)
        assert "запущена: 2 получателей" in texts_to(tg, STAFF_CHAT)[-1]
        await q.send_pending(app.db, app.container.notifier_for, app.config, app.clock())
        app.delivery.wake()
        await settle(app, tg)
        check = tg.sent(CLIENT)[-1]
        labels = [b["text"] for row in check["reply_markup"]["inline_keyboard"] for b in row]
        assert "Не пользовались / нечего оценить" in labels

        alerts_before = len(general(tg))
        press(tg, CLIENT, CLIENT, "Ужас")
        await settle(app, tg)
        [alert] = general(tg)[alerts_before:]
        text = alert["plain"]
        print("\nSTAFF ALERT:\n" + text)
        assert "Плохой ответ на проверку качества" in text and "Ужас" in text
        assert "Анна @anna" in text and "Компания: не указана" in text
        assert "#1 · зарегистрировано" in text and "Не работает VPN" in text
        [[take]] = alert["reply_markup"]["inline_keyboard"]
        assert take["text"] == "Взять"
        ask = texts_to(tg, CLIENT)[-1]
        print("CLIENT ASKED:\n" + ask)
        assert "Что не так?" in ask

        # The client's answer goes to the alert's thread; it is no new incident.
        tg.send_message(CLIENT, "Второй месяц тормозит 1С, никто не перезвонил")
        await settle(app, tg)
        reply = tg.sent(STAFF_CHAT)[-1]
        print("IN THE ALERT'S THREAD:\n" + reply["plain"])
        assert reply["reply_to_message"]["message_id"] == alert["message_id"]
        assert "Второй месяц тормозит 1С" in reply["plain"]
        print("CLIENT THANKED:\n" + texts_to(tg, CLIENT)[-1])
        assert "передали ваш ответ" in texts_to(tg, CLIENT)[-1]
        async with app.db.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(Ticket)) == 1

        # "Взять": not on forged data (who presses is re-checked by the staff directory: in
        # a private staff group whoever can press is a member, test_guard covers a public
        # one); once.
        before = len(tg.callback_answers)
        tg.press_button(STAFF, STAFF_CHAT, alert["message_id"],
                        BellTake(kind="q", ref=999).pack(), check=False)
        tg.press_button(STAFF, STAFF_CHAT, alert["message_id"],
                        BellTake(kind="x", ref=1).pack(), check=False)
        await settle(app, tg)
        forged = [a for a in tg.callback_answers[before:] if a["user_id"] == STAFF]
        assert len(forged) == 2 and all(a["show_alert"] for a in forged), forged
        async with app.db.transaction() as session:  # the forged presses took nothing
            owner = await session.scalar(select(QualityDelivery.followup_by)
                                         .where(QualityDelivery.alert_outbox_id.is_not(None)))
        assert owner is None
        tg.press_button(STAFF, STAFF_CHAT, alert["message_id"], take["callback_data"])
        await settle(app, tg)
        taken = tg.sent(STAFF_CHAT)[-1]
        print("TAKEN:\n" + taken["plain"])
        assert taken["plain"] == "👤 Разбором занимается Иван Петров."
        assert taken["reply_to_message"]["message_id"] == alert["message_id"]
        tg.press_button(STAFF_2, STAFF_CHAT, alert["message_id"], take["callback_data"])
        await settle(app, tg)
        assert "уже занимается Иван Петров" in tg.callback_answers[-1]["text"]

        # "Not used" from the other client: counted apart, no alert.
        alerts = len(general(tg))
        press(tg, CLIENT_EN, CLIENT_EN, "Did not use it / nothing to rate")
        await settle(app, tg)
        assert len(general(tg)) == alerts
        async with app.db.transaction() as session:
            unused = await session.scalar(select(func.count()).select_from(QualityDelivery)
                                          .where(QualityDelivery.unused_at.is_not(None)))
        assert unused == 1

        [status] = await staff_says(app, tg, ADMIN, "/quality status")
        assert "Ответили: 2" in status and "не пользовались / нечего оценить: 1" in status
        assert "Ужас: 1 (100.0%)" in status
        [who] = await staff_says(app, tg, ADMIN, "/quality who")
        print("/quality who:\n" + who)
        assert "Анна @anna — Ужас · разбирает Иван Петров: «Второй месяц" in who
        assert "John @john — не пользовались / нечего оценить" in who
        summary = (await staff_says(app, tg, STAFF, "/stats quarter"))[-1]
        assert "Плохие ответы на проверку качества: 1, разбор взят: 1, без разбора: 0" in summary
    finally:
        await app.stop()


async def test_a_bad_rating_alert_is_taken_and_stats_count_the_followups(
    app: App, tg: FakeTelegram
) -> None:
    tg.send_message(CLIENT, "Не печатает принтер")
    await settle(app, tg)
    tg.send_message(STAFF, "/close 1 Заменили картридж", chat_id=STAFF_CHAT)
    await settle(app, tg)
    press(tg, CLIENT, CLIENT, "Плохо")
    await settle(app, tg)
    alert = general(tg)[-1]
    assert "Плохая оценка: #1 — Плохо" in alert["plain"]
    summary = (await staff_says(app, tg, STAFF, "/stats"))[-1]
    assert "Плохие оценки: 1, разбор взят: 0, без разбора: 1" in summary
    # The comment joins the alert's thread.
    tg.send_message(CLIENT, "Два дня ждали картридж")
    await settle(app, tg)
    comment = tg.sent(STAFF_CHAT)[-1]
    assert "Два дня ждали картридж" in comment["plain"]
    assert comment["reply_to_message"]["message_id"] == alert["message_id"]
    press(tg, STAFF_2, STAFF_CHAT, "Взять")
    await settle(app, tg)
    assert tg.sent(STAFF_CHAT)[-1]["plain"] == "👤 Разбором занимается Мария."
    summary = (await staff_says(app, tg, STAFF, "/stats"))[-1]
    assert "Плохие оценки: 1, разбор взят: 1, без разбора: 0" in summary


async def test_the_company_trend_shows_in_org_and_company_stats(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    tg.chats[STAFF_CHAT].members[ADMIN] = "administrator"
    app = new_app(make_config())
    await app.start()
    try:
        await staff_says(app, tg, STAFF, "/org add ООО Ромашка")
        tg.send_message(CLIENT, "/start")
        await settle(app, tg)
        async with app.db.transaction() as session:
            company = await session.scalar(select(Company))
            assert company is not None
            await session.execute(update(Client).where(Client.user_id == CLIENT)
                                  .values(company_id=company.id, company=company.name))
        before = (await staff_says(app, tg, STAFF, "/org ООО Ромашка"))[-1]
        assert "Проверка качества, по периодам: проверок качества ещё не было" in before
        await staff_says(app, tg, ADMIN, "/quality send")
        await q.send_pending(app.db, app.container.notifier_for, app.config, app.clock())
        app.delivery.wake()
        await settle(app, tg)
        press(tg, CLIENT, CLIENT, "Плохо")
        await settle(app, tg)
        card = (await staff_says(app, tg, STAFF, "/org ООО Ромашка"))[-1]
        print("\n/org:", [line for line in card.splitlines() if "Проверка качества" in line])
        assert re.search(r"Проверка качества, по периодам: \d{4}Q\d: средняя 2\.0 "
                         r"\(1 отв\., плохих 1\)", card), card
        # The desk-wide /stats lists each company's trend (those with answers only).
        desk = (await staff_says(app, tg, STAFF, "/stats"))[-1]
        assert re.search(r"Проверка качества по компаниям\nООО Ромашка: \d{4}Q\d: средняя "
                         r"2\.0 \(1 отв\., плохих 1\)", desk), desk
        assert any("Компания: ООО Ромашка" in m["plain"] for m in general(tg))  # the alert
    finally:
        await app.stop()
