"""A client's answer to the quarterly quality check (bot/services/quality.py): a score, or
"Let's talk", which opens a low-severity incident. Only on the client's own check."""

from __future__ import annotations

from datetime import datetime

from aiogram import Router
from aiogram.types import CallbackQuery

from bot.domain.enums import Severity
from bot.domain.periods import Period, parse_quarter
from bot.messaging.after_commit import AfterCommit
from bot.messaging.callbacks import QualityAnswer
from bot.messaging.notify import Content, Notifier
from bot.messaging.outbox import PRIORITY_REPLY
from bot.messaging.texts import Texts
from bot.services import quality as q
from bot.services.desk import Desk
from bot.services.records import Client, Session
from handlers._filters import private_chat


async def quality_answer(
    callback: CallbackQuery, callback_data: QualityAnswer, client: Client, desk: Desk,
    session: Session, now: datetime, notifier: Notifier, texts: Texts,
    after_commit: AfterCommit,
) -> None:
    message = callback.message
    try:
        delivery, campaign = await q.delivery_for(session, client, callback_data.delivery)
        if message is None or message.chat.id != client.chat_id:
            raise q.QualityError("invalid")
        period = parse_quarter(campaign.period, texts.zone)
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
        score = q.score_of(callback_data.answer)
        if delivery.score == score:
            after_commit(callback.answer())
            return
        delivery.score = score
        delivery.answered_at = now
        await _show_choice(notifier, texts, client, message.message_id, delivery.id,
                           period, score, talk=delivery.talk_ticket_id is not None)
    except q.QualityError as error:
        after_commit(callback.answer(
            texts.client_plain(client.language, "quality_error", code=error.code, **error.context),
            show_alert=True,
        ))
        return
    after_commit(callback.answer("✓ " + texts.label(client.language, "rating")[score]))


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


def router() -> Router:
    router = Router(name=__name__)
    router.callback_query.filter(private_chat)
    router.callback_query.register(quality_answer, QualityAnswer.filter())
    return router
