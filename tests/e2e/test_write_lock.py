"""Nothing slow while the write lock is held: a button's answer is a Telegram round trip,
made after the update's commit (bot/messaging/after_commit.py), so a slow or failing one
neither holds up another client's registration nor undoes the press."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select

from bot.app.runtime import App
from bot.domain.enums import Severity
from bot.sandbox.emulator import FakeTelegram
from bot.sandbox.emulator.faults import Fault
from storage.models import Ticket
from tests.e2e.conftest import CLIENT, CLIENT_EN, settle, texts_to

PRINTER = "Принтер у бухгалтера печатает с полосами"


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


async def press_urgent(app: App, tg: FakeTelegram) -> None:
    """CLIENT's incident #1 registered, then its "This is urgent" pressed."""
    tg.send_message(CLIENT, PRINTER)
    await settle(app, tg)
    message_id, data = tg.find_button(CLIENT, "🔥 Срочно") or (0, "")
    tg.press_button(CLIENT, CLIENT, message_id, data)


async def test_a_slow_button_answer_does_not_hold_up_another_registration(
    app: App, tg: FakeTelegram
) -> None:
    tg.inject(Fault.timeout(seconds=2, deliver=True), method="answerCallbackQuery")
    await press_urgent(app, tg)

    async def answering() -> bool:  # the answer is on its way, held 2 s
        return bool(tg.calls_to("answerCallbackQuery"))

    async def registered() -> bool:
        return await ticket_count(app) == 2

    await wait_for(answering, "the button's answer")
    started = time.monotonic()
    tg.send_message(CLIENT_EN, "The printer prints blank pages")
    await wait_for(registered, "the second registration")
    took = time.monotonic() - started
    await settle(app, tg)
    assert took < 0.5, f"registration took {took:.2f} s behind a 2 s button answer"
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
