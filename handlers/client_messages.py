"""Whatever else a client sends in the private chat: every message lands in an incident.

Registered after the command handlers, so that this router only sees messages
that are not commands of ours. Unknown commands get the list of real ones.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message

from bot.messaging.notify import Notifier
from bot.messaging.outbox import PRIORITY_REPLY
from bot.services.desk import Desk
from handlers._filters import at_once, private_chat
from handlers._parse import content_of, person_of, reply_to_id

router = Router(name=__name__)
router.message.filter(private_chat)
router.edited_message.filter(private_chat)


@router.message(at_once(F.text.regexp(r"^/[A-Za-z0-9_]+(@\w+)?(\s|$)")))
async def unknown_command(message: Message, desk: Desk, notifier: Notifier) -> None:
    assert message.from_user is not None
    client, _ = await desk.client_for(person_of(message.from_user, message.chat.id))
    await notifier.to_client(None, client, "unknown_command", priority=PRIORITY_REPLY)


@router.message(at_once(F.sticker | F.dice))
async def sticker(message: Message, desk: Desk, notifier: Notifier) -> None:
    """A sticker says little on its own: kept with an open incident, otherwise asked about."""
    assert message.from_user is not None
    client, _ = await desk.client_for(person_of(message.from_user, message.chat.id))
    open_tickets = await desk.tickets.open_for_client(client.id)
    if len(open_tickets) == 1:
        await desk.append_from_client(open_tickets[0], client, content_of(message))
        return
    await notifier.to_client(None, client, "sticker", priority=PRIORITY_REPLY,
                             reply_to=message.message_id)


@router.message()
async def client_message(message: Message, desk: Desk) -> None:
    assert message.from_user is not None
    client, _ = await desk.client_for(person_of(message.from_user, message.chat.id))
    await desk.client_message(client, content_of(message), reply_to_id(message))


@router.edited_message()
async def edited(message: Message, desk: Desk, notifier: Notifier) -> None:
    assert message.from_user is not None
    client, _ = await desk.client_for(person_of(message.from_user, message.chat.id))
    content = content_of(message)
    ticket = await desk.client_edited(client, content)
    if ticket is not None:
        await notifier.to_client(ticket, client, "edited", priority=PRIORITY_REPLY)
    elif not content.text.startswith("/"):
        # An edit of a message that is in no incident yet: take it as a new message.
        await desk.client_message(client, content, reply_to_id(message))
