"""aiogram routers: parse an update, call a service, render a template.

Every module has a `router()` factory: each Dispatcher gets fresh routers (a router joins
one parent only; the tests run several Dispatchers in one process). `routers` fixes the
order, which matters because the first matching handler wins:
  0. staff.kb          staff FAQ management: /kb, its add/edit dialog (before anything
                       else, so dialog answers typed in a topic don't go to the client),
                       `/close N faq`
  1. staff.commands    /take /status /close /reopen /sev /tickets from staff, in the staff
                       group and in admins' private chats
  1a. staff.quality    /quality (admins), before the staff group's catch-all for commands
  1b. staff.health     /health in the staff group: the delivery queue (same reason)
  1c. staff.companies  /org in the staff group: companies, links, contract notes (same)
  1d. staff.reports    /stats and /report in the staff group (same)
  1e. staff.problems   /problem /link /unlink and their buttons (same)
  2. staff.group       the staff group: help, answers to clients, internal notes
  2a. staff.buttons    the buttons of incident cards
  2b. staff.bell       "Take" on the alerts of bad ratings and bad quarterly answers
  3. client.faq        /faq for clients and the FAQ buttons
  3a. client.ratings   rating buttons; a client's plain text while a rating question is
                       open is the comment (before client commands and messages;
                       everything else passes through: see bot/services/ratings.py)
  3b. client.quality   the answers to the quarterly quality check; a client's plain text
                       while "what is wrong?" (after a bad answer) is open is the answer
  3c. client.buttons   the buttons of the bot's other messages to a client
  4. client.commands   a client's commands in the private chat
  5. client.messages   everything else a client sends in private: lands in an incident
  6. other_chats       groups that are not the staff group: client groups (linked by the
                       invite's startgroup form or /org group; what is addressed to the
                       bot becomes an incident; the incidents' buttons there, for their
                       reporter; staff replies there), any other group or channel is left
  7. unknown           any other button: forged or outdated data, refused
Chat filters sit on the routers (see each module), never inside handlers. A handler that
needs to know whether its sender is staff carries `flags=STAFF` (handlers/_common.py); one
that takes `client` gets the client of the private chat (bot/telegram/middleware.py).
"""

from __future__ import annotations

from aiogram import Router

from handlers import other_chats, unknown
from handlers._common import STAFF_FLAG
from handlers.client import buttons as client_buttons
from handlers.client import commands as client_commands
from handlers.client import faq, messages, ratings
from handlers.client import quality as client_quality
from handlers.staff import bell as staff_bell
from handlers.staff import buttons as staff_buttons
from handlers.staff import commands as staff_commands
from handlers.staff import companies, group, health, kb, problems, reports
from handlers.staff import quality as staff_quality

__all__ = ["STAFF_FLAG", "routers"]


def routers() -> list[Router]:
    """Fresh routers in the order they must be included."""
    modules = [
        kb, staff_commands, staff_quality, health, companies, reports, problems, group,
        staff_buttons, staff_bell, faq, ratings, client_quality, client_buttons, client_commands,
        messages, other_chats, unknown,
    ]
    return [module.router() for module in modules]
