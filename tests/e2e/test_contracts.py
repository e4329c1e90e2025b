"""Every company its own contract (issue 17), through the real bot: the service level of
a company's contract (its promise and due times), set in config and from chat; its
coordinator (the company's incidents, the monthly act, the quarter's summary); time spent
and what a client costs; planned works reminded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.app.runtime import App
from bot.config import Config
from bot.sandbox.emulator import FakeTelegram
from bot.services import quality as q
from bot.services.maintenance import maintenance_sweep
from bot.services.reports.jobs import monthly_acts, quality_job
from bot.services.sla_jobs import sla_sweep
from storage.models import Company, Ticket
from tests.conftest import ACT_FORMATS
from tests.e2e.cluster import new_app
from tests.e2e.conftest import CLIENT, STAFF, STAFF_CHAT, settle, texts_to
from tests.e2e.test_reports import uploaded

MSK = ZoneInfo("Europe/Moscow")
OUTAGE = "Не работает интернет во всём офисе, никто не может работать"
CLIENT_B = 5003
CLIENT_C = 5004
# Wednesday 10:00 in Moscow: inside everyone's working time.
WEDNESDAY = datetime(2026, 12, 2, 10, 0, tzinfo=MSK)
COMPANIES: list[dict[str, Any]] = [
    {"name": "Альфа", "sla": {"critical": {"response_hours": 1}}},
    {"name": "Бета", "sla": {"critical": {"response_hours": 6, "business": True}},
     "desk": {"work_start": "08:00", "work_end": "20:00"}},
]


def shifted_clock(to: datetime) -> Callable[[], datetime]:
    offset = to - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


def with_companies(make_config: Callable[..., Config], companies: list[dict[str, Any]],
                   **sections: dict[str, Any]) -> Config:
    config = make_config(**sections)
    return config.model_copy(update={"companies": Config.model_validate(
        {"telegram": {"staff_chat_id": 1}, "companies": companies}).companies})


@asynccontextmanager
async def running(config: Config, at: datetime = WEDNESDAY) -> AsyncIterator[App]:
    app = new_app(config, clock=shifted_clock(at))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def join(app: App, tg: FakeTelegram, user_id: int, company: str) -> None:
    async with app.db.transaction() as session:
        code = await session.scalar(select(Company.invite_code).where(Company.name == company))
    tg.send_message(user_id, f"/start {code}")
    await settle(app, tg)


async def ticket(app: App, number: int) -> Ticket:
    async with app.db.transaction() as session:
        found = await session.scalar(select(Ticket).where(Ticket.number == number))
    assert found is not None
    return found


async def staff_says(app: App, tg: FakeTelegram, text: str, thread: int | None = None) -> str:
    before = len(tg.sent(STAFF_CHAT))
    tg.send_message(STAFF, text, chat_id=STAFF_CHAT, thread_id=thread)
    await settle(app, tg)
    return "\n".join(m.get("plain", "") for m in tg.sent(STAFF_CHAT)[before:])


async def test_two_companies_get_their_own_promise_and_due_times(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    tg.add_user(CLIENT_B, "Борис", language_code="ru")
    tg.add_user(CLIENT_C, "Вера", language_code="ru")
    async with running(with_companies(make_config, COMPANIES)) as app:
        await join(app, tg, CLIENT, "Альфа")
        await join(app, tg, CLIENT_B, "Бета")
        for user in (CLIENT, CLIENT_B, CLIENT_C):  # the same message from each
            tg.send_message(user, OUTAGE)
            await settle(app, tg)
        alpha, beta, nobody = (texts_to(tg, u)[-1] for u in (CLIENT, CLIENT_B, CLIENT_C))
        assert "ответим в течение 1 часа, круглосуточно" in alpha
        assert "ответим в течение 6 рабочих часов" in beta
        assert "ответим в течение 2 часов, круглосуточно" in nobody  # the desk's [sla]
        t1, t2, t3 = [await ticket(app, n) for n in (1, 2, 3)]
        assert t1.first_response_due is not None and t2.first_response_due is not None
        assert t3.first_response_due is not None
        assert t1.first_response_due - t1.opened_at == timedelta(hours=1)
        assert t2.first_response_due - t2.opened_at == timedelta(hours=6)
        assert t3.first_response_due - t3.opened_at == timedelta(hours=2)
        # The cards show the companies' due times.
        cards = [tg.sent(STAFF_CHAT, topic["message_thread_id"])[0]["plain"]
                 for topic in tg.topics(STAFF_CHAT)]
        due = [d.astimezone(MSK).strftime("Ответ до %d.%m %H:%M")
               for d in (t1.first_response_due, t2.first_response_due, t3.first_response_due)]
        assert [d in card for d, card in zip(due, cards, strict=True)] == [True] * 3

        # /org shows the level; a change from chat leaves open incidents as they were...
        card = await staff_says(app, tg, "/org Бета")
        assert "критическая: ответ в течение 6 рабочих часов" in card
        assert "08:00–20:00" in card
        answer = await staff_says(app, tg, "/org sla Альфа critical response 3h")
        assert "сохраняют прежние сроки" in answer
        assert (await ticket(app, 1)).first_response_due == t1.first_response_due
        # ... and a new incident gets the new promise.
        tg.send_message(CLIENT, "/new")
        await settle(app, tg)
        tg.send_message(CLIENT, OUTAGE)
        await settle(app, tg)
        assert "ответим в течение 3 часов, круглосуточно" in texts_to(tg, CLIENT)[-1]
        # --reapply moves the open ones.
        answer = await staff_says(app, tg, "/org sla Альфа critical response 3h --reapply")
        assert "Пересчитаны сроки открытых обращений: 2" in answer
        moved = await ticket(app, 1)
        assert moved.first_response_due == moved.opened_at + timedelta(hours=3)
        assert (await ticket(app, 2)).first_response_due == t2.first_response_due
        bad = await staff_says(app, tg, "/org sla Альфа critical response soon")
        assert "Не понимаю «soon»" in bad


async def test_company_working_time_decides_when_business_hours_run(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    """Normal incidents run in business hours: those of a company in another time zone
    with longer days fall due by its clock."""
    companies = [{"name": "Восток", "desk": {"timezone": "Asia/Vladivostok",
                                             "work_start": "09:00", "work_end": "18:00"}}]
    printer = "Принтер у бухгалтера печатает с полосами"
    # 10:00 in Moscow is 17:00 in Vladivostok: one working hour left there today.
    async with running(with_companies(make_config, companies)) as app:
        await join(app, tg, CLIENT, "Восток")
        tg.send_message(CLIENT, printer)
        await settle(app, tg)
        t = await ticket(app, 1)
        assert t.severity == "normal" and t.first_response_due is not None
        local = t.first_response_due.astimezone(ZoneInfo("Asia/Vladivostok"))
        assert (local.date(), local.hour) == (datetime(2026, 12, 3).date(), 12)  # 1 h + 3 h


CONTRACT: list[dict[str, Any]] = [
    {"name": "Альфа", "services": ["1С", "почта"], "contacts": [CLIENT_B],
     "notify_contacts": True, "account_manager": "@boss_alpha"},
]


async def test_coordinator_sees_the_company_and_gets_the_act_manager_on_escalation(
    make_config: Callable[..., Config], tg: FakeTelegram, tmp_path: Any
) -> None:
    tg.add_user(CLIENT_B, "Борис", language_code="ru")
    tg.add_user(CLIENT_C, "Вера", language_code="ru")
    config = with_companies(make_config, CONTRACT,
                            reports={"directory": str(tmp_path / "reports"),
                                     "monthly_acts": True})
    async with running(config) as app:
        await join(app, tg, CLIENT, "Альфа")
        await join(app, tg, CLIENT_B, "Альфа")
        tg.send_message(CLIENT, OUTAGE)
        await settle(app, tg)
        # The coordinator hears of it; the card and the topic's first message show the scope.
        assert "Новое обращение #1 от Анна (Альфа)" in texts_to(tg, CLIENT_B)[-1]
        topic = tg.topics(STAFF_CHAT)[0]["message_thread_id"]
        assert "По договору: 1С; почта" in tg.sent(STAFF_CHAT, topic)[0]["plain"]

        tg.send_message(CLIENT_B, "/my company")
        await settle(app, tg)
        listing = texts_to(tg, CLIENT_B)[-1]
        assert "Обращения компании Альфа" in listing and "#1 · " in listing
        assert "Анна" in listing
        tg.send_message(CLIENT_B, "/status 1")
        await settle(app, tg)
        assert "Обращение #1" in texts_to(tg, CLIENT_B)[-1]
        # Others see neither.
        tg.send_message(CLIENT_C, "/status 1")
        tg.send_message(CLIENT, "/my company")
        await settle(app, tg)
        assert "не найдено среди ваших" in texts_to(tg, CLIENT_C)[-1]
        assert "видит только её контактное лицо" in texts_to(tg, CLIENT)[-1]

        # Out of scope: the client is told plainly, the card says so.
        answer = await staff_says(app, tg, "/scope 1 out настройка домашнего ноутбука")
        assert "вне договора" in answer
        told = texts_to(tg, CLIENT)[-1]
        assert "не входит в ваш договор обслуживания (настройка домашнего ноутбука)" in told
        assert "за отдельную плату" in told
        async with app.db.transaction() as session:
            t = await session.scalar(select(Ticket).where(Ticket.number == 1))
        assert t is not None and t.out_of_scope == "настройка домашнего ноутбука"
        assert "Например" in await staff_says(app, tg, "/scope 1 out")

        # A breach mentions the company's account manager.
        await sla_sweep(app.db, app.container.notifier_for, app.config,
                        WEDNESDAY.astimezone(UTC) + timedelta(hours=3))
        app.delivery.wake()
        await settle(app, tg)
        assert "@boss_alpha" in "\n".join(texts_to(tg, STAFF_CHAT, topic))

        # The monthly act goes to the coordinator too (December's, on 1 January).
        await staff_says(app, tg, "/close 1 перезагрузили роутер")
        assert await monthly_acts(app.db, app.container.notifier_for, app.config,
                                  datetime(2027, 1, 1, 9, tzinfo=UTC)) == 1
        app.delivery.wake()
        await settle(app, tg)
        names = [uploaded(c)["filename"] for c in tg.calls_to("sendDocument", CLIENT_B)]
        assert names == [f"act-Альфа-2026-12.{ext}" for ext in ACT_FORMATS]
        assert "Акт выполненных работ Альфа за 2026-12" in texts_to(tg, CLIENT_B)[-3]
        assert tg.calls_to("sendDocument", CLIENT) == []  # not a coordinator


async def test_time_logged_three_ways_on_the_card_in_the_act_and_the_cost_ranking(
    make_config: Callable[..., Config], tg: FakeTelegram, tmp_path: Any
) -> None:
    tg.add_user(CLIENT_B, "Борис", language_code="ru")
    companies = [{"name": "Альфа", "fee": 5000, "hours_included": 2},
                 {"name": "Бета", "fee": 50000}]
    config = with_companies(make_config, companies,
                            reports={"directory": str(tmp_path / "reports"),
                                     "hour_cost": 2000})
    async with running(config) as app:
        await join(app, tg, CLIENT, "Альфа")
        await join(app, tg, CLIENT_B, "Бета")
        tg.send_message(CLIENT, OUTAGE)
        await settle(app, tg)
        tg.send_message(CLIENT_B, "Не приходит почта у бухгалтера")
        await settle(app, tg)
        topic = tg.topics(STAFF_CHAT)[0]["message_thread_id"]
        assert "+30 мин (всего 30 мин)" in await staff_says(app, tg, "/time 1 30m")
        assert "(всего 1 ч)" in await staff_says(app, tg, "/time 15m 15m", thread=topic)
        assert "(всего 2 ч)" in await staff_says(app, tg, "/time 1h", thread=topic)
        await staff_says(app, tg, "/close 1 1h перезагрузили роутер, заменили блок питания")
        assert "Сколько времени?" in await staff_says(app, tg, "/time 1 soon")
        card = tg.message(STAFF_CHAT, tg.sent(STAFF_CHAT, topic)[0]["message_id"])
        assert card is not None and "Затрачено: 3 ч" in card["plain"]
        await staff_says(app, tg, "/close 2 2h настроили почтовый ящик")
        await staff_says(app, tg, "/reopen 2 не помогло")
        await staff_says(app, tg, "/close 2 пересоздали профиль")

        # /stats: Альфа costs 3 h x 2000 = 6000 against a fee of 5000 — a loss; Бета 4000
        # against 50000.
        stats = await staff_says(app, tg, "/stats")
        ranking = stats[stats.index("затраты и абонплата"):]
        assert "1. Альфа — 3 ч = 6 000 при абонплате 5 000 (120%, в убыток)" in ranking
        assert "2. Бета — 2 ч = 4 000 при абонплате 50 000 (8%), повторных открытий 1" \
            in ranking
        assert "Борис · Бета — 1 (обращений: 1)" in stats
        org_card = await staff_says(app, tg, "/org Альфа")
        assert "Учтено времени: 3 ч из 2 ч по договору · абонплата 5 000" in org_card

        await staff_says(app, tg, "/report Альфа 2026-12")
        html = (tmp_path / "reports" / "acts" / "2026-12" / "act-Альфа-2026-12.html"
                ).read_text(encoding="utf-8")
        assert "перезагрузили роутер, заменили блок питания" in html
        assert ">3 ч</td>" in html and "3 ч из 2 ч, включённых в абонентскую плату" in html
        assert "(сверх: 1 ч)" in html
        quarter = await staff_says(app, tg, "/report Альфа 2026-Q4")
        assert "2026Q4" in quarter or (tmp_path / "reports" / "acts" / "2026Q4").exists()


async def test_planned_works_are_reminded_once_when_due_and_once_overdue_across_restarts(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    companies = [{"name": "Альфа", "maintenance": [{"work": "Антивирус", "every": "weekly"},
                                                   {"work": "Бэкапы", "every": "monthly"}]}]
    config = with_companies(make_config, companies)

    def reminders() -> list[str]:
        return [t for t in texts_to(tg, STAFF_CHAT) if "Плановые работы" in t]

    async with running(config) as app:  # the sweep runs at start-up: never done = due now
        await settle(app, tg)
        [first] = reminders()
        assert "Альфа — Антивирус: срок сегодня" in first
        assert "Альфа — Бэкапы: срок сегодня" in first
        answer = await staff_says(app, tg, "/org done Альфа: бэкапы")
        assert "«Бэкапы» отмечено выполненным" in answer
    async with running(config) as app:  # a restart posts nothing again
        await settle(app, tg)
        assert len(reminders()) == 1
        thursday = WEDNESDAY.astimezone(UTC) + timedelta(days=1)
        notifier_for = app.container.notifier_for
        assert await maintenance_sweep(app.db, notifier_for, app.config, thursday) == 1
        assert await maintenance_sweep(app.db, notifier_for, app.config, thursday) == 0
        app.delivery.wake()
        await settle(app, tg)
        assert "Альфа — Антивирус: просрочено (срок был 02.12.2026)" in reminders()[-1]
        assert "Бэкапы" not in reminders()[-1]  # done: due again on 2 January
    async with running(config, WEDNESDAY + timedelta(days=1)) as app:
        await settle(app, tg)
        assert len(reminders()) == 2  # the overdue one was posted once, restart or not
        notifier_for = app.container.notifier_for
        late_december = datetime(2026, 12, 27, 10, tzinfo=MSK)
        assert await maintenance_sweep(app.db, notifier_for, app.config, late_december) == 1
        january = datetime(2027, 1, 3, 10, tzinfo=MSK)
        assert await maintenance_sweep(app.db, notifier_for, app.config, january) == 1
        assert await maintenance_sweep(app.db, notifier_for, app.config, january) == 0
        app.delivery.wake()
        await settle(app, tg)
        assert "Альфа — Бэкапы: срок 02.01.2027 (через 6 дн.)" in reminders()[-2]
        assert "Альфа — Бэкапы: просрочено (срок был 02.01.2027)" in reminders()[-1]


async def test_the_coordinator_gets_the_companys_quarter_once_across_a_restart(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    tg.add_user(CLIENT_B, "Борис", language_code="ru")
    companies: list[dict[str, Any]] = [
        {"name": "Альфа", "contacts": [CLIENT_B], "account_manager": "@boss_alpha"},
        {"name": "Бета"}]
    config = with_companies(make_config, companies, quality={"enabled": True})
    check = q.Schedule.from_config(config).next_after(WEDNESDAY)
    assert check is not None and check.astimezone(MSK).date().month == 1  # Q4's check

    def summaries() -> list[str]:
        return [t for t in texts_to(tg, CLIENT_B) if "итоги за IV квартал 2026" in t]

    async with running(config) as app:
        await join(app, tg, CLIENT, "Альфа")
        await join(app, tg, CLIENT_B, "Альфа")
        tg.send_message(CLIENT, OUTAGE)
        await settle(app, tg)
        await staff_says(app, tg, "/close 1 1h30 перезагрузили роутер")
        found = tg.find_button(CLIENT, "Плохо")
        assert found is not None
        tg.press_button(CLIENT, CLIENT, found[0], found[1])
        await settle(app, tg)
        # A bad rating: the company's account manager is mentioned on the alert.
        assert any("Руководитель: @boss_alpha" in t for t in texts_to(tg, STAFF_CHAT))
        for moment in (check, check + timedelta(minutes=5)):  # two ticks: one summary
            await quality_job(app.db, app.container.notifier_for, config, moment)
        app.delivery.wake()
        await settle(app, tg)
        [summary] = summaries()
        assert summary.startswith("Альфа: итоги за IV квартал 2026 года")
        assert "обратились к нам 1 раз(а), решено обращений: 1" in summary
        assert "Обычно мы отвечали за" in summary
        assert "работали над ними 1 ч 30 мин" in summary
        assert "Оценки ваших сотрудников: 1, средняя 2,0 из 5" in summary
        assert not any("итоги за" in t for t in texts_to(tg, CLIENT))  # not a coordinator
    async with running(config, check + timedelta(minutes=10)) as app:  # its own tick runs
        await app.scheduler.wait_idle()
        await quality_job(app.db, app.container.notifier_for, config,
                             check + timedelta(minutes=15))
        app.delivery.wake()
        await settle(app, tg)
        assert len(summaries()) == 1
