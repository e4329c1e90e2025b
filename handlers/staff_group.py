"""The staff group itself: help, answers to clients, internal notes.

A message belongs to an incident through its forum topic or the bot message it
replies to. Answers go to the client; messages starting with "!" are internal
notes and never leave the group. Everything else is the staff talking among
themselves and is left alone.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.messaging.notify import Notifier
from bot.messaging.texts import Texts
from bot.services.desk import Desk
from handlers._filters import at_once, in_staff_chat
from handlers._parse import content_of, reply_to_id, staff_actor
from handlers.staff_commands import reply

NOTE_MARK = "!"

router = Router(name=__name__)


router.message.filter(in_staff_chat)


@router.message(Command("help", "start"))
async def staff_help(message: Message, notifier: Notifier, texts: Texts) -> None:
    await reply(message, notifier, texts.staff("help"))


@router.message(at_once(F.text.startswith("/")))
async def other_command(message: Message) -> None:
    """Commands of other bots in the group, or typos: not ours to answer."""


@router.message(at_once(F.from_user.is_bot.is_(False)))
async def thread_message(message: Message, desk: Desk, notifier: Notifier) -> None:
    ticket = await desk.ticket_in_thread(
        message.message_thread_id if message.is_topic_message else None,
        reply_to_id(message), notifier.staff_chat_id,
    )
    if ticket is None or message.from_user is None:
        return
    content = content_of(message)
    actor = staff_actor(message.from_user)
    if content.text.lstrip().startswith(NOTE_MARK):
        await desk.staff_note(ticket, actor, content)
    else:
        await desk.staff_answer(ticket, actor, content)
