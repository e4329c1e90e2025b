"""Problems end to end: one staff message in the problem's topic reaches every linked
client, closing it closes them all (one rating request each), and a new matching report
is linked at once with "mine is different" working."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

import bot.services.problems as problem_service
from bot.config import Config
from bot.sandbox.emulator import FakeTelegram
from bot.services.problems import ProblemDesk
from storage.models import MessageLink, Problem, Ticket
from tests.e2e.cluster import new_app
from tests.e2e.conftest import CLIENT, CLIENT_EN, STAFF, STAFF_CHAT, settle, texts_to

FIRST_CLIENT = 610_000
LINKED = 50


def topic_of(tg: FakeTelegram, number: int) -> int:
    topic = tg.topic_by_name(STAFF_CHAT, f"#{number} ")
    assert topic is not None, f"no topic for #{number}"
    return int(topic["message_thread_id"])


async def test_one_update_and_the_closure_reach_fifty_linked_clients(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    app = new_app(make_config(desk={"surge_threshold": 0}))
    await app.start()
    try:
        tg.send_message(CLIENT, "Нет интернета в офисе с утра")
        await settle(app, tg)
        clients = [FIRST_CLIENT + i for i in range(LINKED)]
        for index, user_id in enumerate(clients):
            tg.add_user(user_id, f"Клиент {index}",
                        language_code="en" if index % 5 == 0 else "ru")
            tg.send_message(user_id, f"Пропала связь, филиал {index}")
        await settle(app, tg, timeout=60)
        tg.send_message(STAFF, "/problem 1 Авария у провайдера: нет интернета",
                        chat_id=STAFF_CHAT)
        tg.send_message(STAFF, f"/link 2-{LINKED + 1} 1", chat_id=STAFF_CHAT)
        await settle(app, tg, timeout=60)
        async with app.db.transaction() as session:
            linked = (await session.scalars(
                select(Ticket.number).where(Ticket.problem_number == 1))).all()
        assert sorted(linked) == list(range(2, LINKED + 2))
        card = tg.sent(STAFF_CHAT, topic_of(tg, 2))[0]["plain"]
        assert "Привязано к проблеме #1" in card

        before = {u: len(texts_to(tg, u)) for u in [CLIENT, *clients]}
        tg.send_message(STAFF, "Провайдер чинит магистраль, ориентир — 15:00",
                        chat_id=STAFF_CHAT, thread_id=topic_of(tg, 1))
        await settle(app, tg, timeout=60)
        for user_id in [CLIENT, *clients]:
            new = texts_to(tg, user_id)[before[user_id]:]
            assert len(new) == 1 and "Провайдер чинит магистраль" in new[0], (user_id, new)
        assert "#" in texts_to(tg, clients[0])[-1]  # about their own incident's number

        before = {u: len(tg.sent(u)) for u in [CLIENT, *clients]}
        tg.send_message(STAFF, "/close 1 Магистраль восстановлена", chat_id=STAFF_CHAT)
        await settle(app, tg, timeout=60)
        for index, user_id in enumerate([CLIENT, *clients]):
            sent = tg.sent(user_id)[before[user_id]:]
            assert len(sent) == 1, (user_id, [m["plain"] for m in sent])
            assert "Магистраль восстановлена" in sent[0]["plain"]
            rows = sent[0]["reply_markup"]["inline_keyboard"]
            assert any(b["callback_data"].startswith("rt:") for row in rows for b in row)
            if index and (index - 1) % 5 == 0:  # the English ones are told in English
                assert "Excellent" in str(rows)
        async with app.db.transaction() as session:
            statuses = set((await session.scalars(select(Ticket.status))).all())
        assert statuses == {"closed"}
    finally:
        await app.stop()


async def test_a_new_matching_report_is_linked_and_mine_is_different_unlinks_it(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    app = new_app(make_config())
    await app.start()
    try:
        tg.send_message(CLIENT, "Не работает интернет в офисе")
        await settle(app, tg)
        tg.send_message(STAFF, "/problem 1 Не работает интернет", chat_id=STAFF_CHAT)
        await settle(app, tg)

        tg.send_message(CLIENT_EN, "Не работает интернет, помогите")
        await settle(app, tg)
        told = texts_to(tg, CLIENT_EN)[-1]
        assert "We know about this problem" in told and "#2" in told
        assert tg.topic_by_name(STAFF_CHAT, "#2 ") is None  # no card of its own
        async with app.db.transaction() as session:
            ticket = await session.scalar(select(Ticket).where(Ticket.number == 2))
            assert ticket is not None and ticket.problem_number == 1

        # The update in the problem's topic reaches the linked client too.
        tg.send_message(STAFF, "Чиним, ориентир час", chat_id=STAFF_CHAT,
                        thread_id=topic_of(tg, 1))
        await settle(app, tg)
        assert "Чиним, ориентир час" in texts_to(tg, CLIENT_EN)[-1]

        message_id, data = tg.find_button(CLIENT_EN, "Mine is different") or (0, "")
        tg.press_button(CLIENT_EN, CLIENT_EN, message_id, data)
        await settle(app, tg)
        assert "#2" in texts_to(tg, CLIENT_EN)[-1]
        assert "registered" in texts_to(tg, CLIENT_EN)[-1]
        assert tg.topic_by_name(STAFF_CHAT, "#2 ") is not None  # its own card now
        async with app.db.transaction() as session:
            ticket = await session.scalar(select(Ticket).where(Ticket.number == 2))
            assert ticket is not None and ticket.problem_number is None
        # Pressed again (or forged for someone else's incident): refused, nothing changes.
        tg.press_button(CLIENT_EN, CLIENT_EN, message_id, data)
        await settle(app, tg)
        assert tg.callback_answers[-1].get("text")
        tg.press_button(CLIENT, CLIENT, message_id, data, check=False)
        await settle(app, tg)
        assert tg.callback_answers[-1].get("text")

        # A later update no longer reaches it.
        count = len(texts_to(tg, CLIENT_EN))
        tg.send_message(STAFF, "Ещё полчаса", chat_id=STAFF_CHAT, thread_id=topic_of(tg, 1))
        await settle(app, tg)
        assert len(texts_to(tg, CLIENT_EN)) == count
    finally:
        await app.stop()


async def test_the_desk_suggests_a_problem_and_one_tap_links_them_all(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    app = new_app(make_config(desk={"suggest_problem_after": 3}))
    await app.start()
    try:
        for index in range(4):
            tg.add_user(FIRST_CLIENT + index, f"Клиент {index}")
        # one at a time: several workers would number them in any order
        for index, text in enumerate(["Не работает интернет в офисе", "Принтер не печатает",
                                      "С утра не работает интернет"]):
            tg.send_message(FIRST_CLIENT + index, text)
            await settle(app, tg)
            if index == 1:
                await app.run_job("problems")  # one report of it so far: nothing to suggest
        await settle(app, tg)
        assert not any("Похоже на одну проблему" in t for t in texts_to(tg, STAFF_CHAT))

        tg.send_message(FIRST_CLIENT + 3, "Интернет не работает в офисе, срочно")
        await settle(app, tg)
        await app.run_job("problems")
        await settle(app, tg)
        suggestion = texts_to(tg, STAFF_CHAT)[-1]
        assert "Похоже на одну проблему: 3" in suggestion and "#2" not in suggestion
        await app.run_job("problems")  # each incident is suggested once
        await settle(app, tg)
        assert texts_to(tg, STAFF_CHAT)[-1] == suggestion

        message_id, data = tg.find_button(STAFF_CHAT,
                                          "⚠️ Сделать #1 проблемой и привязать все") or (0, "")
        tg.press_button(STAFF, STAFF_CHAT, message_id, data)
        await settle(app, tg)
        async with app.db.transaction() as session:
            linked = (await session.scalars(
                select(Ticket.number).where(Ticket.problem_number == 1))).all()
        assert sorted(linked) == [3, 4]
        tg.press_button(STAFF, STAFF_CHAT, message_id, data)  # again: refused
        await settle(app, tg)
        assert tg.callback_answers[-1].get("text")
    finally:
        await app.stop()


async def test_the_card_and_the_surge_digest_link_with_one_button_and_unlink_with_one(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    app = new_app(make_config(desk={"surge_threshold": 2}))
    await app.start()
    try:
        tg.send_message(CLIENT, "Нет интернета в офисе")
        await settle(app, tg)
        tg.send_message(STAFF, "/problem 1 Авария у провайдера", chat_id=STAFF_CHAT)
        await settle(app, tg)
        for index, text in enumerate(["Принтер не печатает", "Сканер молчит",
                                      "Почта не уходит", "Телефон не звонит"]):
            tg.add_user(FIRST_CLIENT + index, f"Клиент {index}")
            tg.send_message(FIRST_CLIENT + index, text)
            await settle(app, tg)
        # #2 got a card (before the surge): its button links it.
        button = "🔗 Привязать к проблеме #1"
        message_id, data = tg.find_button(STAFF_CHAT, button, thread_id=topic_of(tg, 2)) \
            or (0, "")
        tg.press_button(STAFF, STAFF_CHAT, message_id, data)
        await settle(app, tg)
        # #3..#5 came in the surge: the digest's button links them all.
        await app.run_job("surge")
        await settle(app, tg)
        assert "Наплыв обращений: 3" in texts_to(tg, STAFF_CHAT)[-1]
        message_id, data = tg.find_button(STAFF_CHAT, button) or (0, "")
        tg.press_button(STAFF, STAFF_CHAT, message_id, data)
        await settle(app, tg)
        async with app.db.transaction() as session:
            linked = (await session.scalars(
                select(Ticket.number).where(Ticket.problem_number == 1))).all()
        assert sorted(linked) == [2, 3, 4, 5]
        assert "привязано обращений: 4" in tg.sent(STAFF_CHAT, topic_of(tg, 1))[0]["plain"]

        message_id, data = tg.find_button(STAFF_CHAT, "✂️ Отвязать от проблемы #1",
                                          thread_id=topic_of(tg, 2)) or (0, "")
        tg.press_button(STAFF, STAFF_CHAT, message_id, data)
        tg.send_message(STAFF, "/unlink 3", chat_id=STAFF_CHAT)
        await settle(app, tg)
        async with app.db.transaction() as session:
            linked = (await session.scalars(
                select(Ticket.number).where(Ticket.problem_number == 1))).all()
        assert sorted(linked) == [4, 5]
        # A forged link (a closed or unknown problem) changes nothing.
        tg.press_button(STAFF, STAFF_CHAT, message_id, "pl:99:2:5", check=False)
        await settle(app, tg)
        assert tg.callback_answers[-1].get("text")
    finally:
        await app.stop()


CLOSING = 25  # linked incidents of the closing test, in batches of CLOSING_BATCH
CLOSING_BATCH = 10


async def test_closing_a_problem_closes_the_linked_in_batches_and_finishes_after_a_restart(
    make_config: Callable[..., Config], tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The closing commits the problem (and its own incident) alone; the linked incidents
    follow in batches, each a transaction of its own. The process stops after the first
    batch (the next ones fail, as a process killed between two batches leaves them: not
    written); started again, its sweep closes the rest. Each client gets one resolution
    and one rating request, in the name of whoever closed the problem."""
    monkeypatch.setattr(problem_service, "CLOSE_BATCH", CLOSING_BATCH)
    config = make_config(desk={"surge_threshold": 0})
    clients = [FIRST_CLIENT + i for i in range(CLOSING)]
    batches: list[int] = []
    close_batch = ProblemDesk.close_batch

    async def dies_after_the_first_batch(self: ProblemDesk, limit: int) -> int:
        if batches:
            raise RuntimeError("the process is killed here")
        batches.append(limit)
        return await close_batch(self, limit)

    async def closed() -> list[int]:
        async with app.db.transaction() as session:
            return list((await session.scalars(select(Ticket.number).where(
                Ticket.status == "closed").order_by(Ticket.number))).all())

    app = new_app(config)
    await app.start()
    try:
        tg.send_message(CLIENT, "Нет интернета в офисе с утра")
        await settle(app, tg)
        for index, user_id in enumerate(clients):
            tg.add_user(user_id, f"Клиент {index}", language_code="ru")
            tg.send_message(user_id, f"Пропала связь, филиал {index}")
        await settle(app, tg, timeout=60)
        tg.send_message(STAFF, "/problem 1 Авария у провайдера", chat_id=STAFF_CHAT)
        tg.send_message(STAFF, f"/link 2-{CLOSING + 1} 1", chat_id=STAFF_CHAT)
        await settle(app, tg, timeout=60)
        update = tg.send_message(STAFF, "Провайдер чинит магистраль", chat_id=STAFF_CHAT,
                                 thread_id=topic_of(tg, 1))
        await settle(app, tg, timeout=60)
        async with app.db.transaction() as session:  # recorded with each, still #1's message
            linked = (await session.scalars(
                select(Ticket.number).join(MessageLink, MessageLink.ticket_id == Ticket.id)
                .where(MessageLink.chat_id == STAFF_CHAT,
                       MessageLink.message_id == update["message_id"]))).all()
        assert linked == [1]
        before = {u: len(tg.sent(u)) for u in [CLIENT, *clients]}
        monkeypatch.setattr(ProblemDesk, "close_batch", dies_after_the_first_batch)
        tg.send_message(STAFF, "/close 1 Магистраль восстановлена", chat_id=STAFF_CHAT)
        await settle(app, tg, timeout=60)
        assert await closed() == list(range(1, CLOSING_BATCH + 2))  # #1 and one batch
        async with app.db.transaction() as session:
            problem = await session.scalar(select(Problem).where(Problem.number == 1))
            assert problem is not None and problem.closed_at is not None
            assert (problem.closed_by_id, problem.closed_by_name) == (STAFF, "Иван Петров")
    finally:
        await app.stop()

    monkeypatch.setattr(ProblemDesk, "close_batch", close_batch)
    app = new_app(config)
    await app.start()
    try:
        await app.scheduler.wait_idle()
        await settle(app, tg, timeout=60)
        assert await closed() == list(range(1, CLOSING + 2))
        for user_id in [CLIENT, *clients]:
            sent = tg.sent(user_id)[before[user_id]:]
            assert len(sent) == 1, (user_id, [m["plain"] for m in sent])
            assert "Магистраль восстановлена" in sent[0]["plain"]
            rows = sent[0]["reply_markup"]["inline_keyboard"]
            assert any(b["callback_data"].startswith("rt:") for row in rows for b in row)
    finally:
        await app.stop()
