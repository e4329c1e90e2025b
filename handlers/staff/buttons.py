"""The buttons of an incident's card in the staff group: take, close, reopen, severity,
unlink from its problem.

Their data is untrusted: only staff may press them (`is_staff`), and each press goes
through `Desk`, which checks it against the database.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery

from bot.domain.enums import Severity
from bot.messaging.after_commit import AfterCommit
from bot.messaging.callbacks import TicketAction
from bot.messaging.texts import Texts
from bot.services.desk import Desk, DeskError
from bot.services.problems import ProblemDesk
from handlers._common import STAFF, alert_error, refuse_non_staff
from handlers._parse import staff_actor

SEVERITIES = frozenset(s.value for s in Severity)


async def staff_button(
    callback: CallbackQuery, callback_data: TicketAction, desk: Desk, problems: ProblemDesk,
    is_staff: bool, texts: Texts, after_commit: AfterCommit,
) -> None:
    if not is_staff:
        refuse_non_staff(callback, texts, after_commit)
        return
    actor = staff_actor(callback.from_user)
    try:
        if callback_data.action == "take":
            await desk.take(callback_data.number, actor)
        elif callback_data.action == "close":
            await problems.close(callback_data.number, actor, None)
        elif callback_data.action == "unlink":
            await problems.unlink(callback_data.number, actor)
        elif callback_data.action == "reopen":
            await desk.reopen(callback_data.number, actor)
        elif callback_data.action.startswith("sev_") and callback_data.action[4:] in SEVERITIES:
            await desk.set_severity(callback_data.number, actor,
                                    Severity(callback_data.action[4:]))
        else:
            raise DeskError("button_invalid")
    except DeskError as error:
        alert_error(callback, texts, after_commit, error)
        return
    after_commit(callback.answer())


def router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(staff_button, TicketAction.filter(), flags=STAFF)
    return router
