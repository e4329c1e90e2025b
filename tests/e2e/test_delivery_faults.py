"""Delivery under faults: the real bot against the emulator, with Telegram's own limits.

Every test here configures the bot with Telegram's documented limits (30/s overall,
1/s per chat, 20/min per group) and has the emulator enforce the same limits: a
send beyond them is answered 429 and counted in `limit_violations`, so "zero
violations" means the bot never provoked a 429 of its own. Injected faults are
answered before the limit check and are not counted as violations.

What is checked, each time: every expected message arrives exactly once (at least
once after a read timeout, with the duplicate logged), in order per chat, and the
emulator's timestamps show no limit exceeded. Tests that wait for retries and limits let
time pass faster (`speed`) for Telegram and the bot alike: tests/e2e/clock.py.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select

from bot.app.runtime import App
from bot.config import Config
from bot.messaging.outbox import PRIORITY_NOTICE
from bot.sandbox.emulator import FakeTelegram, Fault, violations
from storage.models import Client, OutboxMessage
from tests.e2e.clock import SharedClock
from tests.e2e.cluster import new_app
from tests.e2e.conftest import (
    CLIENT,
    STAFF,
    STAFF_CHAT,
    pending_to_reachable,
    settle,
    texts_to,
)

TELEGRAM_LIMITS: dict[str, Any] = {
    "global_per_second": 30, "per_chat_per_second": 1, "per_group_per_minute": 20,
}
FIRST_USER = 60_000

# Timing-sensitive: one xdist worker runs these in turn (pyproject addopts).
pytestmark = pytest.mark.xdist_group("timing")


@pytest.fixture
def limited(tg: FakeTelegram, telegram_time: SharedClock) -> FakeTelegram:
    tg.enforce_limits(**TELEGRAM_LIMITS, tolerance=telegram_time.request_jitter())
    return tg


async def start_app(
    make_config: Callable[..., Config], shared: SharedClock, **telegram: Any
) -> App:
    config = make_config(delivery=dict(TELEGRAM_LIMITS), telegram={"staff_forum": True, **telegram})
    app = new_app(config, clock=shared.now, monotonic=shared.monotonic, sleep=shared.sleep)
    await app.start()
    return app


@pytest.fixture
async def app(
    make_config: Callable[..., Config], limited: FakeTelegram, telegram_time: SharedClock
) -> AsyncIterator[App]:
    bot_app = await start_app(make_config, telegram_time)
    yield bot_app
    await bot_app.stop()


def add_clients(tg: FakeTelegram, count: int) -> list[int]:
    ids = [FIRST_USER + i for i in range(count)]
    for user_id in ids:
        tg.add_user(user_id, f"Client{user_id}", language_code="ru")
    return ids


async def enqueue(app: App, plan: dict[int, list[str]]) -> None:
    """Outbox rows written the way services write them, interleaved across chats."""
    async with app.db.transaction() as session:
        out = app.container.scope(session).out
        longest = max(len(texts) for texts in plan.values())
        for index in range(longest):
            for chat_id, texts in plan.items():
                if index < len(texts):
                    await out.send_text(chat_id, texts[index], priority=PRIORITY_NOTICE)
    app.delivery.wake()


def make_plan(chats: list[int], per_chat: int) -> dict[int, list[str]]:
    return {chat: [f"chat {chat} message {i}" for i in range(per_chat)] for chat in chats}


def assert_exactly_once_in_order(tg: FakeTelegram, plan: dict[int, list[str]]) -> None:
    for chat_id, texts in plan.items():
        assert texts_to(tg, chat_id) == texts, f"chat {chat_id}"


def assert_within_limits(tg: FakeTelegram) -> None:
    assert tg.limit_violations == 0, tg.limit_violation_log[:5]
    assert violations(tg.calls, **TELEGRAM_LIMITS, tolerance=tg.limits_tolerance) == []


async def settle_held(app: App, tg: FakeTelegram, shared: SharedClock) -> None:
    """Settle but for the rows held for clients who blocked the bot; then let two minutes
    pass at once, past any back-off and limit window, and settle again: a row that was
    only waiting would be sent now, a held one is not."""
    await settle(app, tg, undelivered=pending_to_reachable)
    shared.advance(120)
    app.delivery.wake()
    await settle(app, tg, undelivered=pending_to_reachable)


async def outbox_rows(app: App) -> list[OutboxMessage]:
    async with app.db.transaction() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


@pytest.mark.parametrize("speed", [3.0])
async def test_429_on_1st_5th_and_20th_send(app: App, limited: FakeTelegram) -> None:
    tg = limited
    rule = tg.inject(Fault.too_many_requests(retry_after=1), on_calls={1, 5, 20})
    plan = make_plan(add_clients(tg, 12), 4)
    plan[STAFF_CHAT] = [f"staff line {i}" for i in range(5)]
    await enqueue(app, plan)
    await settle(app, tg, timeout=30)

    assert rule.fired == 3
    assert [c.error_code for c in tg.calls if c.fault] == [429, 429, 429]
    assert_exactly_once_in_order(tg, plan)
    assert_within_limits(tg)
    assert all(row.status == "sent" and row.telegram_message_id for row in await outbox_rows(app))


@pytest.mark.parametrize("speed", [4.0])
async def test_429_waits_retry_after_before_the_chat_is_tried_again(
    app: App, limited: FakeTelegram
) -> None:
    tg = limited
    [chat] = add_clients(tg, 1)
    tg.inject(Fault.too_many_requests(retry_after=2), chat_id=chat, count=1)
    plan = {chat: ["one", "two"]}
    await enqueue(app, plan)
    await settle(app, tg, timeout=20)

    first, second, *_ = tg.calls_to("sendMessage", chat)
    assert not first.ok and second.ok
    assert second.time - first.time >= 2.0
    assert_exactly_once_in_order(tg, plan)
    assert_within_limits(tg)


@pytest.mark.parametrize("speed", [4.0])
async def test_429_for_one_client_pauses_that_chat_only(app: App, limited: FakeTelegram) -> None:
    """A 429 on one client's first message (the chat was quiet) is about that chat: the
    others' confirmations go out meanwhile, not after its retry_after."""
    tg = limited
    first, *others = add_clients(tg, 6)
    tg.inject(Fault.too_many_requests(retry_after=6), chat_id=first, count=1)
    plan = make_plan([first, *others], 2)
    await enqueue(app, plan)
    await settle(app, tg, timeout=30)

    refused, retried, *_ = tg.calls_to("sendMessage", first)
    assert refused.error_code == 429 and retried.ok
    assert retried.time - refused.time >= 6.0
    for chat in others:
        assert all(c.time < refused.time + 6.0 for c in tg.calls_to("sendMessage", chat)), chat
    assert_exactly_once_in_order(tg, plan)
    assert_within_limits(tg)


