"""Staff commands, wherever a staff member types them (the staff group or a private chat).

The router's filter admits staff only (`is_staff` comes from the unit-of-work
middleware). Inside an incident's topic, or replying to a bot message about it,
the number may be omitted.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.domain.enums import Severity, TicketStatus
from bot.messaging.notify import Notifier
from bot.messaging.texts import Texts
from bot.services.desk import Desk, DeskError
from handlers._filters import from_staff
from handlers._parse import reply_to_id, staff_actor
from storage.models import Ticket

router = Router(name=__name__)


router.message.filter(from_staff)

STATUS_WORDS = {s.value: s for s in (
    TicketStatus.IN_PROGRESS, TicketStatus.WAITING, TicketStatus.RESOLVED, TicketStatus.CLOSED
)}


async def reply(message: Message, notifier: Notifier, html: str) -> None:
    thread = message.message_thread_id if message.is_topic_message else None
    await notifier.reply_staff(message.chat.id, thread, html)


async def _target(
    message: Message, command: CommandObject, desk: Desk, notifier: Notifier
) -> tuple[Ticket, list[str]]:
    """The incident a command is about, and the words after its number."""
    words = (command.args or "").split()
    if words and words[0].lstrip("#").isdigit():
        return await desk.ticket(int(words[0].lstrip("#"))), words[1:]
    ticket = await desk.ticket_in_thread(
        message.message_thread_id if message.is_topic_message else None,
        reply_to_id(message), notifier.staff_chat_id,
    )
    if ticket is None:
        raise DeskError("need_number", command=command.command)
    return ticket, words


def _rest(command: CommandObject, words: list[str]) -> str | None:
    """The free text of a command after its structured words, with the original spacing."""
    args = command.args or ""
    if not words:
        return None
    start = args.find(words[0])
    return args[start:].strip() or None


@router.message(Command("take", "status", "close", "reopen", "sev"))
async def ticket_command(
    message: Message, command: CommandObject, desk: Desk, notifier: Notifier, texts: Texts
) -> None:
    assert message.from_user is not None
    actor = staff_actor(message.from_user)
    try:
        ticket, words = await _target(message, command, desk, notifier)
        name = command.command.lower()
        if name == "take":
            await desk.take(ticket.number, actor)
        elif name == "close":
            await desk.close(ticket.number, actor, _rest(command, words))
        elif name == "reopen":
            await desk.reopen(ticket.number, actor, _rest(command, words))
        elif name == "sev":
            if not words or words[0].lower() not in Severity.__members__.values():
                raise DeskError("bad_severity")
            await desk.set_severity(ticket.number, actor, Severity(words[0].lower()))
        elif not words:
            events = await desk.history(ticket)
            await reply(message, notifier, texts.client(
                texts.default_language, "history", ticket=ticket, events=events))
        elif words[0].lower() not in STATUS_WORDS:
            raise DeskError("bad_status")
        else:
            await desk.set_status(ticket.number, actor, STATUS_WORDS[words[0].lower()],
                                  _rest(command, words[1:]))
    except DeskError as error:
        await reply(message, notifier, texts.staff("error", code=error.code, **error.context))


@router.message(Command("tickets"))
async def open_tickets(message: Message, desk: Desk, notifier: Notifier, texts: Texts) -> None:
    rows = await desk.open_tickets_by_due()
    await reply(message, notifier, texts.staff("tickets_sla", rows=rows, now=desk.clock()))
