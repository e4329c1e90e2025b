"""/health in the staff group: is anything stuck on the way to Telegram?

Outbox depth, the oldest pending message, the last unresolved error and the 429
answers of the last hour, from `storage.repos.outbox.delivery_health`. Only in the staff
group (whose members are staff and admins); the answer jumps the group's queue of
cards (see `Outbox.due`), so it comes even during a mass outage.
"""

from __future__ import annotations

from datetime import datetime

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messaging.notify import Notifier
from bot.messaging.texts import Texts
from handlers._filters import in_staff_chat
from storage.repos.outbox import delivery_health

router = Router(name=__name__)


router.message.filter(in_staff_chat)


@router.message(Command("health"))
async def health(
    message: Message, session: AsyncSession, notifier: Notifier, texts: Texts, now: datetime
) -> None:
    stats = await delivery_health(session, now)
    thread = message.message_thread_id if message.is_topic_message else None
    await notifier.reply_staff(message.chat.id, thread, texts.staff("health", stats=stats, now=now))
