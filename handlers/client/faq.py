"""The FAQ for clients: /faq in the private chat and the buttons of FAQ messages.

"This solved it" / "Not that" act only for the client the suggestion was made
to, only once (checked against `faq_suggestions`); the incident is resolved
through `Desk`, like every other ticket change.
"""

from __future__ import annotations

from contextlib import suppress

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.messaging.after_commit import AfterCommit
from bot.messaging.callbacks import FaqAction, FaqShow
from bot.messaging.notify import Notifier
from bot.messaging.outbox import PRIORITY_REPLY, Keyboard, button
from bot.messaging.texts import Texts
from bot.services.desk import Desk, DeskError
from bot.services.faq import ID_LIMIT, FaqError
from bot.services.faq_desk import FaqDesk
from bot.services.records import Article, Client
from handlers._filters import private_chat

FOUND_LIMIT = 4


def _buttons(articles: list[Article]) -> Keyboard:
    return [
        [button(a.question[:60], FaqShow(article=a.id).pack())]
        for a in articles if len(a.id) <= ID_LIMIT
    ]


async def faq_command(
    message: Message, command: CommandObject, client: Client, notifier: Notifier, faq: FaqDesk
) -> None:
    """/faq alone: the most useful articles; /faq words: the best answers to them."""
    query = (command.args or "").strip()
    if not query:
        top = await faq.top(client.language)
        await notifier.to_client(None, client, "faq_top", priority=PRIORITY_REPLY,
                                 articles=top, keyboard=_buttons(top) or None)
        return
    exact = faq.service.published(query.lower())
    found = [exact] if exact else await faq.best(query, client.language, FOUND_LIMIT)
    if not found:
        await notifier.to_client(None, client, "faq_nothing", priority=PRIORITY_REPLY,
                                 query=query)
        return
    more = found[1:]
    await faq.send_article(client, found[0], "faq_found", more=bool(more),
                           keyboard=_buttons(more) or None)


# The buttons act for the client of the private chat they are pressed in; `client` is None
# anywhere else (bot/telegram/middleware.py), and the press is refused.


async def show_article(
    callback: CallbackQuery, callback_data: FaqShow, faq: FaqDesk, texts: Texts,
    after_commit: AfterCommit, client: Client | None = None,
) -> None:
    article = faq.service.published(callback_data.article)
    if client is None or article is None:
        _refuse(callback, texts, _language(callback, texts, client), "button_invalid",
                after_commit)
        return
    await faq.send_article(client, article, "faq_article")
    after_commit(callback.answer())


async def suggestion_answer(
    callback: CallbackQuery, callback_data: FaqAction, desk: Desk, notifier: Notifier,
    faq: FaqDesk, texts: Texts, after_commit: AfterCommit, client: Client | None = None,
) -> None:
    if client is None or callback_data.action not in ("ok", "no"):
        _refuse(callback, texts, _language(callback, texts, client), "button_invalid",
                after_commit)
        return
    solved = callback_data.action == "ok"
    try:
        suggestion, ticket = await faq.client_answer(client, callback_data.suggestion, solved)
    except FaqError as error:
        _refuse(callback, texts, client.language, error.code, after_commit)
        return
    if solved:
        # Resolved or closed by staff meanwhile: the thanks still counts for the article.
        with suppress(DeskError):
            await desk.resolve_by_faq(ticket, client, suggestion.article_id)
        await faq.offer_phrasing(suggestion, ticket)
    else:
        await faq.not_that(suggestion, ticket, client)
    if callback.message is not None:  # the buttons are used up
        await notifier.out.call(
            client.chat_id, "editMessageReplyMarkup",
            {"message_id": callback.message.message_id, "reply_markup": {"inline_keyboard": []}},
            priority=PRIORITY_REPLY,
        )
    after_commit(callback.answer())


def _language(callback: CallbackQuery, texts: Texts, client: Client | None) -> str:
    return client.language if client else texts.language_for(callback.from_user.language_code)


def _refuse(
    callback: CallbackQuery, texts: Texts, language: str, code: str,
    after_commit: AfterCommit,
) -> None:
    after_commit(callback.answer(texts.client_plain(language, "faq_error", code=code),
                                 show_alert=True))


def router() -> Router:
    router = Router(name=__name__)
    router.message.filter(private_chat)
    router.message.register(faq_command, Command("faq"))
    router.callback_query.register(show_article, FaqShow.filter())
    router.callback_query.register(suggestion_answer, FaqAction.filter())
    return router
