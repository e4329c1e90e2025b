"""A client's answer to the quarterly quality check (bot/services/quality.py): a score, or
"Let's talk", which opens a low-severity incident, or "not used / nothing to rate" (counted
apart). Only on the client's own check. A bad answer rings the bell (bot/services/bell.py)."""

from __future__ import annotations

from datetime import datetime

from aiogram import Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.types import CallbackQuery, Message

from bot.domain.enums import Severity
from bot.domain.periods import Period, parse_month_or_quarter
from bot.messaging.after_commit import AfterCommit
from bot.messaging.callbacks import QualityAnswer
from bot.messaging.notify import Content, Notifier
from bot.messaging.outbox import PRIORITY_REPLY
from bot.messaging.texts import Texts
from bot.services import quality as q
from bot.services.bell import Bell
from bot.services.desk import Desk
from bot.services.records import Client, Session
from handlers._filters import private_chat


async def quality_answer(
    callback: CallbackQuery, callback_data: QualityAnswer, client: Client, desk: Desk,
    session: Session, now: datetime, notifier: Notifier, texts: Texts, bell: Bell,
    after_commit: AfterCommit,
) -> None:
    message = callback.message
    try:
        delivery, campaign = await q.delivery_for(session, client, callback_data.delivery)
        if message is None or message.chat.id != client.chat_id:
            raise q.QualityError("invalid")
        period = parse_month_or_quarter(campaign.period, texts.zone)
        if callback_data.answer == q.TALK:
            if delivery.talk_ticket_id is not None:
                ticket = await desk.ticket_by_id(delivery.talk_ticket_id)
                raise q.QualityError("talk_open", number=ticket.number)
            subject = texts.client(client.language, "quality_talk_subject", period=period)
            ticket = await desk.open_ticket(
                client, Content(kind="text", text=subject, chat_id=client.chat_id,
                                message_id=message.message_id),
                severity=Severity.LOW, origin="quality_callback",
            )
            delivery.talk_ticket_id = ticket.id
            delivery.answered_at = now
            after_commit(callback.answer())
            return
        if callback_data.answer == q.UNUSED:  # counted apart, not as a grade
            delivery.score, delivery.unused_at, delivery.answered_at = None, now, now
            await _show_choice(notifier, texts, client, message.message_id, delivery.id,
                               period, None, talk=delivery.talk_ticket_id is not None)
            after_commit(callback.answer())
            return
        score = q.score_of(callback_data.answer)
        if delivery.score == score:
            after_commit(callback.answer())
            return
        old = delivery.score
        delivery.score, delivery.unused_at = score, None
        delivery.answered_at = now
        await _show_choice(notifier, texts, client, message.message_id, delivery.id,
                           period, score, talk=delivery.talk_ticket_id is not None)
        await bell.check_answered(delivery, client, period, old)
    except q.QualityError as error:
        after_commit(callback.answer(
            texts.client_plain(client.language, "quality_error", code=error.code, **error.context),
            show_alert=True,
        ))
        return
    after_commit(callback.answer("✓ " + texts.label(client.language, "rating")[score]))


async def _show_choice(
    notifier: Notifier, texts: Texts, client: Client, message_id: int, delivery_id: int,
    period: Period, score: int | None, *, talk: bool,
) -> None:
    """The check becomes "your rating: X" (None: "not used"); the scale stays (the answer
    may be changed) and "Let's talk" stays until it is pressed."""
    keyboard = q.check_keyboard(texts, client.language, delivery_id)
    chosen = q.UNUSED if score is None else str(score)
    for row in keyboard:
        for key in row:
            if QualityAnswer.unpack(key["callback_data"]).answer == chosen:
                key["text"] = "✓ " + key["text"]
    if talk:
        keyboard = keyboard[:3]
    html = texts.client(client.language, "quality_chosen", period=period, score=score)
    await notifier.out.call(client.chat_id, "editMessageText", {
        "message_id": message_id, "text": html, "parse_mode": "HTML",
        "reply_markup": {"inline_keyboard": keyboard},
    }, priority=PRIORITY_REPLY)


async def check_comment_or_pass(message: Message, client: Client, bell: Bell) -> None:
    """While "what is wrong?" (after a bad answer) is open, the client's next plain text is
    the answer, for the alert's thread; anything else closes the question and passes on
    (commands leave it open), as with a rating's question (handlers/client/ratings.py)."""
    delivery = await bell.open_check_question(client)
    if delivery is None:
        raise SkipHandler
    if message.text is not None and message.text.startswith("/"):
        raise SkipHandler
    if message.text is None or message.reply_to_message is not None:
        await bell.close_check_question(delivery)
        raise SkipHandler
    await bell.check_comment(delivery, client, message.text)


def router() -> Router:
    router = Router(name=__name__)
    router.callback_query.filter(private_chat)
    router.message.filter(private_chat)
    router.callback_query.register(quality_answer, QualityAnswer.filter())
    router.message.register(check_comment_or_pass)
    return router
