"""The middlewares: a database transaction per update with the update's services in it, and
the client record for handlers that take one.

`UnitOfWork` (outer, on updates) opens the transaction and the update's scope
(bot/app/container.py); handlers receive what the scope offers (`desk`, `notifier`,
`faq`, `ratings`, `groups`, `session`, `now`, `texts`, `after_commit`), `is_staff`,
`staff_in_group` (a staff member writing in a client group) and
`staff_chat_id` (the staff group's id now: the supergroup it became, once it did; Telegram's
service message about that upgrade is handled here, before any handler). The Bot API
calls a handler queues in `after_commit` (a button's answer) are made after the commit,
never under the write lock (bot/messaging/after_commit.py). The update is marked handled
in the same transaction, so a crash either keeps everything the update did or nothing of
it.

Whether the sender is staff is asked for the requests that need to know only: those of
the handlers carrying the staff flag (handlers/_common.py): their commands and their
buttons' prefixes, collected from the routers when the dispatcher is built, so a new staff
command is never refused for want of a second list. It is decided before the transaction
opens: it may ask Telegram, and a write lock must not wait on a network call.

`ClientOfPrivateChat` (inner, on messages and buttons) hands a handler that takes
`client` the client record of the person writing in a private chat (or pressing a button
there), created on first contact.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from aiogram import BaseMiddleware, Router
from aiogram.dispatcher.event.handler import HandlerObject
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.filters.command import Command
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject, Update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.clock import Clock
from bot.messaging.after_commit import AfterCommit
from bot.services.desk import Desk, Person
from bot.telegram.intake import OutOfTurn
from bot.telegram.staff import StaffDirectory
from storage.db import Database
from storage.repos.inbox import Inbox

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

CLIENT = "client"  # the handler argument ClientOfPrivateChat fills in


class UpdateScope(Protocol):
    """What the unit of work needs of an update's scope (bot/app/container.py)."""

    def handler_data(self) -> dict[str, Any]: ...

    @property
    def after_commit(self) -> AfterCommit: ...

    @property
    def wrote(self) -> bool: ...


ScopeOpener = Callable[[AsyncSession], Awaitable[UpdateScope]]


@dataclass(frozen=True)
class StaffRequests:
    """The commands and the callback-data prefixes of the handlers carrying a flag."""

    commands: frozenset[str]
    buttons: tuple[str, ...]

    @classmethod
    def of(cls, routers: Iterable[Router], flag: str) -> StaffRequests:
        commands: set[str] = set()
        buttons: set[str] = set()
        for router in routers:
            for sub in router.chain_tail:
                for handler in _flagged(sub.message.handlers, flag):
                    for command in handler.flags.get("commands", []):  # aiogram puts them there
                        assert isinstance(command, Command)
                        commands.update(name.lower() for name in command.commands
                                        if isinstance(name, str))
                for handler in _flagged(sub.callback_query.handlers, flag):
                    buttons.update(item.callback.callback_data.__prefix__ + ":"
                                   for item in handler.filters or []
                                   if isinstance(item.callback, CallbackQueryFilter))
        return cls(frozenset(commands), tuple(sorted(buttons)))

    def sender(self, update: Update) -> tuple[int, int] | None:
        """(chat, user) of a staff request; None for everything else."""
        message, callback = update.message, update.callback_query
        if message and message.text and message.from_user:
            # A whitespace-only text ("\u3000") has no first word: it is no command.
            word = next(iter(message.text.split(maxsplit=1)), "")
            if word.startswith("/") and word[1:].split("@")[0].lower() in self.commands:
                return message.chat.id, message.from_user.id
        if callback and callback.data and callback.data.startswith(self.buttons):
            chat_id = callback.message.chat.id if callback.message else callback.from_user.id
            return chat_id, callback.from_user.id
        return None


def _flagged(handlers: list[HandlerObject], flag: str) -> list[HandlerObject]:
    return [handler for handler in handlers if handler.flags.get(flag)]


def _migration(update: Update) -> tuple[int, int] | None:
    """(old id, new id) of Telegram's service message about a group upgraded to a
    supergroup: "migrated to" in the old group, "migrated from" in the new one."""
    message = update.message
    if message is None:
        return None
    if message.migrate_to_chat_id is not None:
        return message.chat.id, message.migrate_to_chat_id
    if message.migrate_from_chat_id is not None:
        return message.migrate_from_chat_id, message.chat.id
    return None


