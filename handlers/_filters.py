"""Filters the routers share, every one a coroutine.

aiogram runs a filter that is a plain function (a MagicFilter `F...` included) in a
worker thread (`asyncio.to_thread`): a thread hop per check, costing far more than
the check itself, for every router an update passes on its way to its handler —
sixteen hops for a client's message. Filters written as coroutines run on the loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.types import Message, TelegramObject
from magic_filter import MagicFilter

from bot.config import Config


async def private_chat(message: Message) -> bool:
    return message.chat.type == "private"


async def in_staff_chat(message: Message, config: Config) -> bool:
    return message.chat.id == config.telegram.staff_chat_id


async def from_staff(_: Message, is_staff: bool) -> bool:
    return is_staff


def at_once(check: MagicFilter) -> Callable[[TelegramObject], Awaitable[Any]]:
    """A magic filter (`F.text.startswith("/")`) run as a coroutine."""

    async def resolve(event: TelegramObject) -> Any:
        return check.resolve(event)

    return resolve
