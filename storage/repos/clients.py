"""Clients: the people who write to the bot."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Client


class Clients:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_user(self, user_id: int) -> Client | None:
        # Several parts of one update ask for the same client (a router's check, then the
        # handler): the session remembers the answer (the object is in its identity map).
        known = self._known()
        if user_id not in known:
            known[user_id] = await self.session.scalar(
                select(Client).where(Client.user_id == user_id))
        return known[user_id]

    async def by_id(self, client_id: int) -> Client:
        client = await self.session.get(Client, client_id)
        assert client is not None
        return client

    async def get(self, client_id: int) -> Client | None:
        return await self.session.get(Client, client_id)

    async def by_chat(self, chat_id: int) -> Client | None:
        return await self.session.scalar(select(Client).where(Client.chat_id == chat_id))

    async def by_username(self, username: str) -> Client | None:
        return await self.session.scalar(
            select(Client).where(func.lower(Client.username) == username.lower()).limit(1))

    async def by_users(self, user_ids: Collection[int]) -> Sequence[Client]:
        return (await self.session.scalars(
            select(Client).where(Client.user_id.in_(list(user_ids))))).all()

    async def flooding(self, now: datetime, recent: datetime) -> Sequence[Client]:
        """Clients over their limit who wrote since `recent`, or muted now (/health)."""
        over = and_(Client.flood_told.is_(True), Client.flood_at >= recent)
        return (await self.session.scalars(
            select(Client).where(or_(over, Client.muted_until > now))
            .order_by(Client.id).limit(20))).all()

    async def add(self, client: Client) -> Client:
        self.session.add(client)
        await self.session.flush()
        self._known()[client.user_id] = client
        return client

    def _known(self) -> dict[int, Client | None]:
        """Clients looked up by user id in this session (its transaction)."""
        known: dict[int, Client | None] = self.session.info.setdefault("client_by_user", {})
        return known
