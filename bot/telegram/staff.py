"""The staff group as Telegram knows it: who is staff (configured admins and members of the
group, asked of Telegram, cached), whether the group has topics, and its id — the
config's, or that of the supergroup it became (a basic group upgraded, e.g. when someone
turns Topics on), recorded in the database and used over the config from then on."""

from __future__ import annotations

import logging
import time

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramMigrateToChat
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database
from storage.repos.chats import current_id, record_move
from storage.repos.outbox import Outbox

log = logging.getLogger(__name__)

CACHE_SECONDS = 30  # `[security] staff_cache_seconds`
MEMBER_STATUSES = {"creator", "administrator", "member"}
ADMIN_STATUSES = {"creator", "administrator"}


class StaffDirectory:
    def __init__(
        self, bot: Bot, staff_chat_id: int, admins: list[int], *, forum: bool | None = None,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        """`forum`: whether the group has topics (`[telegram] staff_forum`); None: ask
        Telegram once, at start-up (`learn_forum`)."""
        self.bot = bot
        self.staff_chat_id = staff_chat_id
        self.admins = set(admins)
        self._forum = forum
        self._cache: dict[int, tuple[str, float]] = {}  # user -> (status, trusted until)
        self.cache_seconds = cache_seconds
        # A public group (an @username: anyone may join): membership means nothing there.
        self.public = False

    @property
    def forum(self) -> bool:
        """Whether every incident gets a topic of its own; False until known."""
        return bool(self._forum)

    async def follow_moves(self, db: Database) -> None:
        """The supergroup the staff group became, as the database recorded it: at start-up,
        and when a group the bot does not know writes (another worker may have seen the
        upgrade)."""
        async with db.reading() as session:
            now = await current_id(session, self.staff_chat_id)
        if now != self.staff_chat_id:
            self._moved(now)

    async def chat_migrated(self, session: AsyncSession, old_chat_id: int,
                            new_chat_id: int) -> int:
        """A group became a supergroup (Telegram's service message, or its answer to a
        send): what waits in the outbox for it goes to the new id, the move is recorded
        and, for the staff group, the desk goes on there. Returns the rows moved."""
        moved = await Outbox(session).move_chat(old_chat_id, new_chat_id)
        await record_move(session, old_chat_id, new_chat_id)
        if old_chat_id == self.staff_chat_id:
            self._moved(new_chat_id)
        return moved

    def _moved(self, new_chat_id: int) -> None:
        log.error("the staff group %s became supergroup %s: the desk works there now; set "
                  "[telegram] staff_chat_id = %s in config.toml", self.staff_chat_id,
                  new_chat_id, new_chat_id)
        self.staff_chat_id = new_chat_id
        self._cache.clear()  # membership is asked of the new group

    async def learn_forum(self, db: Database | None = None) -> None:
        """Ask Telegram what the staff group is, once, at start-up: whether it has topics
        (unless the configuration says: it changes only when staff convert the group, and
        a restart follows that) and whether it is public (`public`). A group upgraded to a
        supergroup meanwhile is followed there (recorded in `db`)."""
        try:
            try:
                chat = await self.bot.get_chat(self.staff_chat_id)
            except TelegramMigrateToChat as exc:
                if db is None:
                    raise
                async with db.transaction() as session:
                    await self.chat_migrated(session, self.staff_chat_id,
                                             exc.migrate_to_chat_id)
                chat = await self.bot.get_chat(self.staff_chat_id)
        except TelegramAPIError as exc:
            log.warning("cannot read the staff group (%s); assuming it has no topics", exc)
            if self._forum is None:
                self._forum = False
            return
        if self._forum is None:
            self._forum = bool(chat.is_forum)
        self.public = bool(chat.username)
        if self.public:
            log.error("the staff group %s is public (@%s): anyone can join it, so a button "
                      "pressed there gives no staff rights; make it private in its settings "
                      "and restart", self.staff_chat_id, chat.username)

    def member_changed(self, chat_id: int, user_id: int) -> None:
        """A chat_member update: someone joined, left or was removed from a group. For the
        staff group, what was cached about them is forgotten (the next action asks)."""
        if chat_id == self.staff_chat_id:
            self._cache.pop(user_id, None)

    async def acts_as_staff(self, chat_id: int, user_id: int) -> bool:
        """Whether someone writing (or pressing a button) in `chat_id` acts as staff: any
        member in the staff group itself; in their own private chat, the configured admins
        and the group's administrators; in any other chat (a third-party group), nobody."""
        if chat_id == self.staff_chat_id and not self.public:
            return True
        if chat_id == self.staff_chat_id:
            return user_id in self.admins
        if chat_id != user_id:
            return False
        # Asked afresh: a private chat is where a removed member would go on, and with
        # several workers the chat_member update may have reached another one.
        return user_id in self.admins or await self._status(user_id, fresh=True) in ADMIN_STATUSES

    async def is_staff(self, user_id: int) -> bool:
        """A configured admin or a member of the staff group."""
        return user_id in self.admins or await self._status(user_id) in MEMBER_STATUSES

    async def _status(self, user_id: int, *, fresh: bool = False) -> str:
        cached = self._cache.get(user_id)
        if not fresh and cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            member = await self.bot.get_chat_member(self.staff_chat_id, user_id)
        except TelegramAPIError:
            return "left"  # unknown to the group, or Telegram unreachable: not cached
        status = str(getattr(member.status, "value", member.status))
        if status == "restricted" and getattr(member, "is_member", False):
            status = "member"
        self._cache[user_id] = (status, time.monotonic() + self.cache_seconds)
        return status
