"""The staff group during a surge: one digest a minute instead of a card per incident.

Incidents registered while more than `[desk] surge_threshold` arrived within the
window get no topic or card at once (see Desk.open_ticket); a group takes 20
messages a minute, and thousands of cards would take hours. This job lists the
ones not announced yet. The cut-off of the last digest is kept in `counters`
(microseconds since the epoch, exact), so a restart neither repeats nor skips one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.messaging.notify import Notifier
from storage.db import Database
from storage.repos.clients import Clients
from storage.repos.counters import read_counter, write_counter
from storage.repos.problems import Problems
from storage.repos.tickets import Tickets

DIGEST_COUNTER = "surge_digest_at"
DIGEST_LINES = 40
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


async def post_surge_digest(
    db: Database, notifier_for: Callable[[AsyncSession], Notifier], now: datetime
) -> int:
    """Announce the incidents without a card opened since the last digest; returns how many."""
    async with db.transaction() as session:
        after = EPOCH + timedelta(microseconds=await read_counter(session, DIGEST_COUNTER))
        # Counted and dated in the database: thousands of incidents in a minute are the
        # point of a surge, and loading them all here would hold up their registration.
        first, count, latest = await Tickets(session).without_card(after, DIGEST_LINES)
        if latest is None:  # none waiting
            return 0
        clients = Clients(session)
        rows = [(ticket, await clients.by_id(ticket.client_id)) for ticket in first]
        problem = await Problems(session).latest_open()
        await notifier_for(session).surge_digest(
            rows, more=count - len(rows), problem=problem.number if problem else None)
        await write_counter(session, DIGEST_COUNTER, (latest - EPOCH) // MICROSECOND)
    return count

