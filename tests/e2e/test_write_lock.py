"""Nothing slow while the write lock is held: a button's answer is a Telegram round trip,
made after the update's commit (bot/messaging/after_commit.py), so a slow or failing one
neither holds up another client's registration nor undoes the press; nor does a report
(/stats, /report), made after its update's commit.

"Not held up" is checked by order, not by a stopwatch: another client's registration
completes while the slow step is still under way (a loaded CI machine once took 1.3 s for
a registration that takes 30 ms on a quiet one, and a 0.5 s bound failed on it)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app.runtime import App
from bot.domain.enums import Severity
from bot.sandbox.emulator import FakeTelegram
from bot.sandbox.emulator.faults import Fault
from bot.services.reports import jobs
from bot.services.reports.stats import Stats, compute_stats
from storage.models import Ticket
from tests.e2e.conftest import CLIENT, CLIENT_EN, STAFF, STAFF_CHAT, settle, texts_to

PRINTER = "Принтер у бухгалтера печатает с полосами"
SLOW = 3.0  # seconds a slow step is held: far above a registration, even on a busy machine


async def ticket_count(app: App) -> int:
    async with app.db.transaction() as session:
        return await session.scalar(select(func.count()).select_from(Ticket)) or 0


async def severity_of(app: App, number: int) -> Severity:
    async with app.db.transaction() as session:
        found = await session.scalar(select(Ticket.severity).where(Ticket.number == number))
    assert found is not None
    return found


async def wait_for(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Until `condition` holds (looked at every 10 ms), at most 5 s."""
    deadline = time.monotonic() + 5
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.01)


async def registers_while(app: App, tg: FakeTelegram, busy: Callable[[], Awaitable[bool]],
                          done: Callable[[], bool], what: str) -> bool:
    """Whether CLIENT_EN's incident (the second), sent once `busy` holds, is registered
    before `done` (the slow step over); then everything settles."""

    async def registered() -> bool:
        return await ticket_count(app) == 2

    await wait_for(busy, what)
    tg.send_message(CLIENT_EN, "The printer prints blank pages")
    await wait_for(registered, "the second registration")
    before = not done()
    await settle(app, tg)
    return before


async def press_urgent(app: App, tg: FakeTelegram) -> None:
    """CLIENT's incident #1 registered, then its "This is urgent" pressed."""
    tg.send_message(CLIENT, PRINTER)
    await settle(app, tg)
    message_id, data = tg.find_button(CLIENT, "🔥 Срочно") or (0, "")
    tg.press_button(CLIENT, CLIENT, message_id, data)


async def test_a_slow_button_answer_does_not_hold_up_another_registration(
    app: App, tg: FakeTelegram
) -> None:
    tg.inject(Fault.timeout(seconds=SLOW, deliver=True), method="answerCallbackQuery")
    await press_urgent(app, tg)

    async def answering() -> bool:  # the answer is on its way, held SLOW s
        return bool(tg.calls_to("answerCallbackQuery"))

    answered = asyncio.get_running_loop().time() + SLOW  # at the earliest

    def answer_over() -> bool:
        return asyncio.get_running_loop().time() >= answered

    assert await registers_while(app, tg, answering, answer_over, "the button's answer"), \
        "the registration waited for the held button answer"
    assert await severity_of(app, 1) == Severity.CRITICAL
    assert len(tg.calls_to("answerCallbackQuery")) == 1


async def test_a_failing_button_answer_keeps_the_press(app: App, tg: FakeTelegram) -> None:
    tg.inject(Fault.error(400, "Bad Request: query is too old and response timeout expired "
                               "or query ID is invalid"), method="answerCallbackQuery")
    await press_urgent(app, tg)
    await settle(app, tg)
    assert await severity_of(app, 1) == Severity.CRITICAL
    assert "Поняли, это срочно" in texts_to(tg, CLIENT)[-1]
    assert not any("что-то пошло не так" in text for text in texts_to(tg, CLIENT))


# /stats and /report run after the update's commit (bot/services/reports/jobs.py,
# ReportDesk): each slow step held SLOW s in turn — the figures (inside their read
# session), the chart (in its thread), the act's files (in theirs) — and another client
# registers meanwhile; the answer still arrives.


SlowStep = tuple[threading.Event, threading.Event]  # started, over


def slow_in_thread(monkeypatch: pytest.MonkeyPatch, name: str) -> SlowStep:
    """jobs.`name` (run in a worker thread) made to take SLOW s more."""
    started, over = threading.Event(), threading.Event()
    real = getattr(jobs, name)

    def slow(*args: Any, **kwargs: Any) -> Any:
        started.set()
        time.sleep(SLOW)
        over.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, name, slow)
    return started, over


def slow_figures(monkeypatch: pytest.MonkeyPatch) -> SlowStep:
    """The figures take SLOW s more, inside their read session (on the event loop)."""
    started, over = threading.Event(), threading.Event()
    real = compute_stats

    async def slow(*args: Any, **kwargs: Any) -> Stats:
        started.set()
        await asyncio.sleep(SLOW)
        over.set()
        return await real(*args, **kwargs)

    monkeypatch.setattr(jobs, "compute_stats", slow)
    return started, over


@pytest.mark.parametrize("step", ["figures", "chart", "act"])
async def test_a_slow_report_does_not_hold_up_another_registration(
    app: App, tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    tg.send_message(CLIENT, PRINTER)
    await settle(app, tg)
    if step == "act":
        tg.send_message(STAFF, "/org add ООО Ромашка", chat_id=STAFF_CHAT)
        await settle(app, tg)
        started, over = slow_in_thread(monkeypatch, "write_act")
        command, kind, count = "/report Ромашка", "sendDocument", 2  # HTML, CSV (+ PDF)
    else:
        started, over = (slow_figures(monkeypatch) if step == "figures"
                         else slow_in_thread(monkeypatch, "render_chart"))
        command, kind, count = "/stats month", "sendPhoto", 1
    tg.send_message(STAFF, command, chat_id=STAFF_CHAT)

    async def slow_step_running() -> bool:
        return started.is_set()

    assert await registers_while(app, tg, slow_step_running, over.is_set,
                                 f"the {step} of {command}"), \
        f"the registration waited for {command}'s slow {step}"
    assert len(tg.calls_to(kind, STAFF_CHAT)) >= count, f"{command} not answered"


async def test_a_failing_report_is_told_to_the_staff_chat(
    app: App, tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any) -> bytes:
        raise RuntimeError("the chart's font is missing")

    monkeypatch.setattr(jobs, "render_chart", broken)
    tg.send_message(STAFF, "/stats month", chat_id=STAFF_CHAT)
    await settle(app, tg)
    said = [m.get("plain", "") for m in tg.sent(STAFF_CHAT)]
    assert any("не получился" in text and "ещё раз" in text for text in said), said
    assert not tg.calls_to("sendPhoto", STAFF_CHAT)
