"""The quarterly quality check (bot/services/quality.py, handlers/staff/quality.py): a
300-client campaign that crashes halfway and resumes without duplicates, blocked clients,
the summary numbers of a seeded history at a fixed clock, the answers and the admin
commands."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select

from bot.app.runtime import App
from bot.config import Config
from bot.domain.calendar import WorkingDays
from bot.domain.periods import Period, PeriodKind, previous_period
from bot.messaging.callbacks import QualityAnswer
from bot.sandbox.emulator import FakeTelegram
from bot.services import quality as q
from storage.models import Client, OutboxMessage, QualityDelivery, Ticket
from tests.e2e.cluster import new_app
from tests.e2e.conftest import (
    ADMIN,
    CLIENT,
    CLIENT_EN,
    STAFF,
    STAFF_CHAT,
    pending_to_reachable,
    settle,
    texts_to,
)

ZONE = ZoneInfo("Europe/Moscow")
CHECK_TIME = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)  # Wed 1 April 2026, 11:00 in Moscow
Q1 = Period.quarter_of(2026, 1, ZONE)


def notifier_for(app: App) -> Callable[[Any], Any]:
    return app.container.notifier_for


async def seed_clients(app: App, user_ids: list[int], *,
                       unreachable: Collection[int] = frozenset()) -> None:
    async with app.db.transaction() as session:
        await session.execute(insert(Client), [
            {"user_id": uid, "chat_id": uid, "first_name": f"Client{uid}", "language": "ru",
             "contact_asked": True, "wants_new_ticket": False,
             "created_at": CHECK_TIME - timedelta(days=200), "last_seen_at": CHECK_TIME,
             "unreachable_since": CHECK_TIME if uid in unreachable else None}
            for uid in user_ids
        ])


async def test_300_clients_crash_halfway_resume_without_duplicates(
    make_config: Callable[..., Config], tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = list(range(200_001, 200_301))
    for uid in users:
        tg.add_user(uid, f"Client{uid}")
    blocked_by_403 = set(users[10:13])  # they block the bot: Telegram answers 403
    marked = set(users[20:22])  # already known as unreachable: nothing is sent to them
    for uid in blocked_by_403:
        tg.block_bot(uid)
    config = make_config(quality={"audience": "all", "batch": 50})
    app = new_app(config)
    await app.start()
    try:
        await seed_clients(app, users, unreachable=marked)
        async with app.db.transaction() as session:
            _, created = await q.start_campaign(session, config, Q1, CHECK_TIME)
            assert created
            _, again = await q.start_campaign(session, config, Q1, CHECK_TIME)
            assert not again
        # The crash: rendering the 130th check blows up in the middle of the third batch.
        real = q.render_check
        calls = {"n": 0}

        def crashing(*args: Any, **kwargs: Any) -> str:
            calls["n"] += 1
            if calls["n"] == 130:
                raise RuntimeError("power cut")
            return real(*args, **kwargs)

        monkeypatch.setattr(q, "render_check", crashing)
        with pytest.raises(RuntimeError):
            await q.send_pending(app.db, notifier_for(app), config, CHECK_TIME)
        async with app.db.transaction() as session:
            queued = await session.scalar(select(func.count()).select_from(QualityDelivery)
                                          .where(QualityDelivery.status != "pending"))
        assert queued == 100  # two batches committed, the third rolled back whole
        await settle(app, tg, 60, undelivered=pending_to_reachable)
    finally:
        await app.stop()
    monkeypatch.setattr(q, "render_check", real)

    app = new_app(config)  # the restart
    await app.start()
    try:
        assert await q.send_pending(app.db, notifier_for(app), config, CHECK_TIME) == 200
        assert await q.send_pending(app.db, notifier_for(app), config, CHECK_TIME) == 0
        app.delivery.wake()
        await settle(app, tg, 60, undelivered=pending_to_reachable)
        for uid in users:
            got = [t for t in texts_to(tg, uid) if "Как у нас дела?" in t]
            expected = 0 if uid in blocked_by_403 | marked else 1
            assert len(got) == expected, (uid, got)
        async with app.db.transaction() as session:
            campaign = await q.campaign_of(session, "2026Q1")
            assert campaign is not None and campaign.status == "done"
            status = await q.campaign_status(session, campaign)
        assert (status.total, status.sent, status.blocked, status.failed, status.waiting) == (
            300, 295, 5, 0, 0)
        # Quality checks go out behind everything else.
        async with app.db.transaction() as session:
            priorities = set(await session.scalars(
                select(OutboxMessage.priority).where(OutboxMessage.chat_id.in_(users))))
        assert priorities == {90}
    finally:
        await app.stop()


async def seed_history(app: App) -> int:
    """Client CLIENT's incidents around Q1 2026; returns the client id."""
    t0 = datetime(2026, 1, 10, 7, 0, tzinfo=UTC)
    async with app.db.transaction() as session:
        client = Client(user_id=CLIENT, chat_id=CLIENT, first_name="Анна", language="ru",
                        contact_asked=True, wants_new_ticket=False,
                        created_at=t0 - timedelta(days=90), last_seen_at=t0)
        session.add(client)
        await session.flush()

        def ticket(number: int, opened: datetime, *, response: timedelta | None = None,
                   resolved: datetime | None = None, **sla: Any) -> Ticket:
            return Ticket(number=number, client_id=client.id,
                          status="closed" if resolved else "in_progress", severity="normal",
                          subject=f"incident {number}", reopen_count=0, opened_at=opened,
                          updated_at=opened, resolved_at=resolved, closed_at=resolved,
                          first_response_at=opened + response if response else None, **sla)

        sla = hasattr(Ticket, "first_response_met")
        verdicts: list[dict[str, Any]] = (
            [{"first_response_met": True, "resolution_met": True},
             {"first_response_met": True, "resolution_met": False}, {}]
            if sla else [{}, {}, {}])
        session.add_all([
            # Q4 2025, resolved in Q1: counts as resolved in Q1, not as a Q1 incident.
            ticket(1, datetime(2025, 12, 20, tzinfo=UTC), response=timedelta(hours=5),
                   resolved=datetime(2026, 1, 5, tzinfo=UTC)),
            # Q1: answered in 30 min and in 90 min, one still unanswered.
            ticket(2, t0, response=timedelta(minutes=30), resolved=t0 + timedelta(days=1),
                   **verdicts[0]),
            ticket(3, t0 + timedelta(days=30), response=timedelta(minutes=90),
                   resolved=t0 + timedelta(days=31), **verdicts[1]),
            ticket(4, t0 + timedelta(days=60), **verdicts[2]),
            # Q2: not in the summary.
            ticket(5, datetime(2026, 4, 1, 6, 0, tzinfo=UTC), response=timedelta(minutes=1)),
        ])
        return client.id


