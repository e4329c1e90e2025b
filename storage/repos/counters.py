"""Named counters (`counters`): gapless sequences and small pieces of durable state."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Counter
from storage.repos._sql import insert_ignoring_duplicates


async def next_number(session: AsyncSession, name: str) -> int:
    """The next value of a gapless counter; the row stays locked until the transaction ends."""
    bump = (update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
            .returning(Counter.value))
    value = await session.scalar(bump)
    if value is None:
        await session.execute(insert_ignoring_duplicates(session, Counter).values(name=name))
        value = await session.scalar(bump)
    assert value is not None
    return value


async def read_counter(session: AsyncSession, name: str) -> int:
    """A counter's current value (0 before its first use)."""
    value = await session.scalar(select(Counter.value).where(Counter.name == name))
    return value or 0


async def write_counter(session: AsyncSession, name: str, value: int) -> None:
    counter = await session.get(Counter, name)
    if counter is None:
        session.add(Counter(name=name, value=value))
    else:
        counter.value = value
    await session.flush()
