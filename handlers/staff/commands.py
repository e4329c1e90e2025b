"""Staff commands, in the staff group, and in the private chats of admins (configured, or
the group's administrators): bot/telegram/staff.py, acts_as_staff.

The router's filter admits staff only (`is_staff` comes from the unit-of-work
middleware). Inside an incident's topic, or replying to a bot message about it,
the number may be omitted.
"""

from __future__ import annotations

from datetime import datetime

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.domain.durations import parse_minutes
from bot.domain.enums import Severity, TicketStatus
from bot.messaging.notify import Actor, Notifier
from bot.messaging.texts import Texts
from bot.services.desk import Desk, DeskError
from bot.services.flood import FloodDesk, duration
from bot.services.problems import ProblemDesk
from handlers._common import STAFF, reply, target_ticket
from handlers._filters import from_staff

STATUS_WORDS = {s.value: s for s in (
    TicketStatus.IN_PROGRESS, TicketStatus.WAITING, TicketStatus.VENDOR, TicketStatus.RESOLVED,
    TicketStatus.CLOSED,
)}


def _time_word(word: str) -> int | None:
    """Minutes of a time word with its unit (`30m`, `1h30`); a bare number is none (it
    would be an incident's number)."""
    return None if word.isdigit() else parse_minutes(word)


def _rest(command: CommandObject, words: list[str]) -> str | None:
    """The free text of a command after its structured words, with the original spacing."""
    args = command.args or ""
    if not words:
        return None
    start = args.find(words[0])
    return args[start:].strip() or None


async def ticket_command(
    message: Message, command: CommandObject, actor: Actor, desk: Desk, notifier: Notifier,
    texts: Texts, problems: ProblemDesk,
) -> None:
    try:
        ticket, words = await target_ticket(message, (command.args or "").split(), desk,
                                            command.command)
        name = command.command.lower()
        if name == "take":
            await desk.take(ticket.number, actor)
        elif name == "close":
            # `/close 42 1h what was done`: the time it took, then what was done.
            minutes = _time_word(words[0]) if words else None
            rest = words[1:] if minutes else words
            # a problem's incident: every linked one with it
            await problems.close(ticket.number, actor, _rest(command, rest), minutes)
        elif name == "time":
            minutes = _time_word(" ".join(words)) if words else None  # "1h 30m" too
            if minutes is None:
                raise DeskError("time_usage")
            await desk.log_time(ticket, actor, minutes)
        elif name == "scope":
            word = words[0].lower() if words else ""
            reason = _rest(command, words[1:])
            if word not in ("out", "in") or (word == "out" and not reason):
                raise DeskError("scope_usage")
            await desk.set_scope(ticket.number, actor, reason if word == "out" else None)
        elif name == "reopen":
            await desk.reopen(ticket.number, actor, _rest(command, words))
        elif name == "sev":
            if not words or words[0].lower() not in Severity.__members__.values():
                raise DeskError("bad_severity")
            await desk.set_severity(ticket.number, actor, Severity(words[0].lower()))
        elif not words:
            await reply(message, notifier, texts.client(
                texts.default_language, "history", ticket=ticket,
                events=await desk.events(ticket)))
        elif words[0].lower() not in STATUS_WORDS:
            raise DeskError("bad_status")
        else:
            await desk.set_status(ticket.number, actor, STATUS_WORDS[words[0].lower()],
                                  _rest(command, words[1:]))
    except DeskError as error:
        await reply(message, notifier, texts.staff("error", code=error.code, **error.context))


async def open_tickets(
    message: Message, desk: Desk, notifier: Notifier, texts: Texts, now: datetime
) -> None:
    rows = await desk.open_tickets_by_due()
    await reply(message, notifier, texts.staff("tickets_sla", rows=rows, now=now))


async def mute(
    message: Message, command: CommandObject, flood: FloodDesk, notifier: Notifier,
    texts: Texts, now: datetime,
) -> None:
    """/mute <client> [30m|1h|2d]: the client's messages are collected without a staff line
    each (one combined line a minute); /unmute <client> lets them through again."""
    words = (command.args or "").split()
    client = await flood.find(words[0]) if words else None
    span = duration(words[1] if len(words) > 1 else None)
    if not words or span is None:
        await reply(message, notifier, texts.staff("error", code="mute_usage"))
    elif client is None:
        await reply(message, notifier, texts.staff("error", code="no_client"))
    elif command.command.lower() == "unmute":
        flood.unmute(client)
        await reply(message, notifier, texts.staff("unmuted", client=client))
    else:
        flood.mute(client, now + span)
        await reply(message, notifier, texts.staff("muted", client=client, until=now + span))


def router() -> Router:
    router = Router(name=__name__)
    router.message.filter(from_staff)
    router.message.register(ticket_command, Command("take", "status", "close", "reopen", "sev",
                                                    "time", "scope"), flags=STAFF)
    router.message.register(open_tickets, Command("tickets"), flags=STAFF)
    router.message.register(mute, Command("mute", "unmute"), flags=STAFF)
    return router
