"""The quarterly quality check: admins' /quality commands and the clients' answers.

/quality preview | test | send | status — admins only (`[telegram] admins`), in the staff
group (or, for an admin, in their private chat with the bot). The campaign itself is
written to the outbox by the scheduled sender (bot/quality.py), so `/quality send` returns
at once and the sending survives a restart.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.config import Config
from bot.domain.enums import Severity
from bot.domain.periods import Period, parse_quarter, previous_quarter
from bot.messaging.callbacks import QualityAnswer
from bot.messaging.notify import Content, Notifier
from bot.messaging.outbox import PRIORITY_REPLY
from bot.messaging.texts import Texts
from bot.services import quality as q
from bot.services.desk import Desk
from handlers._parse import person_of
from handlers.staff_commands import reply
from storage.models import Client

router = Router(name=__name__)


@router.message(Command("quality"))
async def quality_command(
    message: Message, command: CommandObject, desk: Desk, notifier: Notifier, texts: Texts,
    config: Config,
) -> None:
    assert message.from_user is not None
    user_id = message.from_user.id
    in_staff_chat = message.chat.id == config.telegram.staff_chat_id
    if not config.is_admin(user_id):
        if not in_staff_chat:
            raise SkipHandler  # a client typing /quality: an unknown command like any other
        await reply(message, notifier, texts.staff("quality_reply", code="admins_only"))
        return
    if message.chat.type != "private" and not in_staff_chat:
        return
    word = (command.args or "").strip().lower()
    now = desk.clock()
    session = desk.session
    zone = texts.zone
    schedule = q.Schedule.from_config(config)
    if word == "status":
        campaign = await q.latest_campaign(session)
        status = await q.campaign_status(session, campaign) if campaign else None
        await reply(message, notifier, texts.staff("quality_status", campaign=campaign,
                                                   status=status))
    elif word == "send":
        period = previous_quarter(now, zone)
        campaign, created = await q.start_campaign(session, config, period, now,
                                                   started_by=user_id)
        total = await q.campaign_status(session, campaign)
        await reply(message, notifier, texts.staff(
            "quality_reply", code="started" if created else "exists", period=period,
            total=total.total))
    elif word in ("preview", "test"):
        fire = schedule.next_after(now)
        period = previous_quarter(fire or now, zone)
        own = await desk.clients.by_user(user_id)
        numbers = (await q.summaries(session, [own.id], period))[own.id] if own else q.Summary()
        language = own.language if own else texts.default_language
        text = q.render_check(texts, language, period, numbers, config)
        if word == "preview":
            recipients = len(await q.audience(session, config, now))
            await reply(message, notifier, texts.staff(
                "quality_preview", period=period, due=fire, recipients=recipients, text=text))
        else:
            await notifier.out.send_text(user_id, text, priority=PRIORITY_REPLY,
                                         keyboard=q.check_keyboard(texts, language, 0))
            if in_staff_chat:
                await reply(message, notifier, texts.staff("quality_reply", code="test_sent"))
    else:
        await reply(message, notifier, texts.staff("quality_reply", code="help"))


@router.callback_query(QualityAnswer.filter())
async def quality_answer(
    callback: CallbackQuery, callback_data: QualityAnswer, desk: Desk, notifier: Notifier,
    texts: Texts, config: Config,
) -> None:
    message = callback.message
    chat_id = message.chat.id if message else callback.from_user.id
    client, _ = await desk.client_for(person_of(callback.from_user, chat_id))
    zone = texts.zone
    try:
        delivery, campaign = await q.delivery_for(desk.session, client, callback_data.delivery)
        if message is None or chat_id != client.chat_id:
            raise q.QualityError("invalid")
        period = parse_quarter(campaign.period, zone)
        if callback_data.answer == q.TALK:
            if delivery.talk_ticket_id is not None:
                ticket = await desk.tickets.by_id(delivery.talk_ticket_id)
                raise q.QualityError("talk_open", number=ticket.number)
            subject = texts.client(client.language, "quality_talk_subject", period=period)
            ticket = await desk.open_ticket(
                client, Content(kind="text", text=subject, chat_id=client.chat_id,
                                message_id=message.message_id),
                severity=Severity.LOW, origin="quality_callback",
            )
            delivery.talk_ticket_id = ticket.id
            delivery.answered_at = desk.clock()
            await callback.answer()
            return
        score = q.score_of(callback_data.answer)
        if delivery.score == score:
            await callback.answer()
            return
        delivery.score = score
        delivery.answered_at = desk.clock()
        await _show_choice(notifier, texts, client, message.message_id, delivery.id,
                           period, score, talk=delivery.talk_ticket_id is not None)
    except q.QualityError as error:
        await callback.answer(
            texts.client(client.language, "quality_error", code=error.code, **error.context),
            show_alert=True,
        )
        return
    await callback.answer("✓ " + texts.label(client.language, "rating")[score])


async def _show_choice(
    notifier: Notifier, texts: Texts, client: Client, message_id: int, delivery_id: int,
    period: Period, score: int, *, talk: bool,
) -> None:
    """The check becomes "your rating: X"; the scale stays (the answer may be changed) and
    "Let's talk" stays until it is pressed."""
    keyboard = q.check_keyboard(texts, client.language, delivery_id)
    for row in keyboard[:2]:
        for key in row:
            if QualityAnswer.unpack(key["callback_data"]).answer == str(score):
                key["text"] = "✓ " + key["text"]
    if talk:
        keyboard = keyboard[:2]
    html = texts.client(client.language, "quality_chosen", period=period, score=score)
    await notifier.out.call(client.chat_id, "editMessageText", {
        "message_id": message_id, "text": html, "parse_mode": "HTML",
        "reply_markup": {"inline_keyboard": keyboard},
    }, priority=PRIORITY_REPLY)


