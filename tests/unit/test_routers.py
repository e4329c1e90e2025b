"""The routers as `handlers.routers` builds them: fresh for every Dispatcher, every filter
and handler a coroutine (aiogram sends a plain function to a worker thread, per update),
and the staff requests the unit of work checks taken from their flags."""

from __future__ import annotations

import inspect

from aiogram import Dispatcher, Router
from aiogram.filters import Command

from bot.messaging.callbacks import (
    BellTake,
    CompanyMove,
    KbAction,
    ProblemAction,
    ProblemLink,
    ProblemSuggest,
    RateAction,
    TicketAction,
)
from bot.telegram.middleware import StaffRequests
from handlers import STAFF_FLAG, other_chats, routers
from handlers._filters import private_chat


def _all(found: list[Router]) -> list[Router]:
    return [sub for router in found for sub in router.chain_tail]


def test_every_filter_and_handler_runs_on_the_event_loop() -> None:
    synchronous = []
    for router in _all(routers()):
        for event, observer in router.observers.items():
            for item in observer._handler.filters or []:
                if not item.awaitable:
                    synchronous.append(f"{router.name}.{event} filter {item.callback!r}")
            for handler in observer.handlers:
                if not handler.awaitable:
                    synchronous.append(f"{router.name}.{event} {handler.callback!r}")
                synchronous.extend(
                    f"{router.name}.{event} {handler.callback.__name__}: {item.callback!r}"
                    for item in handler.filters or [] if not item.awaitable)
    assert synchronous == []


def test_two_dispatchers_in_one_process_each_get_every_router() -> None:
    first, second = Dispatcher(), Dispatcher()
    first.include_routers(*routers())
    second.include_routers(*routers())
    names = [router.name for router in first.sub_routers]
    assert names == [router.name for router in second.sub_routers]
    assert len(names) == 18 and all(r.parent_router is first for r in first.sub_routers)
    assert names[-1] == "handlers.unknown"  # the refusal of any other button comes last


def test_the_staff_requests_are_those_of_the_flagged_handlers() -> None:
    requests = StaffRequests.of(routers(), STAFF_FLAG)
    assert requests.commands == {"take", "status", "close", "reopen", "sev", "tickets", "kb",
                                 "mute", "unmute", "time", "scope", "problem", "link", "unlink"}
    assert set(requests.buttons) == {
        f"{data.__prefix__}:" for data in (TicketAction, KbAction, RateAction, BellTake,
                                           CompanyMove, ProblemLink, ProblemAction,
                                           ProblemSuggest)}


def test_a_new_staff_command_needs_no_second_list() -> None:
    extra = Router(name="extra")

    async def escalate() -> None: ...

    extra.message.register(escalate, Command("escalate"), flags={STAFF_FLAG: True})
    assert "escalate" in StaffRequests.of([*routers(), extra], STAFF_FLAG).commands


def test_every_handler_takes_the_event_first() -> None:
    """aiogram passes the event positionally, everything else by name (a chat member
    update is named `member_update`)."""
    wrong = [
        f"{router.name}.{handler.callback.__name__}"
        for router in _all(routers()) for event, observer in router.observers.items()
        for handler in observer.handlers
        if next(iter(inspect.signature(handler.callback).parameters)) not in (
            "message", "callback", "member_update")
    ]
    assert wrong == []


def test_a_handler_that_needs_a_client_only_sees_private_chats() -> None:
    """The client is given for private chats only (bot/telegram/middleware.py); elsewhere a
    handler must not be reached, or take `client: Client | None = None`, or have a filter
    that hands it (a client group's buttons: the incident's reporter)."""
    exposed = []
    for router in _all(routers()):
        for event, observer in router.observers.items():
            private = any(item.callback is private_chat
                          for item in observer._handler.filters or [])
            for handler in observer.handlers:
                given = any(item.callback is other_chats.by_reporter
                            for item in handler.filters or [])
                param = inspect.signature(handler.callback).parameters.get("client")
                if param is not None and param.default is inspect.Parameter.empty \
                        and not (private or given):
                    exposed.append(f"{router.name}.{event} {handler.callback.__name__}")
    assert exposed == []
