"""Client groups: a company's group chats linked to the desk (bot/services/groups.py)."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.enums import OutboxStatus
from storage.models import ClientGroup, OutboxMessage, Ticket


class ClientGroups:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_chat(self, chat_id: int) -> ClientGroup | None:
        return await self.session.scalar(select(ClientGroup).where(ClientGroup.chat_id == chat_id))

    async def add(self, group: ClientGroup) -> ClientGroup:
        self.session.add(group)
        await self.session.flush()
        return group

    async def move_chat(self, old_chat_id: int, new_chat_id: int) -> bool:
        """The group became a supergroup with a new id: its link and its open incidents'
        answers follow it; False when the old id was no client group."""
        moved = await self.session.execute(
            update(ClientGroup).where(ClientGroup.chat_id == old_chat_id)
            .values(chat_id=new_chat_id))
        await self.session.execute(
            update(Ticket).where(Ticket.group_chat_id == old_chat_id)
            .values(group_chat_id=new_chat_id, group_message_id=None))
        return bool(getattr(moved, "rowcount", 0))

    async def detach_tickets(self, chat_id: int) -> None:
        """The bot is out of the group: its incidents' answers go to each client's own chat."""
        await self.session.execute(
            update(Ticket).where(Ticket.group_chat_id == chat_id)
            .values(group_chat_id=None, group_message_id=None))

    async def cancel_pending(self, chat_id: int, method: str) -> int:
        """Pending outbox rows of this Bot API method to the chat, dropped (the leave the
        bot had scheduled for a group that is linked after all); returns how many."""
        result = await self.session.execute(
            delete(OutboxMessage).where(OutboxMessage.chat_id == chat_id,
                                        OutboxMessage.method == method,
                                        OutboxMessage.status == OutboxStatus.PENDING))
        return int(getattr(result, "rowcount", 0) or 0)
