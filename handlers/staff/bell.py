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
from handlers._common import STAFF, alert_error, refuse_non_staff
from handlers._parse import staff_actor


async def take_followup(
    callback: CallbackQuery, callback_data: BellTake, bell: Bell, is_staff: bool, texts: Texts,
    after_commit: AfterCommit,
) -> None:
    if not is_staff:
        refuse_non_staff(callback, texts, after_commit)
        return
    try:
        await bell.take(callback_data.kind, callback_data.ref, staff_actor(callback.from_user))
    except BellError as error:
        alert_error(callback, texts, after_commit, error)
        return
    after_commit(callback.answer())


def router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(take_followup, BellTake.filter(), flags=STAFF)
    return router
