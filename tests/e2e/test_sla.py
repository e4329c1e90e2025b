"""Severity and SLA through the real bot: the promise at registration, "This is urgent"
(and forged or replayed presses), staff overrides by /sev and card buttons, their
export as labelled examples, /tickets by due time, and a broken vocabulary file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app.runtime import App
from bot.cli.main import main
from bot.config import Config, ConfigError
from bot.domain.enums import Severity
from bot.messaging.callbacks import UrgentAction
from bot.sandbox.emulator import FakeTelegram
from storage.models import Ticket, TicketEvent
from tests.e2e.cluster import new_app
from tests.e2e.conftest import (
    CLIENT,
    CLIENT_EN,
    STAFF,
    STAFF_2,
    STAFF_CHAT,
    STRANGER,
    TOKEN,
    settle,
    texts_to,
)

MSK = ZoneInfo("Europe/Moscow")
OUTAGE = "Не работает интернет во всём офисе, никто не может работать"
PRINTER = "Принтер у бухгалтера печатает с полосами"


def shifted_clock(to: datetime) -> Callable[[], datetime]:
    """A clock that runs in real time from `to` (delivery still sees time pass)."""
    offset = to - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


@asynccontextmanager
async def running(config: Config, clock: Callable[[], datetime] | None = None
                  ) -> AsyncIterator[App]:
    app = new_app(config, clock=clock) if clock else new_app(config)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def ticket(app: App, number: int) -> Ticket:
    async with app.db.transaction() as session:
        found = await session.scalar(select(Ticket).where(Ticket.number == number))
    assert found is not None
    return found


async def events(app: App, kind: str) -> list[TicketEvent]:
    async with app.db.transaction() as session:
        return list(await session.scalars(
            select(TicketEvent).where(TicketEvent.kind == kind).order_by(TicketEvent.id)))


def answers(tg: FakeTelegram, user_id: int) -> list[str]:
    return [a["text"] or "" for a in tg.callback_answers if a["user_id"] == user_id]


async def test_registration_promises_in_plain_words_and_offers_urgent(
    app: App, tg: FakeTelegram
) -> None:
    tg.send_message(CLIENT, OUTAGE)
    await settle(app, tg)  # two chats run in parallel: settle so the numbers are #1, #2
    tg.send_message(CLIENT_EN, "The printer in my office prints blank pages")
    await settle(app, tg)
    registered = tg.sent(CLIENT)[0]
    assert "Важность: критическая — ответим в течение 2 часов, круглосуточно." \
        in registered["plain"]
    assert "«🔥 Срочно»" in registered["plain"]
    [[urgent]] = registered["reply_markup"]["inline_keyboard"]
    assert urgent == {"text": "🔥 Срочно", "callback_data": UrgentAction(number=1).pack()}
    english = tg.sent(CLIENT_EN)[0]["plain"]
    assert "Severity: normal — we respond within 4 business hours." in english
    t = await ticket(app, 1)
    assert t.severity_source == "auto" and t.first_response_due is not None
    assert t.first_response_warn_due is not None and t.client_updated_at is not None
    card = tg.sent(STAFF_CHAT, tg.topics(STAFF_CHAT)[0]["message_thread_id"])[0]["plain"]
    assert "⏱ Ответ до" in card


async def test_outside_working_hours_the_client_is_told_when_we_are_back(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    saturday_noon = datetime(2026, 11, 28, 12, 0, tzinfo=MSK)
    config = make_config(desk={"holidays": ["2026-11-30"]})
    async with running(config, shifted_clock(saturday_noon)) as app:
        tg.send_message(CLIENT, PRINTER)
        await settle(app, tg)
        text = texts_to(tg, CLIENT)[0]
    assert "ответим в течение 4 рабочих часов" in text
    # Monday is a holiday in this desk's calendar.
    assert ("Сейчас нерабочее время: мы вернёмся в 9:00 во вторник; "
            "критические обращения — круглосуточно.") in text


async def test_urgent_raises_to_critical_alerts_on_duty_once(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    config = make_config(sla={"on_duty": [STAFF_2, "@duty_boss"]})
    async with running(config) as app:
        tg.send_message(CLIENT, PRINTER)
        await settle(app, tg)
        before = await ticket(app, 1)
        assert before.severity == Severity.NORMAL
        message_id, data = tg.find_button(CLIENT, "🔥 Срочно") or (0, "")
        tg.press_button(CLIENT, CLIENT, message_id, data)
        await settle(app, tg)
        tg.press_button(CLIENT, CLIENT, message_id, data)  # pressed again: a replay
        await settle(app, tg)
        after = await ticket(app, 1)
        urgent = await events(app, "urgent")
        severity = await events(app, "severity")

    assert after.severity == Severity.CRITICAL and after.severity_source == "client"
    assert after.first_response_due is not None and before.first_response_due is not None
    assert after.first_response_due < before.first_response_due  # 2 h around the clock
    assert [(e.actor_kind, e.actor_id, e.old_value, e.new_value) for e in urgent] == [
        ("client", CLIENT, "normal", "critical")]
    assert [(e.actor_kind, e.new_value) for e in severity] == [("client", "critical")]
    assert "Поняли, это срочно" in texts_to(tg, CLIENT)[-1]
    topic = tg.topics(STAFF_CHAT)[0]["message_thread_id"]
    [alert] = [m for m in tg.sent(STAFF_CHAT, topic) if "Срочно" in m["plain"]]
    assert "обычная → критическая" in alert["plain"] and "@duty_boss" in alert["plain"]
    mentioned = [e["user"]["id"] for e in alert["entities"] if e["type"] == "text_mention"]
    assert mentioned == [STAFF_2]
    assert tg.sent(STAFF_CHAT, topic)[0]["plain"].startswith("🔴 #1 · критическая")  # the card
    assert "уже отмечено как срочное" in answers(tg, CLIENT)[-1]


async def test_forged_urgent_presses_are_refused(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, PRINTER)
    await settle(app, tg)  # two chats run in parallel: settle so the numbers are #1, #2
    tg.send_message(CLIENT_EN, "How do I change my password?")
    await settle(app, tg)
    anna_message, anna_data = tg.find_button(CLIENT, "🔥 Срочно") or (0, "")
    john_message = tg.sent(CLIENT_EN)[0]["message_id"]
    # John forges Anna's incident number onto his own message.
    tg.press_button(CLIENT_EN, CLIENT_EN, john_message, anna_data, check=False)
    # A stranger presses Anna's button in Anna's chat (forged update).
    tg.press_button(STRANGER, CLIENT, anna_message, anna_data, check=False)
    # Anna presses numbers that do not exist or are not hers, and garbage.
    tg.press_button(CLIENT, CLIENT, anna_message, UrgentAction(number=99).pack(), check=False)
    tg.press_button(CLIENT, CLIENT, anna_message, UrgentAction(number=2).pack(), check=False)
    tg.press_button(CLIENT, CLIENT, anna_message, "u:x:1", check=False)
    await settle(app, tg)
    assert "is not among yours" in answers(tg, CLIENT_EN)[-1]
    assert answers(tg, STRANGER)
    assert list(answers(tg, CLIENT))[-3:-1] == [
        "Обращение #99 не найдено среди ваших. Список ваших обращений: /my",
        "Обращение #2 не найдено среди ваших. Список ваших обращений: /my"]
    assert all(a["show_alert"] for a in tg.callback_answers)
    assert await events(app, "urgent") == []
    assert (await ticket(app, 1)).severity == Severity.NORMAL
    assert (await ticket(app, 2)).severity == Severity.LOW


async def test_urgent_on_a_closed_incident_is_refused(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, PRINTER)
    await settle(app, tg)
    message_id, data = tg.find_button(CLIENT, "🔥 Срочно") or (0, "")
    tg.send_message(STAFF, "/close 1 Заменили картридж", chat_id=STAFF_CHAT)
    await settle(app, tg)
    tg.press_button(CLIENT, CLIENT, message_id, data)
    await settle(app, tg)
    assert "уже закрыто" in answers(tg, CLIENT)[-1]
    assert await events(app, "urgent") == []


async def test_staff_override_by_command_and_card_buttons_and_its_export(
    make_config: Callable[..., Config], tg: FakeTelegram, tmp_path: Path
) -> None:
    config = make_config()
    async with running(config) as app:
        tg.send_message(CLIENT, PRINTER)
        await settle(app, tg)
        topic = tg.topics(STAFF_CHAT)[0]["message_thread_id"]
        tg.send_message(STAFF, "/sev critical", chat_id=STAFF_CHAT, thread_id=topic)
        await settle(app, tg)
        raised = await ticket(app, 1)
        card = tg.sent(STAFF_CHAT, topic)[0]
        labels = [b["text"] for b in card["reply_markup"]["inline_keyboard"][1]]
        assert labels == ["🟡 Обычная", "🟢 Низкая"]
        message_id, data = tg.find_button(STAFF_CHAT, "🟢 Низкая", thread_id=topic) or (0, "")
        tg.press_button(STAFF_2, STAFF_CHAT, message_id, data)
        await settle(app, tg)
        lowered = await ticket(app, 1)
        # A client cannot use the staff button from their private chat.
        tg.press_button(CLIENT, CLIENT, tg.sent(CLIENT)[0]["message_id"],
                        data.replace("low", "normal"), check=False)
        tg.send_message(CLIENT_EN, "Mail is down for the whole office")  # no override
        await settle(app, tg)
        severity = await events(app, "severity")

    assert raised.severity == Severity.CRITICAL and raised.severity_source == "staff"
    assert lowered.severity == Severity.LOW and lowered.severity_source == "staff"
    assert [(e.actor_id, e.old_value, e.new_value) for e in severity] == [
        (STAFF, "normal", "critical"), (STAFF_2, "critical", "low")]
    assert "изменена: критическая" in texts_to(tg, CLIENT)[1]
    assert "ответим в течение 2 часов, круглосуточно" in texts_to(tg, CLIENT)[1]

    config_file = tmp_path / "export.toml"
    config_file.write_text(f'[database]\nurl = "{config.database.url}"\n', encoding="utf-8")
    out = tmp_path / "corrections.jsonl"
    code = await asyncio.to_thread(main, ["classify", "--export-corrections", "--config",
                                          str(config_file), "--out", str(out)])
    assert code == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == [{"text": PRINTER, "severity": "low"}]  # the level staff chose last


async def test_tickets_shows_time_left_soonest_first(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    wednesday_10 = datetime(2026, 12, 2, 10, 0, tzinfo=MSK)
    async with running(make_config(), shifted_clock(wednesday_10)) as app:
        tg.send_message(CLIENT, PRINTER)  # normal: 4 working hours
        await settle(app, tg)  # two chats run in parallel: settle so the numbers are #1, #2
        tg.send_message(CLIENT_EN, "Mail server is down, nobody in the office can work")
        await settle(app, tg)
        tg.send_message(STAFF, "/status 1 waiting", chat_id=STAFF_CHAT)
        await settle(app, tg)
        tg.send_message(STAFF, "/tickets", chat_id=STAFF_CHAT)
        await settle(app, tg)
        listing = texts_to(tg, STAFF_CHAT)[-1]
    lines = listing.splitlines()
    assert "сначала ближайший срок" in lines[0]
    assert lines[1].startswith("#2 · критическая") and "⏱ ответ через 1h 59m" in lines[1]
    assert lines[2].startswith("#1 · обычная") and "⏸ ждём клиента" in lines[2]


async def test_sweep_runs_from_the_scheduler(app: App) -> None:
    job = app.scheduler.timer.get_job("sla")
    assert job is not None and job.trigger.interval.total_seconds() == 60


async def test_a_broken_vocabulary_file_stops_start_up_naming_it(
    make_config: Callable[..., Config], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "desk-words.yaml"
    broken.write_text("cues:\n  faliure: [сломалось]\n", encoding="utf-8")
    config = make_config(severity={"vocabulary": [str(broken)]})
    with pytest.raises(ConfigError, match=r"\[severity.vocabulary\].*desk-words.yaml: "
                                          r"cues.faliure: unknown cue kind"):
        App(config)

    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[telegram]\ntoken = "{TOKEN}"\nstaff_chat_id = {STAFF_CHAT}\n'
        f'[database]\nurl = "{config.database.url}"\n'
        '[severity]\nvocabulary = ["desk-words.yaml"]\n', encoding="utf-8")
    assert await asyncio.to_thread(main, ["run", "--config", str(config_file)]) == 2
    error = capsys.readouterr().err
    assert "[severity.vocabulary]" in error and "desk-words.yaml" in error


async def test_an_extra_vocabulary_extends_the_classifier(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    words = tmp_path / "words.yaml"
    words.write_text("cues:\n  service_core: [эвотор]\n", encoding="utf-8")
    plain: Any = App(make_config())
    extended: Any = App(make_config(severity={"vocabulary": [str(words)]}))
    try:
        assert plain.container.classify("эвотор завис") == Severity.NORMAL
        assert extended.container.classify("эвотор завис") == Severity.CRITICAL
    finally:
        for app in (plain, extended):
            await app.bot.session.close()
            await app.db.dispose()
