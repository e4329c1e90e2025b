"""Rating buttons after closure, and the comment a rating question asks for.

The rules live in bot/services/ratings.py. This router sits before the client's buttons
(the last of which refuses unknown data) and before the client's commands and messages,
because while a follow-up question is open the client's next plain text is the comment,
not an incident.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.types import CallbackQuery, Message

from bot.messaging.after_commit import AfterCommit
from bot.messaging.callbacks import RateAction
from bot.messaging.texts import Texts
from bot.services.desk import Desk
from bot.services.ratings import NO_COMMENT, RatingDesk, RatingError
from bot.services.records import Client
from handlers._common import STAFF
from handlers._filters import private_chat
from handlers._parse import callback_chat, reply_to_id


async def rate(
    callback: CallbackQuery, callback_data: RateAction, client: Client, ratings: RatingDesk,
    texts: Texts, is_staff: bool, after_commit: AfterCommit,
) -> None:
    """A staff member's rating is recorded but not counted: hence the staff flag."""
    message = callback.message
    try:
        if callback_data.score == NO_COMMENT:
            await ratings.skip_question(client, callback_data.number)
            after_commit(callback.answer())
            return
        result = await ratings.rate(
            client, callback_data.number, callback_data.score, is_staff=is_staff,
            chat_id=callback_chat(callback), message_id=message.message_id if message else None,
        )
    except RatingError as error:
        after_commit(callback.answer(
            texts.client_plain(client.language, "rating_error", code=error.code, **error.context),
            show_alert=True,
        ))
        return
    label = texts.label(client.language, "rating")[callback_data.score]
    after_commit(callback.answer("✓ " + label if result.outcome != "same" else None))


def _plain_text(message: Message) -> bool:
    return message.text is not None and not message.text.startswith("/")


async def comment_or_pass(
    message: Message, client: Client, desk: Desk, ratings: RatingDesk
) -> None:
    """While a rating question is open, the next plain text (not a command, not a reply
    about another incident) is the comment; anything else closes the question and goes on
    to the usual handlers. Without an open question this handler steps aside at once."""
    rating = await ratings.open_question(client)
    if rating is None:
        raise SkipHandler
    if message.text is not None and message.text.startswith("/"):
        raise SkipHandler  # /my, /status...: the question stays open
    about = await desk.replied_ticket(client, reply_to_id(message))
    if not _plain_text(message) or (about is not None and about.id != rating.ticket_id):
        await ratings.close_question(rating)
        raise SkipHandler
    await ratings.take_comment(rating, client, message.text or "")


def router() -> Router:
    router = Router(name=__name__)
    router.message.filter(private_chat)
    router.callback_query.filter(private_chat)
    router.callback_query.register(rate, RateAction.filter(), flags=STAFF)
    router.message.register(comment_or_pass)
    return router
