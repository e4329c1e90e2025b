"""Turning aiogram objects into the plain values the services take."""

from __future__ import annotations

from aiogram.types import Message, User

from bot.messaging.notify import Actor, Content
from bot.services.desk import Person

MEDIA_KINDS = (
    "photo", "document", "video", "voice", "audio", "animation", "video_note", "sticker",
    "contact", "location", "venue", "poll", "dice",
)


def content_of(message: Message) -> Content:
    kind = "text" if message.text is not None else "other"
    for candidate in MEDIA_KINDS:
        if getattr(message, candidate, None) is not None:
            kind = candidate
            break
    return Content(
        kind=kind,
        text=message.text or message.caption or "",
        chat_id=message.chat.id,
        message_id=message.message_id,
    )


def person_of(user: User, chat_id: int) -> Person:
    return Person(
        user_id=user.id, chat_id=chat_id, first_name=user.first_name,
        last_name=user.last_name, username=user.username, language_code=user.language_code,
    )


def staff_actor(user: User) -> Actor:
    return Actor("staff", user.id, user.full_name)


def reply_to_id(message: Message) -> int | None:
    """The message replied to, ignoring the topic header Telegram sets on every topic message."""
    replied = message.reply_to_message
    if replied is None or replied.forum_topic_created is not None:
        return None
    return replied.message_id
