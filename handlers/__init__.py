"""aiogram routers: parse an update, call a service, render a template.

`get_routers` fixes the order, which matters because the first matching handler wins:
  0. kb_admin        staff FAQ management: /kb, its add/edit dialog (before anything else,
                     so dialog answers typed in a topic don't go to the client), `/close N faq`
  1. staff_commands  /take /status /close /reopen /sev /tickets from staff, anywhere
  1a. quality        /quality (admins) and the quarterly check's buttons (before the staff
                     group's catch-all for other commands and before buttons' catch-all)
  1b. health         /health in the staff group: the delivery queue (before the staff
                     group's catch-all for other commands)
  1c. companies      /org in the staff group: companies, links, contract notes (before the
                     staff group's catch-all for other commands)
  1d. reports        /stats and /report in the staff group (same reason)
  2. staff_group     the staff group: help, answers to clients, internal notes
  2a. faq            /faq for clients and the FAQ buttons (before buttons' catch-all)
  2b. ratings        rating buttons (before buttons' catch-all); a client's plain text while
                     a rating question is open is the comment (before client commands and
                     messages; everything else passes through: see bot/ratings.py)
  3. buttons         inline buttons (staff and client), forged data refused
  4. client          a client's commands in the private chat
  5. client_messages everything else a client sends in private: lands in an incident
Chat filters sit on the routers (see each module), never inside handlers.
"""

from __future__ import annotations

from aiogram import Router

from bot.config import Config
from handlers import (
    buttons,
    client,
    client_messages,
    companies,
    faq,
    health,
    kb_admin,
    quality,
    ratings,
    reports,
    staff_commands,
    staff_group,
)


def _instance(template: Router) -> Router:
    """A router with the template's handlers, filters and middlewares, for one Dispatcher.

    A router joins one parent only, and the modules' routers are built once, at import;
    several Dispatchers in one process (the tests' in-process workers, a restart in the
    same process) each get their own copies. The handler objects themselves are shared:
    they hold nothing of a Dispatcher.
    """
    router = Router(name=template.name)
    for event, source in template.observers.items():
        target = router.observers[event]
        target.handlers = list(source.handlers)
        target.filter(*(item.callback for item in source._handler.filters or []))
        for middleware in source.outer_middleware:
            target.outer_middleware.register(middleware)
        for middleware in source.middleware:
            target.middleware.register(middleware)
    for sub in template.sub_routers:
        router.include_router(_instance(sub))
    return router


def get_routers(config: Config) -> list[Router]:
    """Fresh routers in the order they must be included; `config` is for optional features."""
    templates = [
        kb_admin.router,
        staff_commands.router,
        quality.router,
        health.router,
        companies.router,
        reports.router,
        staff_group.router,
        faq.router,
        ratings.router,
        buttons.router,
        client.router,
        client_messages.router,
    ]
    return [_instance(template) for template in templates]
