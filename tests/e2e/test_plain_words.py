"""Plain words, and fewer of them (issue 16): every event of /status in the client's words,
"This is urgent" on a critical incident says what happens now, a comment that says the
problem is back offers the reopen button, and the closure and the rating request are one
message (the count of what a client gets for one incident)."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select

from bot.app.runtime import App
from bot.config import Config
from bot.domain.clock import utc_now
from bot.domain.enums import ActorKind, EventKind, TicketStatus
from bot.sandbox.emulator import FakeTelegram
from storage.models import Ticket, TicketEvent
from tests.e2e.cluster import new_app
from tests.e2e.conftest import CLIENT, CLIENT_EN, STAFF, STAFF_2, STAFF_CHAT, settle, texts_to

OUTAGE = "Не работает интернет во всём офисе, никто не может работать"

# What each kind's event carries in `new_value` (the values the desk writes).
VALUES = {EventKind.ASSIGNED: "Иван Петров", EventKind.STATUS: "in_progress",
          EventKind.REOPENED: "new", EventKind.SEVERITY: "critical",
          EventKind.URGENT: "critical", EventKind.FAQ_SOLVED: "printer-1",
          EventKind.RATING: "4", EventKind.RATING_COMMENT: "2",
          EventKind.SLA_WARNING: "resolution", EventKind.SLA_BREACH: "first_response",
          EventKind.STATUS_REMINDER: "in_progress", EventKind.PROBLEM: "Авария",
          EventKind.LINKED: "1", EventKind.UNLINKED: None, EventKind.SUGGESTED: "1"}
CODES = {str(kind) for kind in EventKind} | {"first_response", "resolution", "in_progress"}


async def ticket(app: App, number: int) -> Ticket:
    async with app.db.transaction() as session:
        found = await session.scalar(select(Ticket).where(Ticket.number == number))
    assert found is not None
    return found


def press(tg: FakeTelegram, label: str, user: int = CLIENT) -> int:
    found = tg.find_button(user, label)
    assert found is not None, f"no button {label!r}"
    tg.press_button(user, user, found[0], found[1])
    return found[0]


async def test_status_history_has_a_client_word_for_every_event_kind(
    app: App, tg: FakeTelegram
) -> None:
    tg.send_message(CLIENT, "Не печатает принтер")
    await settle(app, tg)
    tg.send_message(CLIENT_EN, "The printer does not print")
    await settle(app, tg)
    async with app.db.transaction() as session:
        for number in (1, 2):
            found = await session.scalar(select(Ticket).where(Ticket.number == number))
            assert found is not None
            for kind in EventKind:
                session.add(TicketEvent(
                    ticket_id=found.id, at=utc_now(), actor_kind=ActorKind.SYSTEM,
                    actor_id=None, actor_name=None, kind=kind, old_value=None,
                    new_value=VALUES.get(kind)))
    assert set(VALUES) | {EventKind.OPENED} == set(EventKind)  # a new kind needs a value here
    tg.send_message(CLIENT, "/status 1")
    tg.send_message(CLIENT_EN, "/status 2")
    await settle(app, tg)
    for user, lang in ((CLIENT, "ru"), (CLIENT_EN, "en")):
        history = texts_to(tg, user)[-1]
        lines = [line.split(" — ", 1)[1] for line in history.splitlines()[4:] if " — " in line]
        bare = [line for line in lines if line in CODES or re.search(r"[a-z]+_[a-z]+", line)]
        assert not bare, (lang, bare)
        assert not re.search(r"\bsla\b", history, re.IGNORECASE), (lang, history)
        assert len(lines) >= 9, (lang, history)  # the worded ones are all there
    ru = texts_to(tg, CLIENT)[-1]
    assert "ваша оценка: Хорошо" in ru and "вы отметили обращение как срочное" in ru
    assert "Your rating: Good".lower() in texts_to(tg, CLIENT_EN)[-1].lower()


async def test_urgent_on_a_critical_incident_says_what_happens_now_and_pages_again(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    app = new_app(make_config(sla={"on_duty": [STAFF_2]}))
    await app.start()
    try:
        tg.send_message(CLIENT, OUTAGE)
        await settle(app, tg)
        assert (await ticket(app, 1)).severity == "critical"
        topic = int(tg.topics(STAFF_CHAT)[-1]["message_thread_id"])
        tg.send_message(STAFF, "/take", chat_id=STAFF_CHAT, thread_id=topic)
        await settle(app, tg)
        press(tg, "🔥 Срочно")
        await settle(app, tg)
        said = texts_to(tg, CLIENT)[-1]
        assert "уже в работе как критическое" in said
        assert "ещё раз вызвали дежурного инженера" in said
        assert "Им занимается Иван Петров" in said
        assert "в течение" not in said and "круглосуточно" not in said  # no contract recital
        assert "теперь критическая" not in said
        [alert] = [m for m in tg.sent(STAFF_CHAT, topic) if "Срочно" in m["plain"]]
        assert "уже критическая, клиент торопит снова" in alert["plain"]
        paged = [e["user"]["id"] for e in alert["entities"] if e["type"] == "text_mention"]
        assert paged == [STAFF_2, STAFF]  # the on-duty engineer again, and the assignee
    finally:
        await app.stop()


async def closed(app: App, tg: FakeTelegram) -> int:
    tg.send_message(CLIENT, "Пропадает интернет")
    await settle(app, tg)
    topic = int(tg.topics(STAFF_CHAT)[-1]["message_thread_id"])
    tg.send_message(STAFF, "Перезагрузили роутер, проверьте", chat_id=STAFF_CHAT,
                    thread_id=topic)
    await settle(app, tg)
    tg.send_message(STAFF, "/close Заменили роутер", chat_id=STAFF_CHAT, thread_id=topic)
    await settle(app, tg)
    return topic


async def test_a_comment_that_says_the_problem_is_back_offers_the_reopen_button(
    app: App, tg: FakeTelegram
) -> None:
    await closed(app, tg)
    press(tg, "Плохо")
    await settle(app, tg)
    ask = texts_to(tg, CLIENT)[-1]
    assert "Что пошло не так?" in ask
    # No [ratings] managers: no promise that a manager reads it.
    assert "руководитель" not in ask and "вся команда поддержки" in ask
    tg.send_message(CLIENT, "интернет снова пропадает")
    await settle(app, tg)
    answer = tg.sent(CLIENT)[-1]
    assert "Похоже, проблема вернулась — открыть обращение #1 снова?" in answer["plain"]
    [[button]] = answer["reply_markup"]["inline_keyboard"]
    assert button["text"] == "Не решено"
    tg.press_button(CLIENT, CLIENT, answer["message_id"], button["callback_data"])
    await settle(app, tg)
    reopened = await ticket(app, 1)
    assert reopened.status.is_open and reopened.reopen_count == 1
    assert "снова открыто" in texts_to(tg, CLIENT)[-1]



async def test_managers_are_named_on_bad_ratings_and_promised_to_the_client(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    app = new_app(make_config(ratings={"managers": ["@head_of_support"]}))
    await app.start()
    try:
        await closed(app, tg)
        press(tg, "Ужас")
        await settle(app, tg)
        assert "его прочитает руководитель службы поддержки" in texts_to(tg, CLIENT)[-1]
        general = [m["plain"] for m in tg.sent(STAFF_CHAT) if "message_thread_id" not in m]
        assert "Руководитель: @head_of_support" in general[-1]
    finally:
        await app.stop()


async def test_one_incident_registration_to_rating_in_three_messages(
    app: App, tg: FakeTelegram
) -> None:
    """What a client gets for one incident: registered, the engineer's answer, the closure
    with the rating request. "Хорошо" adds nothing; "Нормально" adds "anything to add?"."""
    await closed(app, tg)
    press(tg, "Хорошо")
    await settle(app, tg)
    got = texts_to(tg, CLIENT)
    print("\nmessages to the client (Хорошо):", len(got))
    for text in got:
        print("  •", text.splitlines()[0])
    assert len(got) == 3, got
    assert "зарегистрировано" in got[0] and "Перезагрузили роутер" in got[1]
    # The closure message, edited to show the choice (the closure words kept).
    assert "закрыто: Заменили роутер" in got[2] and "Ваша оценка — Хорошо" in got[2]
    assert (await ticket(app, 1)).status == TicketStatus.CLOSED

    tg.send_message(CLIENT, "Теперь не работает почта")
    await settle(app, tg)
    tg.send_message(STAFF, "Починили", chat_id=STAFF_CHAT,
                    thread_id=int(tg.topics(STAFF_CHAT)[-1]["message_thread_id"]))
    await settle(app, tg)
    tg.send_message(STAFF, "/close 2", chat_id=STAFF_CHAT)
    await settle(app, tg)
    press(tg, "Нормально")
    await settle(app, tg)
    second = texts_to(tg, CLIENT)[len(got):]
    print("messages to the client (Нормально):", len(second))
    assert len(second) == 4, second
    assert "Хотите что-нибудь добавить" in second[-1]
