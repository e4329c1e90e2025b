"""Ratings after closure: buttons, change window, forged data, staff, alerts, comments,
the one reminder, "Not fixed" (bot/services/ratings.py, handlers/client/ratings.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.app.runtime import App
from bot.config import Config
from bot.domain.clock import utc_now
from bot.messaging.callbacks import RateAction
from bot.sandbox.emulator import FakeTelegram
from bot.services.ratings import rating_distribution, rating_sweep
from storage.models import Rating, Ticket, TicketEvent
from tests.e2e.clock import MovableClock
from tests.e2e.cluster import new_app
from tests.e2e.conftest import CLIENT, STAFF, STAFF_2, STAFF_CHAT, STRANGER, settle, texts_to


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def rapp(make_config: Callable[..., Config], clock: MovableClock) -> AsyncIterator[App]:
    app = new_app(make_config(ratings={"change_hours": 2, "remind_after_hours": 3}), clock=clock)
    await app.start()
    yield app
    await app.stop()


async def closed_incident(app: App, tg: FakeTelegram, user: int = CLIENT,
                          closer: int = STAFF) -> int:
    """An incident by `user`, answered and closed by `closer`; returns its topic."""
    tg.send_message(user, "Не работает VPN")
    await settle(app, tg)
    topic = int(tg.topics(STAFF_CHAT)[-1]["message_thread_id"])
    tg.send_message(closer, "Перезапустите, пожалуйста", chat_id=STAFF_CHAT, thread_id=topic)
    await settle(app, tg)
    tg.send_message(closer, "/close Перезапустили сервер", chat_id=STAFF_CHAT, thread_id=topic)
    await settle(app, tg)
    return topic


async def rating(app: App, number: int = 1) -> Rating:
    async with app.db.transaction() as session:
        found = await session.scalar(
            select(Rating).join(Ticket, Ticket.id == Rating.ticket_id)
            .where(Ticket.number == number))
    assert found is not None
    return found


async def count(app: App, model: Any) -> int:
    async with app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def press(tg: FakeTelegram, label: str, user: int = CLIENT, chat: int = CLIENT) -> int:
    found = tg.find_button(chat, label)
    assert found is not None, f"no button {label!r}"
    tg.press_button(user, chat, found[0], found[1])
    return found[0]


async def test_rating_request_edit_and_change_within_the_window(
    rapp: App, tg: FakeTelegram, clock: MovableClock
) -> None:
    topic = await closed_incident(rapp, tg)
    request = tg.sent(CLIENT)[-1]
    # The closure and the request are one message.
    assert "Обращение #1 закрыто" in request["plain"]
    assert "Перезапустили сервер" in request["plain"]
    assert "Как вы оцениваете нашу работу?" in request["plain"]
    assert not any("закрыто" in m for m in texts_to(tg, CLIENT)[:-1])
    labels = [b["text"] for row in request["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["Отлично", "Хорошо", "Нормально", "Плохо", "Ужас", "Не решено"]

    message_id = press(tg, "Нормально")
    await settle(rapp, tg)
    edited = tg.message(CLIENT, message_id)
    assert edited is not None and "Ваша оценка — Нормально" in edited["plain"]
    assert (await rating(rapp)).score == 3
    assert "оценка клиента — Нормально" in texts_to(tg, STAFF_CHAT, topic)[-1]
    # Below "Хорошо": "anything to add?".
    assert "Хотите что-нибудь добавить" in texts_to(tg, CLIENT)[-1]
    asked = len(tg.sent(CLIENT))

    clock.offset = timedelta(hours=1)  # within change_hours = 2
    tg.press_button(CLIENT, CLIENT, message_id, RateAction(number=1, score=5).pack())
    await settle(rapp, tg)
    assert (await rating(rapp)).score == 5
    edited = tg.message(CLIENT, message_id)
    assert edited is not None and "Ваша оценка — Отлично" in edited["plain"]
    assert len(tg.sent(CLIENT)) == asked  # no second "anything to add?"

    clock.offset = timedelta(hours=3)  # the window is over
    tg.press_button(CLIENT, CLIENT, message_id, RateAction(number=1, score=1).pack())
    await settle(rapp, tg)
    assert tg.callback_answers[-1]["show_alert"]
    assert "уже нельзя изменить" in tg.callback_answers[-1]["text"]
    assert (await rating(rapp)).score == 5
    async with rapp.db.transaction() as session:
        events = list(await session.scalars(
            select(TicketEvent.new_value).where(TicketEvent.kind == "rating")))
    assert events == ["3", "5"]


async def test_forged_and_replayed_rating_data_is_refused(rapp: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "Не печатает принтер")
    await settle(rapp, tg)
    registration = tg.sent(CLIENT)[-1]["message_id"]
    # Before closure there is no request: a forged rating on the registration message.
    tg.press_button(CLIENT, CLIENT, registration, RateAction(number=1, score=5).pack(),
                    check=False)
    await settle(rapp, tg)
    assert tg.callback_answers[-1]["show_alert"]
    tg.send_message(STAFF, "/close 1 Готово", chat_id=STAFF_CHAT)
    await settle(rapp, tg)
    request = tg.sent(CLIENT)[-1]["message_id"]
    forged = [
        (CLIENT, CLIENT, request, RateAction(number=1, score=9).pack()),  # no such score
        (CLIENT, CLIENT, registration, RateAction(number=1, score=5).pack()),  # wrong message
        (CLIENT, CLIENT, 999_999, RateAction(number=1, score=5).pack()),  # no message
        (STRANGER, STRANGER, request, RateAction(number=1, score=1).pack()),  # not theirs
        (CLIENT, CLIENT, request, RateAction(number=77, score=1).pack()),  # no incident
        (CLIENT, CLIENT, request, "rt:1:abc"),  # garbage
    ]
    before = len(tg.callback_answers)
    for user, chat, message_id, data in forged:
        tg.press_button(user, chat, message_id, data, check=False)
    await settle(rapp, tg)
    answers = tg.callback_answers[before:]
    assert len(answers) == len(forged), answers
    assert all(a["show_alert"] for a in answers), [(a["data"], a["text"]) for a in answers]
    assert (await rating(rapp)).score is None

    tg.press_button(CLIENT, CLIENT, request, RateAction(number=1, score=3).pack())
    await settle(rapp, tg)
    sent = len(tg.sent(CLIENT)) + len(tg.sent(STAFF_CHAT))
    tg.press_button(CLIENT, CLIENT, request, RateAction(number=1, score=3).pack())  # replay
    await settle(rapp, tg)
    assert not tg.callback_answers[-1]["show_alert"]
    assert len(tg.sent(CLIENT)) + len(tg.sent(STAFF_CHAT)) == sent  # nothing happened again
    async with rapp.db.transaction() as session:
        n = await session.scalar(select(func.count()).select_from(TicketEvent)
                                 .where(TicketEvent.kind == "rating"))
    assert n == 1


async def test_staff_rating_is_recorded_but_not_counted(rapp: App, tg: FakeTelegram) -> None:
    topic = await closed_incident(rapp, tg, user=STAFF, closer=STAFF_2)
    press(tg, "Ужас", user=STAFF, chat=STAFF)
    await settle(rapp, tg)
    row = await rating(rapp)
    assert row.score == 1 and row.counted is False
    # No alert, no "what went wrong?", no line in the topic.
    assert not any("Плохая оценка" in t for t in texts_to(tg, STAFF_CHAT))
    assert not any("оценка клиента" in t for t in texts_to(tg, STAFF_CHAT, topic))
    async with rapp.db.transaction() as session:
        everyone = await rating_distribution(session, datetime(2000, 1, 1, tzinfo=UTC),
                                             datetime(2100, 1, 1, tzinfo=UTC))
    assert everyone == {}


async def test_bad_rating_alerts_staff_and_the_next_message_is_the_comment(
    rapp: App, tg: FakeTelegram
) -> None:
    await closed_incident(rapp, tg)
    press(tg, "Плохо")
    await settle(rapp, tg)
    general = [m["plain"] for m in tg.sent(STAFF_CHAT) if "message_thread_id" not in m]
    assert "Плохая оценка: #1 — Плохо" in general[-1]
    assert "Иван Петров" in general[-1] and "Анна" in general[-1]
    assert "Что пошло не так?" in texts_to(tg, CLIENT)[-1]

    # The rule: while the question is open, the next plain text is the comment...
    tg.send_message(CLIENT, "Ждали ответа полдня")
    await settle(rapp, tg)
    assert await count(rapp, Ticket) == 1
    row = await rating(rapp)
    assert row.comment == "Ждали ответа полдня" and not row.question_open
    general = [m["plain"] for m in tg.sent(STAFF_CHAT) if "message_thread_id" not in m]
    assert "Ждали ответа полдня" in general[-1] and "#1" in general[-1]
    assert "Иван Петров" in general[-1]
    assert "комментарий к оценке обращения #1 передан" in texts_to(tg, CLIENT)[-1]
    assert not tg.sent(CLIENT)[-1].get("reply_markup")  # not "it is back": no reopen button
    # ...and only that one: the message after it is an incident again.
    tg.send_message(CLIENT, "И ещё не работает почта")
    await settle(rapp, tg)
    assert await count(rapp, Ticket) == 2


async def test_an_open_question_does_not_swallow_media_or_commands(
    rapp: App, tg: FakeTelegram
) -> None:
    await closed_incident(rapp, tg)
    press(tg, "Нормально")
    await settle(rapp, tg)
    assert (await rating(rapp)).question_open
    tg.send_message(CLIENT, "/my")
    await settle(rapp, tg)
    assert (await rating(rapp)).question_open  # a command leaves the question open
    tg.send_message(CLIENT, photo=True, caption="новая ошибка")
    await settle(rapp, tg)
    assert await count(rapp, Ticket) == 2  # media: a new incident, and the question is closed
    assert not (await rating(rapp)).question_open
    # "No comment" closes the question too (here: already closed, so a polite no-op).
    press(tg, "Без комментария")
    await settle(rapp, tg)
    assert (await rating(rapp)).comment is None


async def test_one_reminder_for_an_unanswered_request(
    rapp: App, tg: FakeTelegram, clock: MovableClock
) -> None:
    await closed_incident(rapp, tg)
    requests = [m for m in texts_to(tg, CLIENT) if "оцените" in m or "оцениваете" in m]
    assert len(requests) == 1
    config = rapp.config.ratings
    base = utc_now()

    ratings_for = rapp.container.ratings_for
    assert await rating_sweep(rapp.db, ratings_for, config, base + timedelta(hours=1)) == 0
    assert await rating_sweep(rapp.db, ratings_for, config, base + timedelta(hours=4)) == 1
    assert await rating_sweep(rapp.db, ratings_for, config, base + timedelta(hours=9)) == 0
    assert await rating_sweep(rapp.db, ratings_for, config, base + timedelta(days=9)) == 0
    rapp.delivery.wake()
    await settle(rapp, tg)
    reminders = [m for m in texts_to(tg, CLIENT) if m.startswith("Напоминаем")]
    assert len(reminders) == 1
    # The reminder's buttons work like the request's.
    press(tg, "Нормально")
    await settle(rapp, tg)
    assert (await rating(rapp)).score == 3


async def test_delayed_request_and_exclusions(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    app = new_app(make_config(ratings={"request_delay_minutes": 30}))
    await app.start()
    try:
        await closed_incident(app, tg)
        assert not any("оцениваете" in m for m in texts_to(tg, CLIENT))

        now = utc_now()
        config = app.config.ratings
        ratings_for = app.container.ratings_for
        assert await rating_sweep(app.db, ratings_for, config, now + timedelta(minutes=5)) == 0
        assert await rating_sweep(app.db, ratings_for, config, now + timedelta(minutes=31)) == 1
        assert await rating_sweep(app.db, ratings_for, config, now + timedelta(minutes=32)) == 0
        app.delivery.wake()
        await settle(app, tg)
        assert sum("оцениваете" in m for m in texts_to(tg, CLIENT)) == 1

        # An incident solved by an FAQ article gets no request.
        tg.send_message(CLIENT, "Как сменить пароль")
        await settle(app, tg)
        async with app.db.transaction() as session:
            await session.execute(update(Ticket).where(Ticket.number == 2)
                                  .values(resolution_kind="faq"))
        tg.send_message(STAFF, "/close 2", chat_id=STAFF_CHAT)
        await settle(app, tg)
        assert await count(app, Rating) == 1
    finally:
        await app.stop()


async def test_not_fixed_on_the_rating_message_reopens(rapp: App, tg: FakeTelegram) -> None:
    topic = await closed_incident(rapp, tg)
    request = tg.sent(CLIENT)[-1]["message_id"]
    tg.press_button(CLIENT, CLIENT, request, tg.find_button(CLIENT, "Не решено")[1])  # type: ignore[index]
    await settle(rapp, tg)
    async with rapp.db.transaction() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.number == 1))
    assert ticket is not None and ticket.status == "taken" and ticket.reopen_count == 1
    assert any("#1 снова открыто клиентом" in t or "reopened" in t or "🔄" in t
               for t in texts_to(tg, STAFF_CHAT, topic))
    # The incident is open again: its rating buttons wait for the next closure.
    tg.press_button(CLIENT, CLIENT, request, RateAction(number=1, score=5).pack())
    await settle(rapp, tg)
    assert "снова открыто" in tg.callback_answers[-1]["text"]
    # Closed again: asked again, and the rating is attributed to the assignee.
    tg.send_message(STAFF, "/close 1 Заменили кабель", chat_id=STAFF_CHAT)
    await settle(rapp, tg)
    press(tg, "Отлично")
    await settle(rapp, tg)
    async with rapp.db.transaction() as session:
        start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        by_agent = await rating_distribution(session, start, end, by="agent")
        by_client = await rating_distribution(session, start, end, by="client")
    assert list(by_agent) == [(STAFF, "Иван Петров")]
    assert by_agent[(STAFF, "Иван Петров")].counts[5] == 1
    assert by_agent[(STAFF, "Иван Петров")].percent[5] == 100.0
    assert [d.total for d in by_client.values()] == [1]