def _group_of(update: Update) -> int | None:
    """The group a message, a button press or a change of the bot's membership comes from
    (None: a private chat, or none)."""
    message = update.message or (update.callback_query.message
                                 if update.callback_query else None)
    chat = (message.chat if message is not None
            else update.my_chat_member.chat if update.my_chat_member else None)
    return chat.id if chat is not None and chat.type in ("group", "supergroup") else None


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
    def __init__(
        self, db: Database, clock: Clock, open_scope: ScopeOpener, staff: StaffDirectory,
        requests: StaffRequests, wake_delivery: Callable[[], None],
        prepare: Callable[[Update], Awaitable[None]] | None = None,
    ) -> None:
        """`prepare`: work done before the transaction opens (the sentence model's vector of
        a client's message: CPU in a worker thread, never while the write lock is held)."""
        self.db = db
        self.clock = clock
        self.open_scope = open_scope
        self.staff = staff
        self.requests = requests
        self.wake_delivery = wake_delivery
        self.prepare = prepare

    async def __call__(
        self, handler: Handler, event: TelegramObject, data: dict[str, Any]
    ) -> Any:
        assert isinstance(event, Update)
        change = event.chat_member
        if change is not None:  # staff rights end with the membership, not the cache
            self.staff.member_changed(change.chat.id, change.new_chat_member.user.id)
        group = _group_of(event)
        if group is not None and group != self.staff.staff_chat_id:
            # A group the bot does not know: perhaps the staff group as the supergroup it
            # became, which another worker saw happen.
            await self.staff.follow_moves(self.db)
        # Only members can write or press buttons in the staff group itself.
        sender = self.requests.sender(event)
        # A command counts where it is typed (staff group, admins' private chats); a button
        # counts by who presses it (a member's rating is recorded but not counted).
        if sender is None:
            is_staff = False
        elif event.message is not None:
            is_staff = await self.staff.acts_as_staff(*sender)
        elif sender[0] == self.staff.staff_chat_id:
            is_staff = await self.staff.acts_as_staff(*sender)  # a public group: admins only
        else:
            is_staff = await self.staff.is_staff(sender[1])
        staff_now = await self._in_staff_dialog(event, data)
        staff_in_group = await self._staff_in_group(event)
        if self.prepare is not None:
            await self.prepare(event)
        async with self.db.transaction() as session:
            inbox = Inbox(session)
            # Several workers (PostgreSQL): one chat at a time, in update order (intake.py).
            chat = _chat_of(event) if data.get("chat_lock") else None
            if chat is not None:
                await inbox.lock_chat(chat)
                if data.get("in_order") and await inbox.earlier_pending(chat, event.update_id):
                    raise OutOfTurn(event.update_id)
            # Under the row lock (BEGIN IMMEDIATE on SQLite): an update another worker, or an
            # earlier run, already finished is not handled twice. Marked handled now, in the
            # transaction of its handling (one statement, not a look now and a mark at the
            # end): its handled_at is when the handling began.
            if not await inbox.claim(event.update_id, self.clock()):
                return None
            migration = _migration(event)
            if migration is not None:  # before the handlers: they see the new id
                await self.staff.chat_migrated(session, *migration)
            scope = await self.open_scope(session)
            data.update(scope.handler_data(), is_staff=is_staff, staff_now=staff_now,
                        staff_in_group=staff_in_group, staff_group_public=self.staff.public,
                        staff_chat_id=self.staff.staff_chat_id)
            result = await handler(event, data)
        if scope.wrote:
            self.wake_delivery()
        await scope.after_commit.flush()  # the button's answer: a round trip, not under the lock
        return result

    async def _staff_in_group(self, event: Update) -> bool:
        """`staff_in_group`: whether who writes in a group other than the staff group (a
        client group, bot/services/groups.py), or added the bot to one, is a member of the
        staff group: staff there, not a client. Cached a while, asked before the
        transaction (a getChatMember round trip at worst)."""
        source = event.message or event.my_chat_member
        if (source is None or source.from_user is None or source.from_user.is_bot
                or source.chat.type not in ("group", "supergroup")
                or source.chat.id == self.staff.staff_chat_id):
            return False
        return await self.staff.is_staff(source.from_user.id)

    async def _in_staff_dialog(self, event: Update, data: dict[str, Any]) -> bool:
        """`staff_now`, for the filters that ask about a message that is no command (the
        steps of a staff dialog: handlers/_filters.py, still_staff): whether its sender acts
        as staff now. Asked only in a dialog (the FSM's state is set), and here, before the
        transaction: in a private chat it is a getChatMember round trip."""
        message = event.message
        if message is None or message.from_user is None or not data.get("raw_state"):
            return False
        return await self.staff.acts_as_staff(message.chat.id, message.from_user.id)


class ClientOfPrivateChat(BaseMiddleware):
    async def __call__(
        self, handler: Handler, event: TelegramObject, data: dict[str, Any]
    ) -> Any:
        wanted: HandlerObject = data["handler"]
        if CLIENT in wanted.params:
            person = _private_sender(event)
            if person is not None:
                desk: Desk = data["desk"]
                data[CLIENT] = await desk.client_for(person)
        return await handler(event, data)


def _private_sender(event: TelegramObject) -> Person | None:
    """The person behind a message in a private chat, or a button pressed there (a button
    whose message Telegram no longer shows counts as pressed in the presser's chat)."""
    chat: Chat | None
    if isinstance(event, Message):
        chat, user = event.chat, event.from_user
    elif isinstance(event, CallbackQuery):
        chat, user = (event.message.chat if event.message else None), event.from_user
    else:
        return None
    if user is None or (chat is not None and chat.type != "private"):
        return None
    return Person(
        user_id=user.id, chat_id=chat.id if chat is not None else user.id,
        first_name=user.first_name, last_name=user.last_name, username=user.username,
        language_code=user.language_code,
    )
