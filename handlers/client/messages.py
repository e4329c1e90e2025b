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
from bot.services.records import Client
from handlers._filters import at_once, private_chat
from handlers._parse import content_of, reply_to_id


async def unknown_command(message: Message, client: Client, notifier: Notifier) -> None:
    await notifier.to_client(None, client, "unknown_command", priority=PRIORITY_REPLY)


async def sticker(message: Message, client: Client, desk: Desk, notifier: Notifier) -> None:
    """A sticker says little on its own: kept with an open incident, otherwise asked about."""
    if await desk.add_to_only_open(client, content_of(message)):
        return
    await notifier.to_client(None, client, "sticker", priority=PRIORITY_REPLY,
                             reply_to=message.message_id)


async def client_message(message: Message, client: Client, desk: Desk) -> None:
    await desk.client_message(client, content_of(message), reply_to_id(message))


async def edited(message: Message, client: Client, desk: Desk, notifier: Notifier) -> None:
    content = content_of(message)
    ticket = await desk.client_edited(client, content)
    if ticket is not None:
        await notifier.to_client(ticket, client, "edited", priority=PRIORITY_REPLY)
    elif not content.text.startswith("/"):
        # An edit of a message that is in no incident yet: take it as a new message.
        await desk.client_message(client, content, reply_to_id(message))


def router() -> Router:
    router = Router(name=__name__)
    router.message.filter(private_chat)
    router.edited_message.filter(private_chat)
    router.message.register(unknown_command,
                            at_once(F.text.regexp(r"^/[A-Za-z0-9_]+(@\w+)?(\s|$)")))
    router.message.register(sticker, at_once(F.sticker | F.dice))
    router.message.register(client_message)
    router.edited_message.register(edited)
    return router
