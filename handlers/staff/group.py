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

from bot.messaging.notify import Actor, Notifier
from bot.messaging.texts import Texts
from bot.services.desk import Desk
from bot.services.problems import ProblemDesk
from handlers._common import reply, thread_ticket
from handlers._filters import at_once, in_staff_chat
from handlers._parse import content_of, reply_to_id, staff_actor

NOTE_MARK = "!"


async def _from_person(message: Message) -> bool | dict[str, Actor]:
    """Written by a person (not a bot): the handler gets them as `actor`."""
    user = message.from_user
    if user is None or user.is_bot:
        return False
    return {"actor": staff_actor(user)}


async def staff_help(message: Message, notifier: Notifier, texts: Texts) -> None:
    await reply(message, notifier, texts.staff("help"))


async def other_command(message: Message) -> None:
    """Commands of other bots in the group, or typos: not ours to answer."""


async def thread_message(
    message: Message, actor: Actor, desk: Desk, problems: ProblemDesk
) -> None:
    ticket = await thread_ticket(message, desk)
    content = content_of(message)
    is_note = content.text.lstrip().startswith(NOTE_MARK)
    if ticket is None:
        if not is_note:  # a reply to a problem's alert message reaches its clients
            await problems.alert_reply(message.chat.id, reply_to_id(message), actor, content)
        return
    if is_note:
        await desk.staff_note(ticket, actor, content)
    else:  # a problem's incident: every linked client is told too
        await problems.staff_answer(ticket, actor, content)


def router() -> Router:
    router = Router(name=__name__)
    router.message.filter(in_staff_chat)
    router.message.register(staff_help, Command("help", "start"))
    router.message.register(other_command, at_once(F.text.startswith("/")))
    router.message.register(thread_message, _from_person)
    return router
