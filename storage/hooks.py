"""Work that waits for a transaction to end well (e.g. an in-memory index follows the
database only once a change is committed)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run `action` once the session's transaction has committed (never on rollback)."""
    event.listen(session.sync_session, "after_commit", lambda _session: action(), once=True)
