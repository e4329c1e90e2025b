"""Client groups (issue 18), through the real bot: a company's group linked through the
invite's `?startgroup=` form, incidents from a mention, a reply and /new answered in the
group as replies, chatter ignored when listening to all, the group becoming a supergroup,
the bot removed; the incidents' buttons in the group (the reporter's only), a reply
reopening a closed incident, staff answering in the group itself."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app.runtime import App
from bot.config import Config
from bot.domain.enums import MessageAuthor, Severity, TicketStatus
from bot.sandbox.emulator import FakeTelegram, violations
from storage.models import (
    Client,
    ClientGroup,
    MessageLink,
    OutboxMessage,
    Rating,
    Ticket,
    TicketEvent,
    TicketMessage,
)
from tests.e2e.clock import MovableClock, SharedClock
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


@asynccontextmanager
async def running(config: Config, **options: Any) -> AsyncIterator[App]:
    """The bot of `config` (with a test's clock) for the `async with` block."""
    bot_app = new_app(config, **options)
    await bot_app.start()
    try:
        yield bot_app
    finally:
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


async def reported_in_group(app: App, tg: FakeTelegram, text: str) -> None:
    """A group linked through the invite, and CLIENT's report there (#1) registered."""
    await linked_group(app, tg)
    tg.write_in_group(CLIENT, GROUP, text, mention=True)
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
    assert "reply_markup" in ack  # "urgent": the reporter's own (test_buttons_...)
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


def alert_to(tg: FakeTelegram, user_id: int) -> dict[str, Any]:
    """The latest answer to a button that user pressed."""
    return [a for a in tg.callback_answers if a["user_id"] == user_id][-1]


def press_in_group(tg: FakeTelegram, user_id: int, label: str) -> int:
    found = tg.find_button(GROUP, label)
    assert found is not None, f"no button {label!r} in the group"
    tg.press_button(user_id, GROUP, *found)
    return found[0]


async def test_buttons_in_the_group_act_for_the_reporter_only(
    app: App, tg: FakeTelegram
) -> None:
    await reported_in_group(app, tg, "не печатает принтер в бухгалтерии")
    assert "автор обращения может нажать «🔥 Срочно»" in in_group(tg)[-1]["plain"]
    # "Urgent": a colleague's press is refused in an alert and changes nothing.
    press_in_group(tg, COLLEAGUE, "🔥 Срочно")
    await settle(app, tg)
    refused = alert_to(tg, COLLEAGUE)
    assert refused["show_alert"] and "для автора обращения #1" in refused["text"]
    assert (await one(app, Ticket, Ticket.number == 1)).severity == Severity.NORMAL
    press_in_group(tg, CLIENT, "🔥 Срочно")
    await settle(app, tg)
    assert (await one(app, Ticket, Ticket.number == 1)).severity == Severity.CRITICAL
    assert not alert_to(tg, CLIENT)["show_alert"]
    assert any("Срочно" in m["plain"] for m in tg.sent(STAFF_CHAT, topic_of(tg, 1)))
    # The closure is the rating request, in the group as a reply, with its buttons.
    tg.send_message(STAFF, "/close 1 заменили картридж", chat_id=STAFF_CHAT)
    await settle(app, tg)
    request = in_group(tg)[-1]
    assert "Как вы оцениваете нашу работу?" in request["plain"]
    assert replied_to(request) == (await one(app, Ticket, Ticket.number == 1)).group_message_id
    press_in_group(tg, COLLEAGUE, "Ужас")
    await settle(app, tg)
    assert "для автора обращения #1" in alert_to(tg, COLLEAGUE)["text"]
    assert (await one(app, Rating.score)) is None
    rated = press_in_group(tg, CLIENT, "Хорошо")
    await settle(app, tg)
    assert (await one(app, Rating.score)) == 4
    assert "Ваша оценка — Хорошо" in tg.chats[GROUP].messages[rated]["plain"]  # edited
    # "Not fixed": the colleague may not, the reporter reopens it.
    press_in_group(tg, COLLEAGUE, "Не решено")
    await settle(app, tg)
    assert (await one(app, Ticket, Ticket.number == 1)).status == TicketStatus.CLOSED
    press_in_group(tg, CLIENT, "Не решено")
    await settle(app, tg)
    reopened = await one(app, Ticket, Ticket.number == 1)
    assert reopened.status.is_open and reopened.reopen_count == 1
    assert replied_to(in_group(tg)[-1]) == reopened.group_message_id
    # Forged data for another group's (or nobody's) incident: refused the same way.
    tg.press_button(CLIENT, GROUP, request["message_id"], "u:99", check=False)
    await settle(app, tg)
    assert alert_to(tg, CLIENT)["show_alert"]
    assert tg.sent(CLIENT) == []  # all of it happened in the group


async def test_a_reply_to_a_closed_incident_reopens_it_or_opens_a_new_one(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    clock = MovableClock()
    async with running(make_config(ratings={"enabled": False}), clock=clock) as app:
        await reported_in_group(app, tg, "не работает сканер")
        tg.send_message(STAFF, "/close 1 почистили ролик", chat_id=STAFF_CHAT)
        await settle(app, tg)
        closed = in_group(tg)[-1]
        assert "«Не решено»" in closed["plain"] and tg.find_button(GROUP, "Не решено")
        # A colleague answers the closure: #1 is open again, with what they wrote.
        tg.write_in_group(COLLEAGUE, GROUP, "опять зажёвывает бумагу",
                          reply_to=closed["message_id"])
        await settle(app, tg)
        ticket = await one(app, Ticket, Ticket.number == 1)
        assert ticket.status.is_open and ticket.reopen_count == 1
        assert await count(app, Ticket) == 1
        assert any("опять зажёвывает бумагу" in m["plain"]
                   for m in tg.sent(STAFF_CHAT, topic_of(tg, 1)))
        assert replied_to(in_group(tg)[-1]) == ticket.group_message_id
        # Closed again, and answered after `reopen_days`: a new incident, as in private.
        tg.send_message(STAFF, "/close 1 заменили ролик", chat_id=STAFF_CHAT)
        await settle(app, tg)
        closed = in_group(tg)[-1]
        clock.offset += timedelta(days=app.config.desk.reopen_days + 1)
        late = tg.write_in_group(COLLEAGUE, GROUP, "сканер снова не работает",
                                 reply_to=closed["message_id"])
        await settle(app, tg)
        assert (await one(app, Ticket, Ticket.number == 1)).status == TicketStatus.CLOSED
        second = await one(app, Ticket, Ticket.number == 2)
        assert second.group_chat_id == GROUP and second.group_message_id == late["message_id"]


async def test_staff_answering_in_the_group_is_recorded_and_not_sent_again(
    app: App, tg: FakeTelegram
) -> None:
    await reported_in_group(app, tg, "не открывается 1С")
    ack = in_group(tg)[-1]
    sent = len(tg.sent(GROUP))
    tg.write_in_group(STAFF, GROUP, "Сейчас подключусь удалённо", reply_to=ack["message_id"])
    # Not a reply: a staff member's own words, left alone.
    tg.write_in_group(STAFF, GROUP, "коллеги, я на месте через час")
    await settle(app, tg)
    ticket = await one(app, Ticket, Ticket.number == 1)
    answers = await count(app, TicketMessage, TicketMessage.ticket_id == ticket.id,
                          TicketMessage.author == MessageAuthor.STAFF)
    assert answers == 1 and ticket.first_response_at is not None
    assert ticket.status == TicketStatus.IN_PROGRESS and ticket.assignee_id == STAFF
    topic = [m["plain"] for m in tg.sent(STAFF_CHAT, topic_of(tg, 1))]
    assert any("в группе клиента" in t and "Сейчас подключусь удалённо" in t for t in topic)
    assert not any("я на месте через час" in t for t in topic)
    assert len(tg.sent(GROUP)) == sent  # the bot said nothing more in the group
    assert await count(app, TicketEvent, TicketEvent.ticket_id == ticket.id,
                       TicketEvent.kind == "assigned") == 1


async def test_one_author_cannot_open_unlimited_incidents_from_a_group(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    """The private chat's limits, per author, counting the group's incidents: at most
    `open_incidents` open, and a burst over the flood bucket is collected, not dropped."""
    async with running(make_config(limits={"open_incidents": 2, "burst": 3,
                                           "messages_per_minute": 1})) as app:
        await linked_group(app, tg)
        for text in ("не печатает принтер", "не открывается 1С", "пропал интернет",
                     "и телефон не звонит"):
            tg.write_in_group(CLIENT, GROUP, text, mention=True)
            await settle(app, tg)
        assert await count(app, Ticket) == 2
        second = await one(app, Ticket, Ticket.number == 2)
        told = [m["plain"] for m in in_group(tg)]
        assert any("уже 2 открытых обращений" in t for t in told)  # the third report
        assert any("собираем ваши сообщения в обращение #2" in t for t in told)  # the fourth
        assert await count(app, TicketMessage, TicketMessage.ticket_id == second.id) == 3
        assert second.held_messages == 1
        # A colleague is a person of their own: their report opens an incident.
        tg.write_in_group(COLLEAGUE, GROUP, "сломался сканер", mention=True)
        await settle(app, tg)
        assert (await one(app, Ticket, Ticket.number == 3)).group_chat_id == GROUP
        assert tg.sent(CLIENT) == []  # every answer in the group


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
    await reported_in_group(app, tg, "сломался сканер")
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
    await reported_in_group(app, tg, "сломался сканер")
    tg.migrate_to_supergroup(GROUP, SUPERGROUP)
    tg._updates.clear()  # the service messages are not seen (yet)
    tg.send_message(STAFF, "Сейчас приедем", chat_id=STAFF_CHAT, thread_id=topic_of(tg, 1))
    await settle(app, tg)
    assert "Сейчас приедем" in in_group(tg, SUPERGROUP)[-1]["plain"]
    assert (await one(app, ClientGroup, ClientGroup.chat_id == SUPERGROUP)) is not None
    assert (await one(app, Ticket, Ticket.number == 1)).group_chat_id == SUPERGROUP


async def test_the_bot_removed_from_the_group(app: App, tg: FakeTelegram) -> None:
    await reported_in_group(app, tg, "нет интернета")
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


REPORTERS = 5  # incidents of one group, all linked to one problem
UPDATES = 4  # staff updates of the problem: each one a message about each incident


@pytest.mark.xdist_group("timing")  # limits on a 10x clock: with the other timing tests
@pytest.mark.parametrize("speed", [10.0])
async def test_a_client_group_at_its_limit_gets_its_queue_coalesced(
    make_config: Callable[..., Config], tg: FakeTelegram, telegram_time: SharedClock
) -> None:
    """Telegram's own limits (the emulator answers 429 beyond them), the bot's the same.
    5 incidents of one group linked to a problem, and four staff updates of the problem: 20
    answers at once, past the group's 20 a minute with the confirmations before them. They
    all arrive, once each and each incident's in order, none beyond the limits and no 429
    provoked: what waits for the group's limit goes out coalesced. A reply to a coalesced
    message is the follow-up of the incident it names, else of the replier's own, else of
    the latest."""
    tg.enforce_limits(**TELEGRAM_LIMITS, tolerance=telegram_time.request_jitter())
    shared = telegram_time
    config = make_config(delivery=TELEGRAM_LIMITS, desk={"surge_threshold": 0})
    async with running(config, clock=shared.now, monotonic=shared.monotonic,
                       sleep=shared.sleep) as app:
        await linked_group(app, tg)
        reporters = [CLIENT, COLLEAGUE, *(COLLEAGUE + 1 + i for i in range(REPORTERS - 2))]
        for index, user_id in enumerate(reporters):
            if user_id not in (CLIENT, COLLEAGUE):
                tg.add_user(user_id, f"Сотрудник {index}", language_code="ru")
                tg.set_member(GROUP, user_id, "member")
            tg.write_in_group(user_id, GROUP, f"не печатает принтер {index}", mention=True)
            await settle(app, tg, timeout=60)  # numbered in this order
        tg.send_message(STAFF, "/problem 1 Сломался сервер печати", chat_id=STAFF_CHAT)
        tg.send_message(STAFF, f"/link 2-{REPORTERS} 1", chat_id=STAFF_CHAT)
        await settle(app, tg, timeout=60)
        for step in range(1, UPDATES + 1):
            tg.send_message(STAFF, f"сервер печати: шаг {step}", chat_id=STAFF_CHAT,
                            thread_id=topic_of(tg, 1))
        await settle(app, tg, timeout=120)

        sent = [m for m in in_group(tg) if "сервер печати" in m.get("plain", "")]
        told = [[(int(n), int(step)) for n, step in re.findall(r"#(\d+)[^#]*?шаг (\d)",
                                                                m["plain"])] for m in sent]
        delivered = [pair for found in told for pair in found]
        assert sorted(delivered) == [(n, step) for n in range(1, REPORTERS + 1)
                                     for step in range(1, UPDATES + 1)]  # each once
        for number in range(1, REPORTERS + 1):  # and in the order staff wrote them
            theirs = [step for n, step in delivered if n == number]
            assert theirs == sorted(theirs), (number, theirs)
        merged = max(sent, key=lambda m: len(re.findall(r"#\d+", m["plain"])))
        numbers = sorted({int(n) for n in re.findall(r"#(\d+)", merged["plain"])})
        assert len(numbers) >= 3 and len(sent) < REPORTERS * UPDATES
        assert replied_to(merged) is None  # about several incidents: a reply to no report
        assert tg.limit_violations == 0, tg.limit_violation_log[:5]
        assert violations(tg.calls, **TELEGRAM_LIMITS, tolerance=tg.limits_tolerance) == []
        assert await count(app, OutboxMessage, OutboxMessage.chat_id == GROUP,
                           OutboxMessage.status != "sent") == 0
        assert await count(app, MessageLink, MessageLink.chat_id == GROUP,
                           MessageLink.message_id == merged["message_id"]) == len(numbers)

        # Replies to the coalesced message: one naming an incident goes to it, the
        # reporter of one of them to theirs, someone who reported none of them to the latest.
        named, own = numbers[0], numbers[1]
        outsider = COLLEAGUE + REPORTERS  # in the group, reported nothing
        tg.add_user(outsider, "Бухгалтер", language_code="ru")
        tg.set_member(GROUP, outsider, "member")
        reply = merged["message_id"]
        tg.write_in_group(reporters[own - 1], GROUP, f"по #{named} то же самое", reply_to=reply)
        tg.write_in_group(reporters[own - 1], GROUP, "у меня всё ещё не печатает", reply_to=reply)
        tg.write_in_group(outsider, GROUP, "а у соседей как?", reply_to=reply)
        await settle(app, tg, timeout=60)
        async with app.db.transaction() as session:
            said = dict((await session.execute(
                select(TicketMessage.text, Ticket.number)
                .join(Ticket, Ticket.id == TicketMessage.ticket_id)
                .where(TicketMessage.author == MessageAuthor.CLIENT))).all())
        assert said[f"по #{named} то же самое"] == named
        assert said["у меня всё ещё не печатает"] == own
        assert said["а у соседей как?"] == numbers[-1]
        assert await count(app, Ticket) == REPORTERS
