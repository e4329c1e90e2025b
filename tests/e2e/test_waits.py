"""The wait (issue 16): `/status N vendor <whom>` pauses the resolution clock like waiting
for the client, the client is told in plain words whom we wait for, and /stats shows the
time waited apart; the automatic status update says what is true, for normal incidents
too; /close while waiting for the client resolves, closed after `confirm_days`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from bot.app.runtime import App
from bot.config import Config
from bot.domain.clock import utc_now
from bot.sandbox.emulator import FakeTelegram
from bot.services.sla_jobs import confirm_sweep, status_reminders
from storage.models import Ticket
from tests.e2e.clock import MovableClock
from tests.e2e.cluster import new_app
from tests.e2e.conftest import CLIENT, STAFF, STAFF_CHAT, settle, texts_to


async def ticket_1(app: App) -> Ticket:
    async with app.db.transaction() as session:
        found = await session.scalar(select(Ticket).where(Ticket.number == 1))
    assert found is not None
    return found


async def staff_says(app: App, tg: FakeTelegram, text: str) -> list[str]:
    before = len(tg.sent(STAFF_CHAT))
    tg.send_message(STAFF, text, chat_id=STAFF_CHAT)
    await settle(app, tg)
    return [m.get("plain", "") for m in tg.sent(STAFF_CHAT)[before:]]


async def test_waiting_for_a_vendor_pauses_the_clock_tells_the_client_and_counts_apart(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    clock = MovableClock()
    app = new_app(make_config(), clock=clock)
    await app.start()
    try:
        tg.send_message(CLIENT, "Пропадает интернет в бухгалтерии")
        await settle(app, tg)
        await staff_says(app, tg, "/status 1 in_progress")
        running = await ticket_1(app)
        assert running.paused_since is None and running.resolution_due is not None
        await staff_says(app, tg, "/status 1 vendor провайдера Ростелеком")
        told = texts_to(tg, CLIENT)[-1]
        print("\nCLIENT:", told)
        assert "мы ждём ответа от третьей стороны: провайдера Ростелеком" in told
        assert "SLA" not in told and "vendor" not in told
        waiting = await ticket_1(app)
        assert waiting.status == "vendor" and waiting.paused_since is not None
        assert waiting.resolution_due is None  # off the clock, like waiting for the client
        # The client writing meanwhile does not end the wait (we wait for the ISP, not them).
        tg.send_message(CLIENT, "Есть новости?")
        await settle(app, tg)
        assert (await ticket_1(app)).status == "vendor"
        tg.send_message(CLIENT, "/status 1")
        await settle(app, tg)
        assert "ждём ответа третьей стороны" in texts_to(tg, CLIENT)[-1]

        clock.offset = timedelta(hours=3)
        await staff_says(app, tg, "/status 1 in_progress")
        resumed = await ticket_1(app)
        assert resumed.paused_since is None and resumed.resolution_due is not None
        summary = (await staff_says(app, tg, "/stats"))[-1]
        print("STATS:", [line for line in summary.splitlines() if "третью" in line])
        assert "Ждали третью сторону (вне сроков SLA): 1 обр., всего 3h 00m" in summary
    finally:
        await app.stop()


async def test_the_automatic_status_update_says_what_is_true_also_for_normal_incidents(
    app: App, tg: FakeTelegram
) -> None:
    tg.send_message(CLIENT, "Принтер у бухгалтера печатает с полосами")
    await settle(app, tg)
    assert (await ticket_1(app)).severity == "normal"
    topic = int(tg.topics(STAFF_CHAT)[-1]["message_thread_id"])
    tg.send_message(STAFF, "Заказали новый барабан, ждём поставку", chat_id=STAFF_CHAT,
                    thread_id=topic)
    await settle(app, tg)
    notifier_for, config = app.container.notifier_for, app.config
    base = utc_now()
    assert (await status_reminders(app.db, notifier_for, config,
                                   base + timedelta(hours=23))).reminded == []
    later = base + timedelta(hours=25)
    assert (await status_reminders(app.db, notifier_for, config, later)).reminded == [1]
    assert (await status_reminders(app.db, notifier_for, config, later)).reminded == []
    app.delivery.wake()
    await settle(app, tg)
    update = texts_to(tg, CLIENT)[-1]
    print("\nSTATUS UPDATE:", update)
    assert "Им занимается Иван Петров" in update
    assert "Последнее от инженера: «Заказали новый барабан, ждём поставку»" in update
    assert "Следующее сообщение о ходе работы — не позже" in update
    assert "SLA" not in update


async def test_close_while_waiting_for_the_client_resolves_then_closes_after_confirm_days(
    app: App, tg: FakeTelegram
) -> None:
    tg.send_message(CLIENT, "Иногда пропадает интернет")
    await settle(app, tg)
    await staff_says(app, tg, "/status 1 waiting Напишите, если пропадёт снова")
    await staff_says(app, tg, "/close 1 Заменили кабель")
    resolved = await ticket_1(app)
    assert resolved.status == "resolved"
    told = texts_to(tg, CLIENT)[-1]
    print("\nRESOLVED:", told)
    assert "решено" in told and "через 3 дн. мы закроем обращение сами" in told
    base = utc_now()
    assert await confirm_sweep(app.db, app.container.desk_for, base + timedelta(days=2)) == 0
    assert await confirm_sweep(app.db, app.container.desk_for, base + timedelta(days=3)) == 1
    assert await confirm_sweep(app.db, app.container.desk_for, base + timedelta(days=4)) == 0
    app.delivery.wake()
    await settle(app, tg)
    assert (await ticket_1(app)).status == "closed"
    closed = tg.sent(CLIENT)[-1]
    print("CLOSED:", closed["plain"])
    assert "закрыто автоматически: за 3 дн. после решения возражений не было" in closed["plain"]
    assert "Как вы оцениваете нашу работу?" in closed["plain"]  # one message with the rating
    labels = [b["text"] for row in closed["reply_markup"]["inline_keyboard"] for b in row]
    assert "Не решено" in labels


async def test_an_objection_keeps_a_resolved_incident_from_closing(
    app: App, tg: FakeTelegram
) -> None:
    tg.send_message(CLIENT, "Иногда пропадает интернет")
    await settle(app, tg)
    await staff_says(app, tg, "/status 1 waiting Проверьте завтра")
    await staff_says(app, tg, "/close 1")
    found = tg.find_button(CLIENT, "Не решено")
    assert found is not None
    tg.press_button(CLIENT, CLIENT, *found)
    await settle(app, tg)
    assert (await ticket_1(app)).status.is_open, (tg.callback_answers, texts_to(tg, CLIENT))
    later = utc_now() + timedelta(days=5)
    assert await confirm_sweep(app.db, app.container.desk_for, later) == 0
