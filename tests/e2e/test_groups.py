"""Client groups (issue 18), through the real bot: a company's group linked through the
invite's `?startgroup=` form, incidents from a mention, a reply and /new answered in the
group as replies, chatter ignored when listening to all, the group becoming a supergroup,
the bot removed."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app.runtime import App
from bot.config import Config
from bot.sandbox.emulator import FakeTelegram, violations
from storage.models import Client, ClientGroup, OutboxMessage, Ticket, TicketMessage
from tests.e2e.clock import SharedClock
from tests.e2e.cluster import new_app
from tests.e2e.conftest import CLIENT, STAFF, STAFF_CHAT, STRANGER, due_outbox, settle

GROUP = -5100
SUPERGROUP = -1005100
FOREIGN = -5200
COLLEAGUE = 5010
Json = dict[str, Any]


@pytest.fixture
async def listening_app(make_config: Callable[..., Config]) -> AsyncIterator[App]:
    """The bot listening to every message of its client groups (privacy mode off)."""
    bot_app = new_app(make_config(groups={"listen": "all"}))
    await bot_app.start()
    yield bot_app
    await bot_app.stop()


async def group_code(app: App, tg: FakeTelegram, name: str = "Ромашка") -> str:
    """`/org add` in the staff group: the group form of the invite it prints."""
    tg.send_message(STAFF, f"/org add {name}", chat_id=STAFF_CHAT)
    await settle(app, tg)
    found = re.search(r"\?startgroup=(org-[\w-]+)", tg.sent(STAFF_CHAT)[-1].get("plain", ""))
    assert found is not None, tg.sent(STAFF_CHAT)[-1]
    return found[1]


async def linked_group(app: App, tg: FakeTelegram, chat_id: int = GROUP) -> None:
    tg.add_user(COLLEAGUE, "Пётр", language_code="ru")
    tg.add_bot_via_startgroup(CLIENT, chat_id, "Ромашка и поддержка", await group_code(app, tg),
                              members={COLLEAGUE: "member", STAFF: "member"})
    await settle(app, tg)


async def one(app: App, model: Any, *where: Any) -> Any:
    async with app.db.transaction() as session:
        return await session.scalar(select(model).where(*where))


async def count(app: App, model: Any, *where: Any) -> int:
    async with app.db.transaction() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def in_group(tg: FakeTelegram, chat_id: int = GROUP) -> list[Json]:
    return [m for m in tg.sent(chat_id) if m.get("from", {}).get("id") == tg.bot_id]


def topic_of(tg: FakeTelegram, number: int) -> int:
    topic = tg.topic_by_name(STAFF_CHAT, f"#{number} ")
    assert topic is not None
    return int(topic["message_thread_id"])


def replied_to(message: Json) -> int | None:
    return (message.get("reply_to_message") or {}).get("message_id")


async def test_a_group_is_linked_through_the_invite(app: App, tg: FakeTelegram) -> None:
    await linked_group(app, tg)
    group = await one(app, ClientGroup, ClientGroup.chat_id == GROUP)
    assert group is not None and group.active and group.linked_by == CLIENT
    assert group.title == "Ромашка и поддержка"
    assert "Ромашка" in in_group(tg)[-1]["plain"] and "/new" in in_group(tg)[-1]["plain"]
    assert any("Ромашка и поддержка" in t.get("plain", "") for t in tg.sent(STAFF_CHAT))
    assert not tg.calls_to("leaveChat", GROUP)
    assert await count(app, OutboxMessage, OutboxMessage.method == "leaveChat") == 0
    # The group's title changes: the link keeps the new one.
    tg.rename_group(CLIENT, GROUP, "Ромашка: ИТ")
    await settle(app, tg)
    assert (await one(app, ClientGroup.title, ClientGroup.chat_id == GROUP)) == "Ромашка: ИТ"


async def test_a_foreign_group_is_left_and_a_bad_code_links_nothing(
    app: App, tg: FakeTelegram
) -> None:
    await group_code(app, tg)
    tg.add_bot_via_startgroup(STRANGER, FOREIGN, "Чужая", "org-forged")
    await settle(app, tg)
    assert tg.calls_to("leaveChat", FOREIGN)
    assert await count(app, ClientGroup) == 0 and tg.sent(FOREIGN) == []
    # Added without a code: the leave is scheduled, and made once a word is said there.
    other = FOREIGN - 1
    tg.add_bot_via_startgroup(STRANGER, other, "Ещё чужая", None)
    await settle(app, tg, undelivered=due_outbox)
    assert not tg.calls_to("leaveChat", other)
    assert await count(app, OutboxMessage, OutboxMessage.chat_id == other,
                       OutboxMessage.not_before.is_not(None)) == 1
    tg.write_in_group(STRANGER, other, "всем привет")
    await settle(app, tg, undelivered=due_outbox)
    assert len(tg.calls_to("leaveChat", other)) == 1 and tg.sent(other) == []


async def test_staff_link_a_group_with_org_group(app: App, tg: FakeTelegram) -> None:
    await group_code(app, tg, "Лютик")
    # Staff add the bot (no code): it stays, waiting for /org group.
    tg.add_bot_via_startgroup(STAFF, FOREIGN, "Лютик", None, members={CLIENT: "member"})
    await settle(app, tg, undelivered=due_outbox)
    assert await count(app, OutboxMessage, OutboxMessage.method == "leaveChat") == 0
    tg.send_message(STAFF, "/org group Лютик", chat_id=FOREIGN)
    await settle(app, tg)
    group = await one(app, ClientGroup, ClientGroup.chat_id == FOREIGN)
    assert group is not None and group.active and group.linked_by == STAFF
    assert "Лютик" in in_group(tg, FOREIGN)[-1]["plain"]
    # A client may not: their group is left.
    other = FOREIGN - 1
    tg.add_bot_via_startgroup(CLIENT, other, "Самозванцы", None)
    tg.send_message(CLIENT, "/org group Лютик", chat_id=other)
    await settle(app, tg, undelivered=due_outbox)
    assert tg.calls_to("leaveChat", other) and not tg.calls_to("leaveChat", FOREIGN)
    assert await one(app, ClientGroup, ClientGroup.chat_id == other) is None


async def test_incidents_from_a_mention_a_reply_and_new_answered_in_the_group(
    app: App, tg: FakeTelegram
) -> None:
    await linked_group(app, tg)
    greeting = in_group(tg)[-1]["message_id"]
    # A mention of the bot.
    report = tg.write_in_group(CLIENT, GROUP, "не печатает принтер в бухгалтерии", mention=True)
    await settle(app, tg)
    ticket = await one(app, Ticket, Ticket.number == 1)
    assert ticket.group_chat_id == GROUP and ticket.subject.startswith("не печатает принтер")
    client = await one(app, Client, Client.user_id == CLIENT)
    assert client.company == "Ромашка"
    ack = in_group(tg)[-1]
    assert "#1" in ack["plain"] and replied_to(ack) == report["message_id"]
    assert "reply_markup" not in ack  # the buttons are the reporter's own: not in a group
    assert tg.sent(CLIENT) == []  # nothing in the private chat
    # A staff answer from the incident's topic: a reply to the reporting message.
    tg.send_message(STAFF, "Перезапустите диспетчер печати", chat_id=STAFF_CHAT,
                    thread_id=topic_of(tg, 1))
    await settle(app, tg)
    answer = in_group(tg)[-1]
    assert "Перезапустите диспетчер печати" in answer["plain"]
    assert replied_to(answer) == report["message_id"]
    # A colleague replies to the bot's message about #1: a follow-up of #1.
    tg.write_in_group(COLLEAGUE, GROUP, "у меня тоже не печатает", reply_to=ack["message_id"])
    await settle(app, tg)
    assert await count(app, Ticket) == 1
    assert await count(app, TicketMessage, TicketMessage.ticket_id == ticket.id,
                       TicketMessage.author_user_id == COLLEAGUE) == 1
    assert any("у меня тоже не печатает" in m.get("plain", "")
               for m in tg.sent(STAFF_CHAT, topic_of(tg, 1)))
    # A status change reaches the group as a reply too.
    tg.send_message(STAFF, "/close 1 заменили картридж", chat_id=STAFF_CHAT)
    await settle(app, tg)
    closed = in_group(tg)[-1]
    assert "#1" in closed["plain"] and replied_to(closed) == report["message_id"]
    # A reply to the bot's other message (the greeting): a new incident.
    second = tg.write_in_group(COLLEAGUE, GROUP, "не открывается 1С", reply_to=greeting)
    await settle(app, tg)
    assert (await one(app, Ticket, Ticket.number == 2)).group_chat_id == GROUP
    assert replied_to(in_group(tg)[-1]) == second["message_id"]
    # /new with the text.
    tg.write_in_group(CLIENT, GROUP, "/new нет доступа к общей папке")
    await settle(app, tg)
    third = await one(app, Ticket, Ticket.number == 3)
    assert third.subject == "нет доступа к общей папке" and third.group_chat_id == GROUP
    # Without a mention (listening to mentions only): nothing at all.
    before = (await count(app, Ticket), await count(app, OutboxMessage))
    tg.write_in_group(COLLEAGUE, GROUP, "кто-нибудь видел мои ключи?")
    # A staff member present in the group is staff there: no incident of theirs.
    tg.write_in_group(STAFF, GROUP, "посмотрю принтер после обеда", mention=True)
    await settle(app, tg)
    assert (await count(app, Ticket), await count(app, OutboxMessage)) == before
    # /my: the company's open incidents.
    tg.write_in_group(COLLEAGUE, GROUP, "/my")
    await settle(app, tg)
    listing = in_group(tg)[-1]["plain"]
    assert "#2" in listing and "#3" in listing and "#1" not in listing


async def test_new_alone_asks_and_the_answer_to_the_question_is_the_incident(
    app: App, tg: FakeTelegram
) -> None:
    await linked_group(app, tg)
    tg.write_in_group(COLLEAGUE, GROUP, f"/new@{tg.bot_username}")
    await settle(app, tg)
    assert await count(app, Ticket) == 0
    question = in_group(tg)[-1]
    assert "ответом на это сообщение" in question["plain"]
    answer = tg.write_in_group(COLLEAGUE, GROUP, "не работает телефон на ресепшене",
                               reply_to=question["message_id"])
    await settle(app, tg)
    ticket = await one(app, Ticket, Ticket.number == 1)
    assert ticket.subject == "не работает телефон на ресепшене"
    assert replied_to(in_group(tg)[-1]) == answer["message_id"]


async def test_chatter_is_ignored_when_listening_to_all(
    listening_app: App, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    app = listening_app
    caplog.set_level(logging.DEBUG, "bot.services.semantic")
    await linked_group(app, tg)
    clients, sent = await count(app, Client), len(tg.sent(GROUP))
    for chatter in ("Всем приятного аппетита!", "ок, спасибо", "Кто идёт на обед?",
                    "haha nice one", "С днём рождения, Пётр!"):
        tg.write_in_group(COLLEAGUE, GROUP, chatter)
    await settle(app, tg)
    assert await count(app, Ticket) == 0 and await count(app, Client) == clients
    assert len(tg.sent(GROUP)) == sent
    request = tg.write_in_group(COLLEAGUE, GROUP,
                                "Не открывается почта в Outlook, пишет ошибку подключения")
    await settle(app, tg)
    ticket = await one(app, Ticket, Ticket.number == 1)
    assert ticket is not None and ticket.group_chat_id == GROUP
    assert replied_to(in_group(tg)[-1]) == request["message_id"]
    # The sentence model decided, on vectors made before the transaction (in the
    # encoder's thread), none on the event loop.
    if app.container.semantic.available:
        assert app.container.chatter.model is not None
        assert "outside the worker" not in caplog.text


async def test_the_group_becomes_a_supergroup(app: App, tg: FakeTelegram) -> None:
    await linked_group(app, tg)
    tg.write_in_group(CLIENT, GROUP, "сломался сканер", mention=True)
    await settle(app, tg)
    tg.migrate_to_supergroup(GROUP, SUPERGROUP)
    await settle(app, tg)
    assert (await one(app, ClientGroup, ClientGroup.chat_id == SUPERGROUP)).active
    assert (await one(app, Ticket, Ticket.number == 1)).group_chat_id == SUPERGROUP
    tg.send_message(STAFF, "Сейчас приедем", chat_id=STAFF_CHAT, thread_id=topic_of(tg, 1))
    await settle(app, tg)
    assert "Сейчас приедем" in in_group(tg, SUPERGROUP)[-1]["plain"]
    report = tg.write_in_group(COLLEAGUE, SUPERGROUP, "и сканер в переговорке", mention=True)
    await settle(app, tg)
    assert (await one(app, Ticket, Ticket.number == 2)).group_chat_id == SUPERGROUP
    ack = in_group(tg, SUPERGROUP)[-1]
    assert "#2" in ack["plain"] and replied_to(ack) == report["message_id"]
    assert not tg.calls_to("leaveChat")


async def test_a_queued_answer_follows_the_group_to_its_supergroup(
    app: App, tg: FakeTelegram
) -> None:
    """The delivery worker learns of the migration first (Telegram's 400 with the new id):
    the link moves with the queued rows."""
    await linked_group(app, tg)
    tg.write_in_group(CLIENT, GROUP, "сломался сканер", mention=True)
    await settle(app, tg)
    tg.migrate_to_supergroup(GROUP, SUPERGROUP)
    tg._updates.clear()  # the service messages are not seen (yet)
    tg.send_message(STAFF, "Сейчас приедем", chat_id=STAFF_CHAT, thread_id=topic_of(tg, 1))
    await settle(app, tg)
    assert "Сейчас приедем" in in_group(tg, SUPERGROUP)[-1]["plain"]
    assert (await one(app, ClientGroup, ClientGroup.chat_id == SUPERGROUP)) is not None
    assert (await one(app, Ticket, Ticket.number == 1)).group_chat_id == SUPERGROUP


async def test_the_bot_removed_from_the_group(app: App, tg: FakeTelegram) -> None:
    await linked_group(app, tg)
    tg.write_in_group(CLIENT, GROUP, "нет интернета", mention=True)
    await settle(app, tg)
    sent = len(tg.sent(GROUP))
    tg.remove_bot(CLIENT, GROUP)
    await settle(app, tg)
    assert not (await one(app, ClientGroup, ClientGroup.chat_id == GROUP)).active
    assert any("удалили" in t.get("plain", "") for t in tg.sent(STAFF_CHAT))
    tg.send_message(STAFF, "Роутер перезагружен", chat_id=STAFF_CHAT, thread_id=topic_of(tg, 1))
    await settle(app, tg)
    assert len(tg.sent(GROUP)) == sent
    assert not [c for c in tg.calls if c.chat_id == GROUP and c.method == "sendMessage"
                and not c.ok]
    assert "Роутер перезагружен" in tg.sent(CLIENT)[-1]["plain"]  # the client's own chat


TELEGRAM_LIMITS: dict[str, Any] = {
    "global_per_second": 30, "per_chat_per_second": 1, "per_group_per_minute": 20,
}


@pytest.mark.xdist_group("timing")  # limits on a 30x clock: with the other timing tests
@pytest.mark.parametrize("speed", [30.0])
async def test_a_client_group_gets_at_most_20_messages_a_minute(
    make_config: Callable[..., Config], tg: FakeTelegram, telegram_time: SharedClock
) -> None:
    """Telegram's own limits (the emulator answers 429 beyond them): 25 staff answers to a
    group's incident all arrive, none beyond 20 in a minute, and no 429 is provoked."""
    tg.enforce_limits(**TELEGRAM_LIMITS)
    shared = telegram_time
    app = new_app(make_config(delivery=dict(TELEGRAM_LIMITS)), clock=shared.now,
                  monotonic=shared.monotonic, sleep=shared.sleep)
    await app.start()
    try:
        await linked_group(app, tg)
        tg.write_in_group(CLIENT, GROUP, "не работает сканер", mention=True)
        await settle(app, tg, timeout=30)
        topic = topic_of(tg, 1)
        for i in range(25):
            tg.send_message(STAFF, f"ответ {i}", chat_id=STAFF_CHAT, thread_id=topic)
        await settle(app, tg, timeout=60)
        answers = [m["plain"] for m in in_group(tg) if "ответ " in m.get("plain", "")]
        assert len(answers) == 25 and "ответ 24" in answers[-1]
        assert tg.limit_violations == 0, tg.limit_violation_log[:5]
        assert violations(tg.calls, **TELEGRAM_LIMITS) == []
    finally:
        await app.stop()
