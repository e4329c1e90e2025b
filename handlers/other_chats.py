"""Groups and channels that are not the staff group: the bot does not stay in them.

Someone adding the bot to a third-party group would otherwise have a place where staff
commands might be typed and clients' names shown; the bot leaves at once (and, staff
commands being answered only in the staff group and in private chats, says nothing there
meanwhile). Linked client groups, once there are any, will be let in here.
"""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.types import ChatMemberUpdated

from bot.messaging.notify import Notifier
from bot.messaging.outbox import PRIORITY_REPLY

log = logging.getLogger(__name__)

PRESENT = {"member", "administrator", "creator", "restricted"}


async def bot_added(
    member_update: ChatMemberUpdated, staff_chat_id: int, notifier: Notifier
) -> None:
    new = member_update.new_chat_member.status
    status = str(getattr(new, "value", new))
    chat = member_update.chat
    if chat.id == staff_chat_id or status not in PRESENT:
        return
    log.warning("added to chat %s (%s), which is not the staff group: leaving",
                chat.id, chat.type)
    await notifier.out.call(chat.id, "leaveChat", {}, priority=PRIORITY_REPLY)


async def _not_private(member_update: ChatMemberUpdated) -> bool:
    return member_update.chat.type != "private"


def router() -> Router:
    router = Router(name=__name__)
    router.my_chat_member.register(bot_added, _not_private)
    return router
