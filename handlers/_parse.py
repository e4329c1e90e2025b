"""Turning aiogram objects into the plain values the services take."""

from __future__ import annotations

from typing import Any

from aiogram.types import CallbackQuery, Message, User

from bot.messaging.notify import Actor, Content

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


def content_of_payload(message: dict[str, Any], chat_id: int, message_id: int) -> Content:
    """`content_of` for a message kept as its Bot API payload (the inbox's)."""
    kind = next((kind for kind in MEDIA_KINDS if kind in message),
                "text" if "text" in message else "other")
    return Content(kind=kind, text=message.get("text") or message.get("caption") or "",
                   chat_id=chat_id, message_id=message_id)


def staff_actor(user: User) -> Actor:
    return Actor("staff", user.id, user.full_name)


def callback_chat(callback: CallbackQuery) -> int:
    """The chat a button was pressed in (the presser's own when Telegram no longer says)."""
    return callback.message.chat.id if callback.message else callback.from_user.id


def reply_to_id(message: Message) -> int | None:
    """The message replied to, ignoring the topic header Telegram sets on every topic message."""
    replied = message.reply_to_message
    if replied is None or replied.forum_topic_created is not None:
        return None
    return replied.message_id