async def test_summary_numbers_for_a_seeded_history_at_a_fixed_clock(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    config = make_config(quality={"enabled": True,
                                  "maintenance": ["12 апреля 02:00–04:00 — замена сервера"]})
    # The app's own scheduler ticks the day before (nothing due); the test ticks by hand.
    app = new_app(config, clock=lambda: CHECK_TIME - timedelta(days=1))
    await app.start()
    try:
        client_id = await seed_history(app)
        await app.scheduler.wait_idle()  # its first ticks done: they must not send for us
        async with app.db.transaction() as session:
            numbers = (await q.summaries(session, [client_id], Q1))[client_id]
        assert (numbers.incidents, numbers.closed) == (3, 3)
        assert numbers.avg_response == timedelta(hours=1)  # (30 + 90) / 2 minutes
        assert (numbers.sla_kept, numbers.sla_total) == (1, 2)
        # The schedule: nothing a minute before 11:00 on the first working day, then once.
        early = CHECK_TIME - timedelta(minutes=1)
        assert await q.quality_tick(app.db, notifier_for(app), config, early) == 0
        assert await q.quality_tick(app.db, notifier_for(app), config, CHECK_TIME) == 1
        assert await q.quality_tick(app.db, notifier_for(app), config,
                                    CHECK_TIME + timedelta(hours=1)) == 0
        app.delivery.wake()
        await settle(app, tg)
        text = texts_to(tg, CLIENT)[-1]
        assert "Итоги за I квартал 2026 года" in text
        assert "обратились к нам 3 раз(а), решено обращений: 3" in text
        assert "Среднее время ответа: 1h 00m" in text
        assert "соблюдены в 1 из 2 обращений" in text
        assert "замена сервера" in text
        async with app.db.transaction() as session:
            trend = await q.client_trend(session, client_id)
        assert trend[0]["period"] == "2026Q1" and trend[0]["avg_response_seconds"] == 3600
    finally:
        await app.stop()


async def test_a_monthly_desk_sends_last_months_check_once_naming_the_month(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    tg.chats[STAFF_CHAT].members[ADMIN] = "administrator"
    check_time = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # Tue 1 December, 11:00 in Moscow
    config = make_config(quality={"enabled": True, "period": "month"})
    app = new_app(config, clock=lambda: check_time - timedelta(days=1))
    await app.start()
    try:
        for user in (CLIENT, CLIENT_EN):
            tg.send_message(user, "/start")
        await settle(app, tg)
        await app.scheduler.wait_idle()
        # Two ticks of the schedule: the check for November goes out once.
        assert await q.quality_tick(app.db, notifier_for(app), config, check_time) == 2
        assert await q.quality_tick(app.db, notifier_for(app), config,
                                    check_time + timedelta(minutes=1)) == 0
        app.delivery.wake()
        await settle(app, tg)
        ru = [t for t in texts_to(tg, CLIENT) if "Как у нас дела?" in t]
        en = [t for t in texts_to(tg, CLIENT_EN) if "How are we doing?" in t]
        assert len(ru) == 1 and len(en) == 1
        assert "Итоги за ноябрь 2026 года" in ru[0] and "в этом месяце?" in ru[0]
        assert "За месяц у вас не было обращений" in ru[0]
        assert "Your November 2026 in numbers" in en[0] and "this month?" in en[0]
        async with app.db.transaction() as session:
            campaign = await q.latest_campaign(session)
        assert campaign is not None and campaign.period == "2026-11"
        message_id, data = tg.find_button(CLIENT, "Плохо") or (0, "")
        tg.press_button(CLIENT, CLIENT, message_id, data)
        await settle(app, tg)
        assert any("за ноябрь не всё было хорошо" in t for t in texts_to(tg, CLIENT))
        assert any("проверку качества за ноябрь 2026" in t for t in texts_to(tg, STAFF_CHAT))
        tg.send_message(ADMIN, "/quality who 2026-11", chat_id=STAFF_CHAT)
        await settle(app, tg)
        assert "Проверка качества 2026-11: кто что ответил" in texts_to(tg, STAFF_CHAT)[-1]
    finally:
        await app.stop()


def test_schedule_first_working_day_of_the_quarter() -> None:
    holidays = frozenset(date(2026, 1, d) for d in range(1, 9))
    schedule = q.Schedule("0 11 * 1,4,7,10 *", True, ZONE,
                          WorkingDays(frozenset(range(5)), holidays), timedelta(days=7))
    assert schedule.in_month(2026, 1) == datetime(2026, 1, 9, 11, tzinfo=ZONE)
    assert schedule.in_month(2026, 2) is None
    assert schedule.in_month(2026, 8) is None
    assert schedule.in_month(2026, 7) == datetime(2026, 7, 1, 11, tzinfo=ZONE)
    assert schedule.in_month(2026, 3 + 7) == datetime(2026, 10, 1, 11, tzinfo=ZONE)
    # A missed check is caught up within catch_up_days, then no longer.
    assert schedule.due(datetime(2026, 4, 6, tzinfo=UTC)) is not None
    assert schedule.due(datetime(2026, 4, 9, tzinfo=UTC)) is None
    assert previous_period(PeriodKind.QUARTER, datetime(2026, 1, 9, 8, tzinfo=UTC),
                           ZONE).label == "2025Q4"


async def test_answers_lets_talk_and_admin_commands(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    tg.chats[STAFF_CHAT].members[ADMIN] = "administrator"
    app = new_app(make_config(quality={"audience": "all"}))
    await app.start()
    try:
        for user in (CLIENT, CLIENT_EN):
            tg.send_message(user, "/start")
        await settle(app, tg)
        tg.send_message(STAFF, "/quality send", chat_id=STAFF_CHAT)
        await settle(app, tg)
        assert "только для администраторов" in texts_to(tg, STAFF_CHAT)[-1]
        tg.send_message(ADMIN, "/quality status", chat_id=STAFF_CHAT)
        tg.send_message(ADMIN, "/quality preview", chat_id=STAFF_CHAT)
        await settle(app, tg)
        assert "ещё не было" in texts_to(tg, STAFF_CHAT)[-2]
        assert "Получателей сейчас: 2" in texts_to(tg, STAFF_CHAT)[-1]
        tg.send_message(ADMIN, "/quality test", chat_id=STAFF_CHAT)
        await settle(app, tg)
        assert "Как у нас дела?" in texts_to(tg, ADMIN)[-1]
        found = tg.find_button(ADMIN, "Отлично")
        assert found is not None
        tg.press_button(ADMIN, ADMIN, *found)
        await settle(app, tg)
        assert "тестовая" in tg.callback_answers[-1]["text"]

        tg.send_message(ADMIN, "/quality send", chat_id=STAFF_CHAT)
        await settle(app, tg)
        assert "запущена: 2 получателей" in texts_to(tg, STAFF_CHAT)[-1]
        tg.send_message(ADMIN, "/quality send", chat_id=STAFF_CHAT)
        await settle(app, tg)
        assert "повторно не отправляется" in texts_to(tg, STAFF_CHAT)[-1]
        await q.send_pending(app.db, notifier_for(app), app.config, app.clock())
        app.delivery.wake()
        await settle(app, tg)
        assert "How are we doing?" in texts_to(tg, CLIENT_EN)[-1]

        check = tg.sent(CLIENT)[-1]
        message_id, data = tg.find_button(CLIENT, "Хорошо") or (0, "")
        # Forged: someone else's check, a made-up delivery, a wrong answer.
        delivery = QualityAnswer.unpack(data).delivery
        before = len(tg.callback_answers)
        tg.press_button(CLIENT_EN, CLIENT_EN, message_id, data, check=False)
        tg.press_button(CLIENT, CLIENT, message_id,
                        QualityAnswer(delivery=delivery + 100, answer="5").pack(), check=False)
        tg.press_button(CLIENT, CLIENT, message_id,
                        QualityAnswer(delivery=delivery, answer="7").pack(), check=False)
        await settle(app, tg)
        assert all(a["show_alert"] for a in tg.callback_answers[before:])
        tg.press_button(CLIENT, CLIENT, message_id, data)
        await settle(app, tg)
        edited = tg.message(CLIENT, check["message_id"])
        assert edited is not None and "ваша оценка — Хорошо" in edited["plain"]

        message_id, data = tg.find_button(CLIENT, "📞 Давайте обсудим") or (0, "")
        tg.press_button(CLIENT, CLIENT, message_id, data)
        await settle(app, tg)
        tg.press_button(CLIENT, CLIENT, message_id, data, check=False)  # again: one incident
        await settle(app, tg)
        assert "уже знаем" in tg.callback_answers[-1]["text"]
        async with app.db.transaction() as session:
            tickets = list(await session.scalars(select(Ticket)))
        assert [(t.origin, t.severity) for t in tickets] == [("quality_callback", "low")]
        assert "зарегистрировано" in texts_to(tg, CLIENT)[-1]

        tg.send_message(ADMIN, "/quality status", chat_id=STAFF_CHAT)
        await settle(app, tg)
        status = texts_to(tg, STAFF_CHAT)[-1]
        assert "Всего: 2" in status and "Доставлено: 2" in status
        assert "Ответили: 1, просят перезвонить: 1" in status
        assert "Хорошо: 1 (100.0%)" in status
    finally:
        await app.stop()