@pytest.mark.parametrize("speed", [3.0])
async def test_burst_of_server_errors(app: App, limited: FakeTelegram) -> None:
    tg = limited
    rule = tg.inject(Fault.server_error(502), count=10)
    tg.inject(Fault.server_error(500), count=3, method="sendMessage", chat_id=STAFF_CHAT)
    plan = make_plan(add_clients(tg, 6), 3)
    plan[STAFF_CHAT] = ["card", "line"]
    await enqueue(app, plan)
    await settle(app, tg, timeout=40)

    assert rule.fired == 10
    assert_exactly_once_in_order(tg, plan)
    assert_within_limits(tg)


@pytest.mark.parametrize("speed", [4.0])
async def test_connection_refused_then_back(app: App, limited: FakeTelegram) -> None:
    """Telegram unreachable (connection refused) for 10 s: several retries of every kind
    (sends, and polling or the webhook's set-up calls). Messages decided during the outage
    and a client writing during it all come through. (10 s for Telegram and the bot alike,
    passing 4 times faster than the wall's.)"""
    tg = limited
    chats = add_clients(tg, 4)
    await tg.refuse_connections(10)
    plan = make_plan(chats, 3)
    await enqueue(app, plan)
    tg.send_message(CLIENT, "Нет связи с сервером 1С")
    await tg.wait_for(lambda: not tg.refusing, timeout=10)
    await settle(app, tg, timeout=30)

    assert_exactly_once_in_order(tg, plan)
    [confirmation] = texts_to(tg, CLIENT)
    assert "#1" in confirmation
    assert_within_limits(tg)


