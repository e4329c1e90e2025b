"""/health in the staff group: is anything stuck on the way to Telegram?

Outbox depth, the oldest pending message, what was given up on (outbox rows Telegram
refused for good, updates that could not be handled: how many and the oldest), the last
unresolved error and the 429 answers of the last hour (bot/services/health.py), and
whether the sentence model is on. Only in the staff group (whose members are staff and
admins); the answer jumps the group's queue of cards (see `Outbox.due`), so it comes even
during a mass outage.
"""

from __future__ import annotations

from datetime import datetime

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.messaging.notify import Notifier
from bot.messaging.texts import Texts
from bot.services.flood import FloodDesk
from bot.services.health import delivery_health, parked_updates
from bot.services.records import Session
from bot.services.semantic import Semantic
from handlers._common import reply
from handlers._filters import in_staff_chat


async def health(
    message: Message, session: Session, notifier: Notifier, texts: Texts, now: datetime,
    flood: FloodDesk, semantic: Semantic, staff_group_public: bool = False,
) -> None:
    stats = await delivery_health(session, now)
    parked = await parked_updates(session)
    await reply(message, notifier, texts.staff("health", stats=stats, now=now, parked=parked,
                                               public=staff_group_public, semantic=semantic,
                                               flood=await flood.flooding(now)))


def router() -> Router:
    router = Router(name=__name__)
    router.message.filter(in_staff_chat)
    router.message.register(health, Command("health"))
    return router
