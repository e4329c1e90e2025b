"""One client cannot stall the desk (issue 14): a flood of messages and /new from one
client while twenty others report new incidents, at Telegram's real limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import func, select

from bot.app.runtime import App
from bot.config import Config
from bot.sandbox.emulator import FakeTelegram
from storage.models import Client, Ticket, TicketMessage
from tests.e2e.clock import SharedClock
from tests.e2e.cluster import new_app
from tests.e2e.conftest import CLIENT, STAFF, STAFF_CHAT, settle, texts_to

TELEGRAM_LIMITS = {"global_per_second": 30, "per_chat_per_second": 1,
                   "per_group_per_minute": 20}
OTHERS = 600_100
FLOOD_MESSAGES, FLOOD_NEW, OTHER_CLIENTS = 1200, 50, 20

# Timing-sensitive: one xdist worker runs these in turn (pyproject addopts).
pytestmark = pytest.mark.xdist_group("timing")


@pytest.fixture
async def limited_app(
    make_config: Callable[..., Config], tg: FakeTelegram, telegram_time: SharedClock
) -> AsyncIterator[App]:
    tg.enforce_limits(**TELEGRAM_LIMITS, tolerance=telegram_time.request_jitter())
    # Cards as messages: with topics each incident costs two of the group's 20 sends a minute
    # (the topic and its card), and twenty incidents a minute cannot all be announced
    # within the minute whatever the flooder does.
    config = make_config(delivery=dict(TELEGRAM_LIMITS), telegram={"staff_forum": False})
    app = new_app(config, clock=telegram_time.now, monotonic=telegram_time.monotonic,
                  sleep=telegram_time.sleep)
    await app.start()
    yield app
    await app.stop()


async def count_messages(app: App, user_id: int) -> int:
    async with app.db.transaction() as session:
        return await session.scalar(select(func.count()).select_from(TicketMessage)
                                    .where(TicketMessage.author_user_id == user_id)) or 0


@pytest.mark.slow  # ~20-40 s of wall time: 1,270 updates and a group at 20 messages a minute
@pytest.mark.parametrize("speed", [8.0])
async def test_a_flood_of_one_client_does_not_hold_up_the_others(
    limited_app: App, tg: FakeTelegram, telegram_time: SharedClock
) -> None:
    app, clock = limited_app, telegram_time
    for n in range(OTHER_CLIENTS):
        tg.add_user(OTHERS + n, f"Клиент {n}", language_code="ru")
    sent_at: dict[int, float] = {}
    batches = app.container.semantic.batches
    # One emulated minute: 20 messages and about one /new from the flooder each second,
    # another client's new incident every three seconds.
    for second in range(60):
        for i in range(FLOOD_MESSAGES // 60):
            tg.send_message(CLIENT, f"спам {second}-{i}")
        if second < FLOOD_NEW:
            tg.send_message(CLIENT, f"/new спам-инцидент {second}")
        if second % 3 == 0:
            n = second // 3
            sent_at[n] = clock.monotonic()
            tg.send_message(OTHERS + n, f"Не работает касса в магазине {n}")
        await clock.sleep(1.0)
    await settle(app, tg, timeout=300)
    # The encoder's thread is everyone's: the flooder's messages past their limit are not
    # encoded (each was a batch of its own, a minute of CPU in all).
    encoded = app.container.semantic.batches - batches
    print(f"\nencoder batches: {encoded}")
    assert encoded < FLOOD_MESSAGES // 4
    await app.run_job("flood")
    await settle(app, tg, timeout=120)

    # Every message of the flooder is stored (its /new ones too), none lost: in an incident,
    # or (within the limit, with several incidents open) waiting for the client's answer to
    # "which incident is this about?", as any client's message does.
    asked = sum("К какому относится" in t for t in texts_to(tg, CLIENT))
    stored = await count_messages(app, CLIENT)
    print(f"\nflooder: {stored} stored in incidents, {asked} asked about")
    assert stored + asked == FLOOD_MESSAGES + FLOOD_NEW
    async with app.db.transaction() as session:
        flooder = await session.scalar(select(Client).where(Client.user_id == CLIENT))
        assert flooder is not None
        opened = await session.scalar(select(func.count()).select_from(Ticket)
                                      .where(Ticket.client_id == flooder.id))
    assert opened is not None and opened <= 5
    # The staff group: the flooder's cards, the messages before the bucket ran dry and one
    # combined line per incident, not 1,250 lines.
    flood_lines = [c for c in tg.calls_to("sendMessage", STAFF_CHAT)
                   if "спам" in str(c.params.get("text", "")) or "Анна" in str(
                       c.params.get("text", ""))]
    assert len(flood_lines) <= 30, len(flood_lines)
    combined = [t for t in texts_to(tg, STAFF_CHAT) if "добавил(а)" in t]
    assert combined and sum(int(t.split("добавил(а) ")[1].split()[0]) for t in combined) > 1000
    # The flooder is told once that their messages are being collected.
    assert sum("собираем ваши сообщения" in t for t in texts_to(tg, CLIENT)) == 1
    # Every other client's card reached the staff group within a minute of their message.
    cards = {n: [c.time for c in tg.calls_to("sendMessage", STAFF_CHAT)
                 if f"Не работает касса в магазине {n}" in str(c.params.get("text", ""))]
             for n in sent_at}
    delays = {n: cards[n][0] - sent_at[n] for n in sent_at if cards[n]}
    assert len(delays) == OTHER_CLIENTS, sorted(set(sent_at) - set(delays))
    print(f"\ncard delays (s, emulated): max {max(delays.values()):.1f}, "
          f"mean {sum(delays.values()) / len(delays):.1f}; flood lines {len(flood_lines)}")
    assert max(delays.values()) <= 60
    assert tg.limit_violations == 0  # no 429 provoked

    # Staff see it in /health and can mute and unmute the client.
    tg.send_message(STAFF, "/health", chat_id=STAFF_CHAT)
    await settle(app, tg, timeout=120)
    assert "Анна" in texts_to(tg, STAFF_CHAT)[-1]
    tg.send_message(STAFF, "/mute @anna 1h", chat_id=STAFF_CHAT)
    await settle(app, tg, timeout=120)
    assert "до" in texts_to(tg, STAFF_CHAT)[-1]
    tg.send_message(STAFF, "/unmute @anna", chat_id=STAFF_CHAT)
    await settle(app, tg, timeout=120)
    assert "снова" in texts_to(tg, STAFF_CHAT)[-1]


async def test_new_beyond_the_open_cap_answers_which_are_open(app: App, tg: FakeTelegram) -> None:
    for n in range(6):
        tg.send_message(CLIENT, f"/new Проблема номер {n}")
        await settle(app, tg)
    async with app.db.transaction() as session:
        opened = await session.scalar(select(func.count()).select_from(Ticket))
    assert opened == 5
    answer = texts_to(tg, CLIENT)[-1]
    assert "уже 5 открытых обращений" in answer and all(f"#{n}" in answer for n in range(1, 6))
    assert await count_messages(app, CLIENT) == 6  # the sixth joined the latest, not lost


async def test_surge_counts_clients_not_incidents(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    """Three clients with three incidents each are no mass outage (threshold 5): before,
    the sixth incident of the desk put everyone's new incidents in the digest, uncarded."""
    app = new_app(make_config(desk={"surge_threshold": 5}))
    await app.start()
    try:
        for n in range(3):
            tg.add_user(OTHERS + n, f"Клиент {n}")
            for k in range(3):
                tg.send_message(OTHERS + n, f"/new Сломалось {n}-{k}")
                await settle(app, tg)
        assert len(tg.topics(STAFF_CHAT)) == 9
    finally:
        await app.stop()