async def test_read_timeout_delivers_at_least_once_and_logs_the_duplicate(
    make_config: Callable[..., Config], limited: FakeTelegram, telegram_time: SharedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tg = limited
    app = await start_app(make_config, telegram_time, request_timeout=1)
    try:
        [chat, other] = add_clients(tg, 2)
        # The 2nd message to `chat` is delivered, but the answer comes after the bot gave up.
        tg.inject(Fault.timeout(seconds=2.5, deliver=True), chat_id=chat, on_calls={2})
        plan = {chat: ["a", "b", "c"], other: ["x", "y"]}
        with caplog.at_level(logging.WARNING, logger="bot.telegram.delivery"):
            await enqueue(app, plan)
            await settle(app, tg, timeout=30)
    finally:
        await app.stop()

    assert texts_to(tg, chat) == ["a", "b", "b", "c"]  # at least once, still in order
    assert texts_to(tg, other) == ["x", "y"]
    assert any("twice" in r.getMessage() for r in caplog.records)
    assert_within_limits(tg)


async def test_blocked_client_is_held_then_delivered_when_they_write_again(
    app: App, limited: FakeTelegram, telegram_time: SharedClock
) -> None:
    tg = limited
    tg.send_message(CLIENT, "Не работает интернет во всём офисе")
    await settle(app, tg)
    [registered] = texts_to(tg, CLIENT)
    topic = tg.topic_by_name(STAFF_CHAT, "#1")
    assert topic is not None
    thread = topic["message_thread_id"]

    block = tg.block_bot(CLIENT)
    tg.send_message(STAFF, "Перезагрузите роутер", chat_id=STAFF_CHAT, thread_id=thread)
    await settle_held(app, tg, telegram_time)
    tg.send_message(STAFF, "Мы проверили линию", chat_id=STAFF_CHAT, thread_id=thread)
    await settle_held(app, tg, telegram_time)

    async with app.db.transaction() as session:
        client = await session.scalar(select(Client).where(Client.user_id == CLIENT))
        assert client is not None and client.unreachable_since is not None
    # Staff see it on the ticket; the client got nothing more, and was tried only once.
    assert any("⚠️" in m["plain"] and "#1" in m["plain"] for m in tg.sent(STAFF_CHAT, thread))
    assert texts_to(tg, CLIENT) == [registered]
    assert len(tg.calls_to("sendMessage", CLIENT)) == 2
    assert sum(row.status == "pending" for row in await outbox_rows(app)) == 2

    tg.remove_fault(block)
    tg.send_message(CLIENT, "Роутер перезагрузил, не помогло")
    await settle(app, tg)
    sent = texts_to(tg, CLIENT)
    assert sent[0] == registered
    assert "Перезагрузите роутер" in sent[1]  # the refused one first, then the held one
    assert "Мы проверили линию" in sent[2]
    assert sum("Перезагрузите роутер" in text for text in sent) == 1
    assert sum("Мы проверили линию" in text for text in sent) == 1
    assert_within_limits(tg)


async def test_thread_not_found_posts_without_the_topic(app: App, limited: FakeTelegram) -> None:
    tg = limited
    tg.send_message(CLIENT, "Не печатает принтер")
    await settle(app, tg)
    topic = tg.topic_by_name(STAFF_CHAT, "#1")
    assert topic is not None
    del tg.chats[STAFF_CHAT].topics[topic["message_thread_id"]]  # someone deleted the topic

    tg.send_message(CLIENT, "И сканер тоже")
    await settle(app, tg)
    tg.send_message(CLIENT, "И факс")
    await settle(app, tg)

    general = [m["plain"] for m in tg.sent(STAFF_CHAT) if not m.get("message_thread_id")]
    assert sum("И сканер тоже" in text for text in general) == 1
    assert sum("И факс" in text for text in general) == 1
    failures = [c for c in tg.calls_to("sendMessage", STAFF_CHAT) if not c.ok]
    assert len(failures) == 1  # the ticket forgot the topic: the next line went straight
    assert all(row.status == "sent" for row in await outbox_rows(app))
    assert_within_limits(tg)


async def test_message_too_long_is_split_once_and_never_retried_forever(
    app: App, limited: FakeTelegram
) -> None:
    tg = limited
    [chat, stubborn] = add_clients(tg, 2)
    long_text = " ".join(f"слово{i}" for i in range(350))  # ~3000 characters: one row
    tg.inject(Fault.error(400, "Bad Request: message is too long"), chat_id=chat, count=1)
    rule = tg.inject(Fault.error(400, "Bad Request: message is too long"), chat_id=stubborn)
    await enqueue(app, {chat: [long_text, "after"], stubborn: [long_text]})
    await settle(app, tg, timeout=20)

    parts = texts_to(tg, chat)
    assert len(parts) == 3 and parts[-1] == "after"
    assert " ".join(parts[:2]).split() == long_text.split()
    # Telegram keeps refusing: the row fails after the split attempts, it does not loop.
    assert len(tg.calls_to("sendMessage", stubborn)) <= 3
    rows = [row for row in await outbox_rows(app) if row.chat_id == stubborn]
    assert [row.status for row in rows] == ["failed"]
    tg.remove_fault(rule)
    await enqueue(app, {stubborn: ["short"]})
    await settle(app, tg)
    assert texts_to(tg, stubborn) == ["short"]
    assert_within_limits(tg)
