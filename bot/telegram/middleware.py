"""The one outer middleware: a database transaction per update, and the services in it.

Handlers receive `desk` (the incident service), `notifier`, `session`,
`is_staff` and `faq` (the FAQ; None only when Services has none). The update
is marked handled in the same transaction, so a crash
either keeps everything the update did or nothing of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from bot.config import Config
from bot.domain.clock import Clock
from bot.domain.sla import SlaPolicy
from bot.messaging.callbacks import KbAction, RateAction, TicketAction
from bot.messaging.notify import Notifier
from bot.messaging.outbox import OutboxWriter
from bot.messaging.texts import Texts
from bot.services.desk import Classifier, Desk
from bot.services.faq import FaqService
from bot.services.ratings import RatingDesk
from bot.telegram.intake import OutOfTurn
from bot.telegram.staff import StaffDirectory
from storage.db import Database
from storage.repos.inbox import Inbox
from storage.repos.outbox import Outbox

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

# Commands whose sender must be staff; asking Telegram costs a call, so only for these.
STAFF_COMMANDS = frozenset({"take", "status", "close", "reopen", "sev", "tickets", "kb"})
# Callback data prefixes of staff-only buttons.
STAFF_BUTTONS = tuple(prefix + ":" for prefix in (TicketAction.__prefix__, KbAction.__prefix__))
# Buttons anyone may press whose presser must still be known as staff or not: a staff
# member's rating is recorded but not counted.
STAFF_CHECKED_BUTTONS = (RateAction.__prefix__ + ":",)


@dataclass
class Services:
    """Long-lived dependencies, shared by every update."""

    config: Config
    db: Database
    texts: Texts
    clock: Clock
    classify: Classifier
    staff: StaffDirectory
    wake_delivery: Callable[[], None]
    forum: bool = False
    sla: SlaPolicy | None = None
    faq: FaqService | None = None


def _staff_request(update: Update) -> tuple[int, int] | None:
    """(chat, user) of a staff command or a staff button; None for everything else."""
    message, callback = update.message, update.callback_query
    if message and message.text and message.from_user:
        word = message.text.split(maxsplit=1)[0]
        if word.startswith("/") and word[1:].split("@")[0].lower() in STAFF_COMMANDS:
            return message.chat.id, message.from_user.id
    if callback and callback.data and callback.data.startswith(
            STAFF_BUTTONS + STAFF_CHECKED_BUTTONS):
        chat_id = callback.message.chat.id if callback.message else callback.from_user.id
        return chat_id, callback.from_user.id
    return None


def _chat_of(update: Update) -> int | None:
    """The chat an update belongs to, as bot.telegram.intake.chat_of records it in the inbox."""
    for message in (update.message, update.edited_message, update.my_chat_member,
                    update.chat_member):
        if message is not None:
            return message.chat.id
    callback = update.callback_query
    if callback is not None:
        return callback.message.chat.id if callback.message else callback.from_user.id
    return None


class UnitOfWork(BaseMiddleware):
    def __init__(self, services: Services) -> None:
        self.services = services

    async def __call__(
        self, handler: Handler, event: TelegramObject, data: dict[str, Any]
    ) -> Any:
        assert isinstance(event, Update)
        s = self.services
        staff_chat = s.config.telegram.staff_chat_id
        # Decided before the transaction: it may ask Telegram, and a write lock must not wait on it.
        # Only members can write or press buttons in the staff group itself.
        request = _staff_request(event)
        is_staff = request is not None and (
            request[0] == staff_chat or await s.staff.is_staff(request[1])
        )
        async with s.db.transaction() as session:
            # Several workers (PostgreSQL): one chat at a time, in update order (bot/intake.py).
            chat = _chat_of(event) if data.get("chat_lock") else None
            if chat is not None:
                await Inbox(session).lock_chat(chat)
                if data.get("in_order") and await Inbox(session).earlier_pending(
                        chat, event.update_id):
                    raise OutOfTurn(event.update_id)
            # Under the row lock (BEGIN IMMEDIATE on SQLite): an update another worker, or an
            # earlier run, already finished is not handled twice.
            if await Inbox(session).is_handled(event.update_id, lock=True):
                return None
            now = s.clock()
            out = OutboxWriter(Outbox(session), now)
            notifier = Notifier(
                out, s.texts, staff_chat_id=staff_chat, forum=s.forum,
                signature=s.config.desk.signature,
            )
            faq = await s.faq.bind(session, notifier) if s.faq is not None else None
            data.update(
                session=session,
                notifier=notifier,
                desk=Desk(session, notifier, s.clock, s.config.desk, s.classify,
                          s.texts.language_for, on_opened=faq.suggest if faq else None),
                faq=faq,
                is_staff=is_staff,
                texts=s.texts,
                now=now,
            )
            data["desk"].sla = s.sla
            data["desk"].on_closed = RatingDesk(s.config.ratings, session, notifier,
                                                s.clock).on_closed
            result = await handler(event, data)
            await Inbox(session).mark_handled(event.update_id, s.clock())
        if out.wrote:
            s.wake_delivery()
        return result
