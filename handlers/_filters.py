"""Filters the routers share, every one a coroutine.

aiogram runs a filter that is a plain function (a MagicFilter `F...` included) in a
worker thread (`asyncio.to_thread`): a thread hop per check, costing far more than
the check itself, for every router an update passes on its way to its handler —
sixteen hops for a client's message. Filters written as coroutines run on the loop.
A filter that returns a dict hands its values to the handler (aiogram merges them into
its arguments): `from_staff` the `actor`, `with_sender` the `user`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.types import CallbackQuery, Message, TelegramObject, User
from magic_filter import MagicFilter

from bot.messaging.notify import Actor
from handlers._parse import staff_actor


async def private_chat(event: Message | CallbackQuery) -> bool:
    """A message in a private chat, or a button pressed on one (or on a message Telegram no
    longer shows: only the presser sees it)."""
    message = event if isinstance(event, Message) else event.message
    return message is None or message.chat.type == "private"


async def in_staff_chat(message: Message, staff_chat_id: int) -> bool:
    """The staff group (`staff_chat_id`: the config's, or the supergroup it became)."""
    return message.chat.id == staff_chat_id


async def from_staff(message: Message, is_staff: bool) -> bool | dict[str, Actor]:
    """Staff only (`is_staff`: bot/telegram/middleware.py): the handler gets them as `actor`."""
    if not is_staff or message.from_user is None:
        return False
    return {"actor": staff_actor(message.from_user)}


async def still_staff(message: Message, staff_now: bool) -> bool | dict[str, Actor]:
    """Staff only, asked for this very message (a dialog's answer is no staff command, so
    `is_staff` does not cover it; the unit of work asks before its transaction,
    bot/telegram/middleware.py): the handler gets them as `actor`."""
    user = message.from_user
    if user is None or not staff_now:
        return False
    return {"actor": staff_actor(user)}


async def with_sender(message: Message) -> bool | dict[str, User]:
    """A message someone sent (every one but a channel's post): the handler gets `user`."""
    return {"user": message.from_user} if message.from_user is not None else False


def at_once(check: MagicFilter) -> Callable[[TelegramObject], Awaitable[Any]]:
    """A magic filter (`F.text.startswith("/")`) run as a coroutine."""

    async def resolve(event: TelegramObject) -> Any:
        return check.resolve(event)

    return resolve
