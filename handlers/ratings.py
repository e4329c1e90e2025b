"""Rating buttons after closure, and the comment a rating question asks for.

The rules live in bot/ratings.py. This router sits before `buttons` (whose catch-all
refuses unknown data) and before the client's commands and messages, because while a
follow-up question is open the client's next plain text is the comment, not an incident.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.types import CallbackQuery, Message

from bot.config import Config
from bot.messaging.callbacks import RateAction
from bot.messaging.notify import Notifier
from bot.messaging.texts import Texts
from bot.services.desk import Desk
from bot.services.ratings import NO_COMMENT, RatingDesk, RatingError
from handlers._filters import private_chat
from handlers._parse import person_of, reply_to_id

router = Router(name=__name__)
router.message.filter(private_chat)


def _ratings(config: Config, desk: Desk, notifier: Notifier) -> RatingDesk:
    return RatingDesk(config.ratings, desk.session, notifier, desk.clock)


@router.callback_query(RateAction.filter())
async def rate(
    callback: CallbackQuery, callback_data: RateAction, desk: Desk, notifier: Notifier,
    texts: Texts, config: Config, is_staff: bool,
) -> None:
    message = callback.message
    chat_id = message.chat.id if message else callback.from_user.id
    client, _ = await desk.client_for(person_of(callback.from_user, chat_id))
    ratings = _ratings(config, desk, notifier)
    try:
        if callback_data.score == NO_COMMENT:
            await ratings.skip_question(client, callback_data.number)
            await callback.answer()
            return
        result = await ratings.rate(
            client, callback_data.number, callback_data.score, is_staff=is_staff,
            chat_id=chat_id, message_id=message.message_id if message else None,
        )
    except RatingError as error:
        await callback.answer(
            texts.client(client.language, "rating_error", code=error.code, **error.context),
            show_alert=True,
        )
        return
    label = texts.label(client.language, "rating")[callback_data.score]
    await callback.answer("✓ " + label if result.outcome != "same" else None)


def _plain_text(message: Message) -> bool:
    return message.text is not None and not message.text.startswith("/")


@router.message()
async def comment_or_pass(
    message: Message, desk: Desk, notifier: Notifier, config: Config
) -> None:
    """While a rating question is open, the next plain text (not a command, not a reply
    about another incident) is the comment; anything else closes the question and goes on
    to the usual handlers. Without an open question this handler steps aside at once."""
    if message.from_user is None:
        raise SkipHandler
    client = await desk.clients.by_user(message.from_user.id)
    if client is None:
        raise SkipHandler
    ratings = _ratings(config, desk, notifier)
    rating = await ratings.open_question(client)
    if rating is None:
        raise SkipHandler
    if message.text is not None and message.text.startswith("/"):
        raise SkipHandler  # /my, /status...: the question stays open
    reply_to = reply_to_id(message)
    about = (await desk.tickets.by_message(client.chat_id, reply_to)
             if reply_to is not None else None)
    if not _plain_text(message) or (about is not None and about.id != rating.ticket_id):
        await ratings.close_question(rating)
        raise SkipHandler
    client, _ = await desk.client_for(person_of(message.from_user, message.chat.id))
    await ratings.take_comment(rating, client, message.text or "")
