"""Buttons no other router took: forged data, or outdated. Included last."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery

from bot.messaging.after_commit import AfterCommit
from bot.messaging.texts import Texts


async def unknown_button(
    callback: CallbackQuery, texts: Texts, after_commit: AfterCommit
) -> None:
    language = texts.language_for(callback.from_user.language_code)
    after_commit(callback.answer(texts.client_plain(language, "error", code="button_invalid"),
                                 show_alert=True))


def router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(unknown_button)
    return router
