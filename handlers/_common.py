"""What several routers do alike: answering in the staff group's thread, finding the
incident a staff message is about, the flag of staff handlers."""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.types import CallbackQuery, Message

from bot.domain.errors import UserError
from bot.messaging.after_commit import AfterCommit
from bot.messaging.notify import Notifier
from bot.messaging.texts import Texts
from bot.services.desk import Desk, DeskError
from bot.services.records import Ticket
from handlers._parse import reply_to_id

# `flags=STAFF` on a handler that needs to know whether its sender is staff (a staff
# command, a staff button, a button whose presser is counted differently): the unit of work
# asks only for those (bot/telegram/middleware.py, StaffRequests).
STAFF_FLAG = "staff"
STAFF: dict[str, Any] = {STAFF_FLAG: True}

REMOVE_KEYBOARD = {"remove_keyboard": True}


def refuse_non_staff(callback: CallbackQuery, texts: Texts, after_commit: AfterCommit) -> None:
    """A staff button pressed by someone who is not staff: an alert in their language."""
    language = texts.language_for(callback.from_user.language_code)
    after_commit(callback.answer(texts.client_plain(language, "error", code="staff_only"),
                                 show_alert=True))


def alert_error(callback: CallbackQuery, texts: Texts, after_commit: AfterCommit,
                error: UserError) -> None:
    """A staff button whose action was refused: the reason as an alert."""
    after_commit(callback.answer(
        texts.staff_plain("error", code=error.code, **error.context), show_alert=True))


async def bot_username(bot: Bot) -> str | None:
    """The bot's @username (aiogram caches getMe; the app asks once at start-up)."""
    return (await bot.me()).username


def thread_of(message: Message) -> int | None:
    """The forum topic a message was written in (None outside topics)."""
    return message.message_thread_id if message.is_topic_message else None


async def reply(message: Message, notifier: Notifier, html: str) -> None:
    """Answer a staff message where it was written: its chat and its topic."""
    await notifier.reply_staff(message.chat.id, thread_of(message), html)


async def thread_ticket(message: Message, desk: Desk) -> Ticket | None:
    """The incident a staff-group message is about: its topic, or the message it replies to."""
    return await desk.ticket_in_thread(message.chat.id, thread_of(message),
                                       reply_to_id(message))


async def target_ticket(
    message: Message, words: list[str], desk: Desk, command: str
) -> tuple[Ticket, list[str]]:
    """The incident a staff command is about (its first word, the number, may be left out
    inside the incident's topic or replying to a message about it), and the words after."""
    if words and words[0].lstrip("#").isdigit():
        return await desk.ticket(int(words[0].lstrip("#"))), words[1:]
    ticket = await thread_ticket(message, desk)
    if ticket is None:
        raise DeskError("need_number", command=command)
    return ticket, words
