"""SLA with a fixed clock: targets and promises, due times across nights, weekends and
holidays, pause/resume, what is stored on the incident, and the sweep firing once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.app.container import Container
from bot.config import Config, ConfigError, parse_config
from bot.domain.enums import Severity, TicketStatus
from bot.domain.sla import SlaPolicy, pauses_from_events
from bot.messaging.notify import Actor, Content
from bot.messaging.texts import Texts
from bot.services.desk import Desk, Person
from bot.services.sla_jobs import DETAIL_LIMIT, sla_sweep, status_reminders
from storage.db import Database
from storage.migrate import upgrade_async
from storage.models import OutboxMessage, Ticket, TicketEvent

MSK = ZoneInfo("Europe/Moscow")
STAFF_CHAT = -100500
STAFF = Actor("staff", 7001, "Иван Петров")


def msk(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MSK).astimezone(UTC)


def make_config(**sections: dict[str, Any]) -> Config:
    data: dict[str, Any] = {"telegram": {"token": "1:x", "staff_chat_id": STAFF_CHAT,
                                         "staff_forum": True}}
    data.update(sections)
    return parse_config(data)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


# -- config and targets ---------------------------------------------------------------------


def test_default_targets() -> None:
    config = make_config()
    policy = SlaPolicy(config.desk, config.sla)
    critical, normal, low = (policy.target(s) for s in ("critical", "normal", "low"))
    assert (critical.first_response, critical.resolution) == (timedelta(hours=2),
                                                              timedelta(hours=8))
    assert critical.calendar.around_the_clock
    assert normal.first_response == timedelta(hours=4)
    assert normal.resolution == timedelta(hours=27)  # 3 working days of 9 hours
    assert (low.first_response, low.resolution) == (timedelta(hours=9), timedelta(hours=45))
    assert not normal.calendar.around_the_clock and config.sla.warn_at == 0.8


def test_a_target_given_in_config_replaces_only_its_own_default() -> None:
    config = make_config(sla={"low": {"response_hours": 3}, "critical": {"business": True}})
    assert config.sla.low.response_hours == 3 and config.sla.low.response_days is None
    assert config.sla.low.resolution_days == 5
    assert config.sla.critical.business and config.sla.critical.response_hours == 2


@pytest.mark.parametrize(("sections", "key"), [
    ({"sla": {"warn_at": 1.5}}, "[sla.warn_at]"),
    ({"sla": {"normal": {"response_hours": 4, "response_days": 1}}}, "[sla.normal]"),
    ({"sla": {"escalation": ["not a username"]}}, "[sla.escalation.0]"),
    ({"sla": {"on_duty": [-5]}}, "[sla.on_duty.0]"),
    ({"sla": {"critical": {"response_minutes": 5}}}, "[sla.critical.response_minutes]"),
    ({"desk": {"workdays": ["monday"]}}, "[desk.workdays.0]"),
    ({"desk": {"work_start": "19:00"}}, "[desk]"),
    ({"desk": {"holidays": ["2027-02-30"]}}, "[desk.holidays.0]"),
])
def test_bad_sla_settings_name_the_key(sections: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        make_config(**sections)


def test_mentions_accept_ids_and_usernames() -> None:
    config = make_config(sla={"escalation": [7001, "@duty_boss", "7002"]})
    assert config.sla.escalation == [7001, "@duty_boss", 7002]


# -- due times across nights, weekends, holidays --------------------------------------------


def _policy(**desk: Any) -> SlaPolicy:
    config = make_config(desk=desk) if desk else make_config()
    return SlaPolicy(config.desk, config.sla)


def _due(policy: SlaPolicy, severity: str, opened: datetime) -> tuple[Any, Any]:
    ticket = Ticket(severity=severity, opened_at=opened, status="new")
    ticket.first_response_met = ticket.resolution_met = None
    ticket.first_response_at = None
    policy.schedule(ticket, [], opened)
    return ticket.first_response_due, ticket.resolution_due


def test_normal_due_on_friday_evening_moves_to_monday() -> None:
    friday_5pm = msk(2026, 11, 27, 17, 0)  # a Friday
    response, resolution = _due(_policy(), "normal", friday_5pm)
    assert response == msk(2026, 11, 30, 12, 0)  # 1 h on Friday + 3 h on Monday
    # 27 working hours: 1 (Fri) + 9 (Mon) + 9 (Tue) + 8 (Wed)
    assert resolution == msk(2026, 12, 2, 17, 0)


def test_a_holiday_is_skipped_and_critical_ignores_the_calendar() -> None:
    policy = _policy(holidays=["2026-11-30"])  # that Monday is a day off
    friday_5pm = msk(2026, 11, 27, 17, 0)
    assert _due(policy, "normal", friday_5pm)[0] == msk(2026, 12, 1, 12, 0)
    assert _due(policy, "critical", friday_5pm) == (msk(2026, 11, 27, 19, 0),
                                                    msk(2026, 11, 28, 1, 0))
    # A low incident at night: one working day from Tuesday's opening.
    assert _due(policy, "low", msk(2026, 11, 30, 23, 30))[0] == msk(2026, 12, 1, 18, 0)


def test_the_desk_timezone_decides_the_working_hours() -> None:
    # 07:00 UTC on a Monday is 09:00 in Moscow but 16:00 in Tokyo (2 working hours left).
    at = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    tokyo = _policy(timezone="Asia/Tokyo")
    response, _ = _due(tokyo, "normal", at)
    assert response == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # Tue 11:00 in Tokyo
    assert _due(_policy(), "normal", at)[0] == datetime(2026, 11, 30, 11, 0, tzinfo=UTC)


def test_pauses_come_from_status_events() -> None:
    def event(minute: int, kind: str, old: str, new: str) -> TicketEvent:
        return TicketEvent(at=msk(2026, 11, 30, 10, minute), kind=kind, old_value=old,
                           new_value=new, id=minute)

    events = [
        event(0, "opened", "", "new"),
        event(5, "status", "new", "waiting"),
        event(10, "severity", "normal", "low"),
        event(15, "status", "waiting", "in_progress"),
        event(20, "status", "in_progress", "resolved"),
        event(30, "reopened", "resolved", "taken"),
        event(40, "status", "taken", "waiting"),
    ]
    assert pauses_from_events(events) == [
        (msk(2026, 11, 30, 10, 5), msk(2026, 11, 30, 10, 15)),
        (msk(2026, 11, 30, 10, 20), msk(2026, 11, 30, 10, 30)),
        (msk(2026, 11, 30, 10, 40), None),
    ]


# -- the promise in plain words ---------------------------------------------------------------


@pytest.mark.parametrize(("now", "severity", "expected"), [
    (msk(2026, 11, 27, 20, 0), "normal",
     "Важность: обычная — ответим в течение 4 рабочих часов.\nСейчас нерабочее время: "
     "мы вернёмся в 9:00 в понедельник; критические обращения — круглосуточно."),
    (msk(2026, 11, 27, 20, 0), "critical",
     "Важность: критическая — ответим в течение 2 часов, круглосуточно.\n\n"),
    (msk(2026, 12, 1, 19, 0), "low",
     "ответим в течение 1 рабочего дня.\nСейчас нерабочее время: мы вернёмся завтра в 9:00;"),
    (msk(2026, 12, 2, 7, 30), "normal", "мы вернёмся сегодня в 9:00;"),
    (msk(2026, 12, 2, 12, 0), "normal", "рабочих часов.\n\nИнженер ответит"),
])
def test_registration_promise(now: datetime, severity: str, expected: str) -> None:
    policy = _policy()
    texts = Texts("ru", "Europe/Moscow")
    ticket = Ticket(number=7, severity=severity)
    html = texts.client("ru", "registered", ticket=ticket,
                        promise=policy.promise(severity, now))
    assert expected in html
    assert "Срочно" in html


def test_promise_after_a_holiday_weekend_and_in_english() -> None:
    policy = _policy(holidays=["2026-11-30"])
    promise = policy.promise("normal", msk(2026, 11, 28, 12, 0))  # Saturday
    texts = Texts("ru", "Europe/Moscow")
    ticket = Ticket(number=7, severity="normal")
    assert "мы вернёмся в 9:00 во вторник" in texts.client("ru", "registered", ticket=ticket,
                                                           promise=promise)
    english = texts.client("en", "registered", ticket=ticket, promise=promise)
    assert "we respond within 4 business hours" in english
    assert "we are back at 9:00 on Tuesday; critical incidents are handled around the clock" \
        in english


@pytest.mark.parametrize(("target", "words"), [
    ({"response_hours": 1}, "в течение 1 часа"),
    ({"response_hours": 5}, "в течение 5 часов"),
    ({"response_hours": 21}, "в течение 21 часа"),
    ({"response_hours": 1.5}, "в течение 1,5 часа"),
    ({"response_hours": 0.5}, "в течение 30 минут"),
    ({"response_days": 3}, "в течение 3 дней"),
])
def test_durations_read_naturally(target: dict[str, Any], words: str) -> None:
    config = make_config(sla={"critical": {**target, "business": False}})
    policy = SlaPolicy(config.desk, config.sla)
    html = Texts("ru").client("ru", "registered", ticket=Ticket(number=1, severity="critical"),
                              promise=policy.promise("critical", msk(2026, 12, 2, 12, 0)))
    assert f"ответим {words}, круглосуточно" in html


# -- the desk with a database: pauses, what is stored, the sweep ---------------------------


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sla.db'}"
    await upgrade_async(url)
    database = Database(url)
    yield database
    await database.dispose()


class World:
    """A desk over a real database with a fixed clock, through the container like the bot."""

    def __init__(self, db: Database, config: Config, clock: Clock,
                 severity: Severity = Severity.NORMAL) -> None:
        self.db, self.config, self.clock = db, config, clock
        self.container = Container.build(config, clock=clock, db=db,
                                         classify=lambda _text: severity)
        self.notifier = self.container.notifier_for
        self._message_ids = iter(range(1000, 100000))

    def desk(self, session: Any) -> Desk:
        return self.container.scope(session).desk

    async def open(self, user_id: int = 5001, text: str = "Не работает почта") -> int:
        async with self.db.transaction() as session:
            desk = self.desk(session)
            client = await desk.client_for(Person(user_id, user_id, "Анна", None, None, "ru"))
            ticket = await desk.open_ticket(client, self.content(user_id, text))
            return ticket.number

    def content(self, chat_id: int, text: str) -> Content:
        return Content("text", text, chat_id, next(self._message_ids))

    async def ticket(self, number: int) -> Ticket:
        async with self.db.transaction() as session:
            ticket = await session.scalar(select(Ticket).where(Ticket.number == number))
            assert ticket is not None
            return ticket

    async def staff_answer(self, number: int, text: str = "Смотрим") -> None:
        async with self.db.transaction() as session:
            desk = self.desk(session)
            await desk.staff_answer(await desk.ticket(number), STAFF,
                                    self.content(STAFF_CHAT, text))

    async def status(self, number: int, status: TicketStatus, text: str | None = None) -> None:
        async with self.db.transaction() as session:
            await self.desk(session).set_status(number, STAFF, status, text)

    async def client_writes(self, number: int, text: str = "Вот скриншот") -> None:
        async with self.db.transaction() as session:
            desk = self.desk(session)
            ticket = await desk.ticket(number)
            client = await desk.client_of(ticket)
            await desk.append_from_client(ticket, client, self.content(client.chat_id, text))

    async def sweep(self) -> Any:
        return await sla_sweep(self.db, self.notifier, self.config, self.clock())

    async def staff_texts(self, marker: str) -> list[str]:
        async with self.db.transaction() as session:
            rows = await session.scalars(
                select(OutboxMessage).where(OutboxMessage.chat_id == STAFF_CHAT)
                .order_by(OutboxMessage.id))
            return [r.payload.get("text", "") for r in rows
                    if marker in r.payload.get("text", "")]

    async def client_texts(self, chat_id: int = 5001) -> list[str]:
        async with self.db.transaction() as session:
            rows = await session.scalars(
                select(OutboxMessage).where(OutboxMessage.chat_id == chat_id)
                .order_by(OutboxMessage.id))
            return [r.payload.get("text", "") for r in rows]


async def test_waiting_pauses_the_clock_and_the_clients_answer_resumes_it(db: Database) -> None:
    clock = Clock(msk(2026, 11, 30, 10, 0))  # Monday 10:00; normal: response in 4 h
    world = World(db, make_config(), clock)
    number = await world.open()
    assert (await world.ticket(number)).first_response_due == msk(2026, 11, 30, 14, 0)

    clock.advance(hours=1)
    await world.status(number, TicketStatus.WAITING)  # a bare status change: not a response
    paused = await world.ticket(number)
    assert paused.paused_since == clock.now and paused.first_response_at is None
    assert paused.first_response_due is None and paused.resolution_due is None

    clock.now = msk(2026, 12, 1, 10, 0)  # the client answers on Tuesday at 10:00
    await world.client_writes(number)
    resumed = await world.ticket(number)
    assert resumed.status == TicketStatus.IN_PROGRESS and resumed.paused_since is None
    # 3 of the 4 hours were left when the clock stopped.
    assert resumed.first_response_due == msk(2026, 12, 1, 13, 0)

    clock.now = msk(2026, 12, 1, 12, 0)
    await world.staff_answer(number)
    answered = await world.ticket(number)
    assert answered.first_response_at == clock.now
    assert answered.first_response_seconds == 3 * 3600  # 1 h Monday + 2 h Tuesday
    assert answered.first_response_met is True and answered.first_response_due is None


async def test_notes_and_bare_status_changes_are_no_response_but_a_status_text_is(
    db: Database
) -> None:
    clock = Clock(msk(2026, 11, 30, 10, 0))
    world = World(db, make_config(), clock)
    number = await world.open()
    async with db.transaction() as session:
        desk = world.desk(session)
        await desk.staff_note(await desk.ticket(number), STAFF,
                              world.content(STAFF_CHAT, "!позвонить"))
    await world.status(number, TicketStatus.IN_PROGRESS)
    assert (await world.ticket(number)).first_response_at is None
    clock.advance(hours=5)
    await world.status(number, TicketStatus.WAITING, "Пришлите, пожалуйста, скриншот")
    ticket = await world.ticket(number)
    assert ticket.first_response_at == clock.now
    assert ticket.first_response_met is False and ticket.first_response_seconds == 5 * 3600


async def test_resolution_is_stored_and_a_reopen_continues_the_clock(db: Database) -> None:
    clock = Clock(msk(2026, 11, 30, 10, 0))
    world = World(db, make_config(), clock, Severity.CRITICAL)  # 2 h / 8 h around the clock
    number = await world.open()
    clock.advance(hours=1)
    await world.staff_answer(number)
    clock.advance(hours=2)
    await world.status(number, TicketStatus.RESOLVED, "Перезапустили сервер")
    resolved = await world.ticket(number)
    assert (resolved.resolution_seconds, resolved.resolution_met) == (3 * 3600, True)
    assert resolved.resolution_due is None

    clock.advance(hours=10)  # resolved for 10 hours: not on the clock
    async with db.transaction() as session:
        await world.desk(session).reopen(number, STAFF, "снова упал")
    reopened = await world.ticket(number)
    assert reopened.resolution_met is None
    assert reopened.resolution_due == clock.now + timedelta(hours=5)
    clock.advance(hours=6)
    async with db.transaction() as session:
        await world.desk(session).close(number, STAFF, "Заменили диск")
    closed = await world.ticket(number)
    assert (closed.resolution_seconds, closed.resolution_met) == (9 * 3600, False)


async def test_warning_and_breach_fire_exactly_once_each(db: Database) -> None:
    clock = Clock(msk(2026, 11, 30, 10, 0))
    config = make_config(sla={"escalation": [7100, "@duty_boss"]})
    world = World(db, config, clock, Severity.CRITICAL)
    number = await world.open()

    clock.advance(minutes=95)  # 80% of 2 hours is 96 minutes
    assert not (await world.sweep()).wrote
    clock.advance(minutes=2)
    result = await world.sweep()
    assert result.warned == [(number, "first_response")] and not result.breached
    for _ in range(5):
        assert not (await world.sweep()).wrote
    warnings = await world.staff_texts("⚠️")
    assert len(warnings) == 1 and "первого ответа" in warnings[0] and "осталось 23m" in warnings[0]

    clock.advance(minutes=30)
    result = await world.sweep()
    assert result.breached == [(number, "first_response")]
    for _ in range(5):
        assert not (await world.sweep()).wrote
    [breach] = await world.staff_texts("⏰")
    assert "нарушен" in breach and 'href="tg://user?id=7100"' in breach and "@duty_boss" in breach

    clock.advance(hours=10)  # the resolution target: breach found first, warning moot
    assert (await world.sweep()).breached == [(number, "resolution")]
    assert len(await world.staff_texts("⚠️")) == 1
    assert len(await world.staff_texts("⏰")) == 2
    async with db.transaction() as session:
        kinds = list(await session.scalars(
            select(TicketEvent.kind).where(TicketEvent.kind.like("sla_%"))
            .order_by(TicketEvent.id)))
    assert kinds == ["sla_warning", "sla_breach", "sla_breach"]
    ticket = await world.ticket(number)
    assert ticket.resolution_warned_at == ticket.resolution_breached_at == clock.now


async def test_a_paused_incident_is_not_warned(db: Database) -> None:
    clock = Clock(msk(2026, 11, 30, 10, 0))
    world = World(db, make_config(), clock, Severity.CRITICAL)
    number = await world.open()
    await world.status(number, TicketStatus.WAITING)
    clock.advance(hours=30)
    assert not (await world.sweep()).wrote
    await world.client_writes(number)
    clock.advance(minutes=97)
    assert (await world.sweep()).warned == [(number, "first_response")]


async def test_a_severity_change_recomputes_and_may_warn_again(db: Database) -> None:
    clock = Clock(msk(2026, 11, 30, 10, 0))
    world = World(db, make_config(), clock, Severity.CRITICAL)
    number = await world.open()
    clock.advance(minutes=100)
    assert (await world.sweep()).warned
    async with db.transaction() as session:  # lowered to normal: 4 working hours
        await world.desk(session).set_severity(number, STAFF, Severity.NORMAL)
    ticket = await world.ticket(number)
    assert ticket.severity_source == "staff" and ticket.first_response_warned_at is None
    assert ticket.first_response_due == msk(2026, 11, 30, 14, 0)
    clock.now = msk(2026, 11, 30, 13, 15)
    assert (await world.sweep()).warned == [(number, "first_response")]


async def test_a_mass_outage_gets_one_summary_not_a_flood(db: Database) -> None:
    clock = Clock(msk(2026, 11, 30, 10, 0))
    world = World(db, make_config(sla={"escalation": ["@duty_boss"]}), clock, Severity.CRITICAL)
    numbers = [await world.open(user_id=6000 + i) for i in range(DETAIL_LIMIT + 2)]
    clock.advance(hours=3)
    result = await world.sweep()
    assert sorted(n for n, _ in result.breached) == numbers
    [summary] = await world.staff_texts("⏰")
    assert f"({len(numbers)})" in summary and "@duty_boss" in summary
    assert not (await world.sweep()).wrote


async def test_status_reminders_once_per_interval(db: Database) -> None:
    clock = Clock(msk(2026, 11, 30, 10, 0))
    world = World(db, make_config(sla={"on_duty": ["@duty_boss"]}), clock, Severity.CRITICAL)
    number = await world.open()
    low_world = World(db, world.config, clock, Severity.LOW)
    await low_world.open(user_id=5002)  # not critical: no reminders

    async def remind() -> list[int]:
        return (await status_reminders(db, world.notifier, world.config, clock())).reminded

    clock.advance(minutes=119)
    assert await remind() == []
    clock.advance(minutes=1)
    assert await remind() == [number]
    assert await remind() == []
    update = (await world.client_texts())[-1]
    assert "Работа продолжается" in update and "зарегистрировано" in update
    [line] = await world.staff_texts("🔔")
    assert "@duty_boss" in line  # nobody took it: the people on duty are reminded

    clock.advance(minutes=30)
    async with db.transaction() as session:
        await world.desk(session).take(number, STAFF)  # the client is told: the clock restarts
    clock.advance(hours=2)
    assert await remind() == [number]
    assert "Им занимается Иван Петров" in (await world.client_texts())[-1]
    assert 'href="tg://user?id=7001"' in (await world.staff_texts("🔔"))[-1]
    await world.status(number, TicketStatus.WAITING, "Пришлите лог")
    clock.advance(hours=5)
    assert await remind() == []  # the ball is in the client's court


async def test_sweep_is_idempotent_across_a_restart(db: Database, tmp_path: Path) -> None:
    """The same sweep from two App instances (a restart) over the same database."""
    from bot.app.runtime import App

    clock = Clock(msk(2026, 11, 30, 10, 0))
    config = make_config(database={"url": db.url}, telegram={
        "token": "1:x", "staff_chat_id": STAFF_CHAT, "api_base": "http://127.0.0.1:9"})
    world = World(db, config, clock, Severity.CRITICAL)
    number = await world.open()
    clock.advance(minutes=125)
    for _ in range(2):  # the first run, then a restart
        app = App(config, clock=clock, classify=lambda _text: Severity.CRITICAL)
        try:
            for _ in range(3):
                await app.run_job("sla")
        finally:
            await app.bot.session.close()
            await app.db.dispose()
    assert len(await world.staff_texts("⏰")) == 1
    assert (await world.ticket(number)).first_response_breached_at == clock.now
    async with db.transaction() as session:
        events = await session.scalar(
            select(func.count()).select_from(TicketEvent)
            .where(TicketEvent.kind == "sla_breach"))
    assert events == 1
