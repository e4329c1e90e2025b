"""Chats that changed their id: a group upgraded to a supergroup (Telegram gives it a new
id). Each move is a `counters` row "chat-moved:<old id>" holding the new id, so the staff
group is found again after a restart whatever the config still says."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage.repos.counters import read_counter, write_counter

MOVED_PREFIX = "chat-moved:"
MAX_MOVES = 5  # a chain of upgrades; a loop (never seen) ends here


async def record_move(session: AsyncSession, old_chat_id: int, new_chat_id: int) -> None:
    await write_counter(session, f"{MOVED_PREFIX}{old_chat_id}", new_chat_id)


async def current_id(session: AsyncSession, chat_id: int) -> int:
    """The id the chat has now, following its recorded moves."""
    for _ in range(MAX_MOVES):
        moved = await read_counter(session, f"{MOVED_PREFIX}{chat_id}")
        if not moved or moved == chat_id:
            break
        chat_id = moved
    return chat_id
