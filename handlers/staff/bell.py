""""Take" on a staff alert of a bad rating or a bad quarterly answer (bot/services/bell.py).

Only staff may press it (`is_staff`, re-checked on the press); the data is checked against
the database by the service."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery

from bot.messaging.after_commit import AfterCommit
from bot.messaging.callbacks import BellTake
from bot.messaging.texts import Texts
from bot.services.bell import Bell, BellError
from handlers._common import STAFF
from handlers._parse import staff_actor


async def take_followup(
    callback: CallbackQuery, callback_data: BellTake, bell: Bell, is_staff: bool, texts: Texts,
    after_commit: AfterCommit,
) -> None:
    if not is_staff:
        language = texts.language_for(callback.from_user.language_code)
        after_commit(callback.answer(texts.client_plain(language, "error", code="staff_only"),
                                     show_alert=True))
        return
    try:
        await bell.take(callback_data.kind, callback_data.ref, staff_actor(callback.from_user))
    except BellError as error:
        after_commit(callback.answer(
            texts.staff_plain("error", code=error.code, **error.context), show_alert=True))
        return
    after_commit(callback.answer())


def router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(take_followup, BellTake.filter(), flags=STAFF)
    return router
