"""The quarterly quality check: admins' /quality commands (the clients' answers are
handlers/client/quality.py).

/quality preview | test | send | status | who [YYYYQn | YYYY-MM] — admins only
(`[telegram] admins`), in the staff group (or, for an admin, in their private chat with the
bot). The campaign itself is written to the outbox by the scheduled sender
(bot/services/quality.py), so `/quality send` returns at once and the sending survives a
restart.
"""

from __future__ import annotations

from datetime import datetime

from aiogram import Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, CommandObject
from aiogram.types import Message, User

from bot.config import Config
from bot.messaging.notify import Notifier
from bot.messaging.outbox import PRIORITY_REPLY
from bot.messaging.texts import Texts
from bot.services import quality as q
from bot.services.desk import Desk
from bot.services.records import Session
from handlers._common import reply
from handlers._filters import with_sender


async def quality_command(
    message: Message, command: CommandObject, user: User, desk: Desk, session: Session,
    now: datetime, notifier: Notifier, texts: Texts, config: Config, staff_chat_id: int,
) -> None:
    in_staff_chat = message.chat.id == staff_chat_id
    if not config.is_admin(user.id):
        if not in_staff_chat:
            raise SkipHandler  # a client typing /quality: an unknown command like any other
        await reply(message, notifier, texts.staff("quality_reply", code="admins_only"))
        return
    if message.chat.type != "private" and not in_staff_chat:
        return
    word, _, rest = (command.args or "").strip().lower().partition(" ")
    schedule = q.Schedule.from_config(config)
    if word == "status":
        campaign = await q.latest_campaign(session)
        status = await q.campaign_status(session, campaign) if campaign else None
        await reply(message, notifier, texts.staff("quality_status", campaign=campaign,
                                                   status=status))
    elif word == "who":
        campaign, rows = await q.who_answered(session, rest.strip() or None)
        await reply(message, notifier, texts.staff("quality_who", campaign=campaign, rows=rows,
                                                   label=rest.strip()))
    elif word == "send":
        period = q.checked_period(config, now)
        campaign, created = await q.start_campaign(session, config, period, now,
                                                   started_by=user.id)
        total = await q.campaign_status(session, campaign)
        await reply(message, notifier, texts.staff(
            "quality_reply", code="started" if created else "exists", period=period,
            total=total.total))
    elif word in ("preview", "test"):
        fire = schedule.next_after(now)
        period = q.checked_period(config, fire or now)
        own = await desk.known_client(user.id)
        numbers = (await q.summaries(session, [own.id], period))[own.id] if own else q.Summary()
        language = own.language if own else texts.default_language
        text = q.render_check(texts, language, period, numbers, config)
        if word == "preview":
            recipients = len(await q.audience(session, config, now))
            await reply(message, notifier, texts.staff(
                "quality_preview", period=period, due=fire, recipients=recipients, text=text))
        else:
            await notifier.out.send_text(user.id, text, priority=PRIORITY_REPLY,
                                         keyboard=q.check_keyboard(texts, language, 0))
            if in_staff_chat:
                await reply(message, notifier, texts.staff("quality_reply", code="test_sent"))
    else:
        await reply(message, notifier, texts.staff("quality_reply", code="help"))


def router() -> Router:
    router = Router(name=__name__)
    router.message.register(quality_command, Command("quality"), with_sender)
    return router
