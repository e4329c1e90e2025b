"""One client cannot stall the desk (issue 14): the staff side of flood control.

Over their limit (a token bucket per client, Desk.admit), a client's messages still join
their incident, but count in `tickets.held_messages` instead of each becoming a staff-group
line. This job, once a minute, posts one combined line per incident ("Анна added 37
messages to #12") and subtracts what it announced, in SQL, so a message held meanwhile by
another worker is announced next time. Staff see who floods in /health and can mute a
client (/mute, /unmute: handlers/staff/flood.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.messaging.notify import Notifier
from storage.db import Database
from storage.models import Client
from storage.repos.clients import Clients
from storage.repos.tickets import Tickets

FLUSH_SECONDS = 60
# A client over their limit who has not written for this long is no longer shown flooding.
QUIET_AFTER = timedelta(minutes=5)
_DURATION = re.compile(r"^(\d{1,4})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


async def announce_held(
    db: Database, notifier_for: Callable[[AsyncSession], Notifier], now: datetime
) -> int:
    """One staff line per incident with held messages; returns how many lines."""
    async with db.transaction() as session:
        tickets, clients = Tickets(session), Clients(session)
        notifier = notifier_for(session)
        held = await tickets.with_held()
        for ticket in held:
            count = ticket.held_messages
            await notifier.staff_line(ticket, "held_line", client=await clients.by_id(
                ticket.client_id), count=count)
            await tickets.announced_held(ticket.id, count)
    return len(held)


def duration(word: str | None) -> timedelta | None:
    """"30m", "1h", "2d" (None when it is none of these; no word: an hour)."""
    if word is None:
        return timedelta(hours=1)
    match = _DURATION.match(word.lower())
    if match is None:
        return None
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class FloodDesk:
    """Staff's view of and hand on flooding clients, in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._clients = Clients(session)
        self._tickets = Tickets(session)

    async def find(self, word: str) -> Client | None:
        """A client by @username, user id or #number of one of their incidents."""
        if word.startswith("#") and word[1:].isdigit():
            ticket = await self._tickets.by_number(int(word[1:]))
            return await self._clients.by_id(ticket.client_id) if ticket else None
        if word.lstrip("-").isdigit():
            return await self._clients.by_user(int(word))
        return await self._clients.by_username(word.lstrip("@"))

    async def flooding(self, now: datetime) -> list[tuple[Client, int]]:
        """Clients over their limit or muted, each with their messages not announced yet."""
        clients: Sequence[Client] = await self._clients.flooding(now, now - QUIET_AFTER)
        held: dict[int, int] = {}
        for ticket in await self._tickets.with_held():
            held[ticket.client_id] = held.get(ticket.client_id, 0) + ticket.held_messages
        return [(client, held.get(client.id, 0)) for client in clients]

    @staticmethod
    def mute(client: Client, until: datetime) -> None:
        client.muted_until = until

    @staticmethod
    def unmute(client: Client) -> None:
        client.muted_until = None
        client.flood_told = False
        client.flood_tokens = None  # a full bucket
