"""Who is staff: configured admins and members of the staff group (asked of Telegram, cached)."""

from __future__ import annotations

import time

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

CACHE_SECONDS = 300
MEMBER_STATUSES = {"creator", "administrator", "member"}


class StaffDirectory:
    def __init__(self, bot: Bot, staff_chat_id: int, admins: list[int]) -> None:
        self.bot = bot
        self.staff_chat_id = staff_chat_id
        self.admins = set(admins)
        self._cache: dict[int, tuple[bool, float]] = {}

    async def is_staff(self, user_id: int) -> bool:
        if user_id in self.admins:
            return True
        cached = self._cache.get(user_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            member = await self.bot.get_chat_member(self.staff_chat_id, user_id)
        except TelegramAPIError:
            return False  # unknown to the group, or Telegram unreachable: not staff, not cached
        is_member = member.status in MEMBER_STATUSES or getattr(member, "is_member", False)
        self._cache[user_id] = (is_member, time.monotonic() + CACHE_SECONDS)
        return is_member
