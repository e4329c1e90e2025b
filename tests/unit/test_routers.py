"""The routers as get_routers builds them: fresh for every Dispatcher, and every filter and
handler a coroutine (aiogram sends a plain function to a worker thread, per update)."""

from __future__ import annotations

from aiogram import Dispatcher, Router

from bot.config import parse_config
from handlers import get_routers

CONFIG = parse_config({"telegram": {"token": "1:test", "staff_chat_id": -100}})


def _all(routers: list[Router]) -> list[Router]:
    found: list[Router] = []
    for router in routers:
        found.append(router)
        found.extend(_all(list(router.sub_routers)))
    return found


def test_every_filter_and_handler_runs_on_the_event_loop() -> None:
    synchronous = []
    for router in _all(get_routers(CONFIG)):
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
    first.include_routers(*get_routers(CONFIG))
    second.include_routers(*get_routers(CONFIG))
    names = [router.name for router in first.sub_routers]
    assert names == [router.name for router in second.sub_routers]
    assert len(names) == 12 and all(r.parent_router is first for r in first.sub_routers)
