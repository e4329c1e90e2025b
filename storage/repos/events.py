"""The audit trail of incidents: who changed what, when, from which value to which."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.enums import ActorKind, EventKind
from storage.models import TicketEvent


class TicketEvents:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event: TicketEvent) -> None:
        self.session.add(event)

    async def of_ticket(self, ticket_id: int) -> Sequence[TicketEvent]:
        """An incident's events in the order they happened."""
        result = await self.session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket_id)
            .order_by(TicketEvent.at, TicketEvent.id)
        )
        return result.all()

    async def status_trails(self, status: str, before: datetime) -> dict[int, list[TicketEvent]]:
        """The status changes of every incident that was put in `status` before then, by
        incident (the trail the waits are read from: bot.domain.sla.waited)."""
        tickets = (select(TicketEvent.ticket_id)
                   .where(TicketEvent.kind == EventKind.STATUS, TicketEvent.new_value == status,
                          TicketEvent.at < before))
        rows = await self.session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id.in_(tickets),
                   TicketEvent.kind.in_((EventKind.STATUS, EventKind.REOPENED)))
            .order_by(TicketEvent.ticket_id, TicketEvent.at, TicketEvent.id)
        )
        trails: dict[int, list[TicketEvent]] = {}
        for event in rows:
            trails.setdefault(event.ticket_id, []).append(event)
        return trails

    async def happened(self, ticket_id: int, kind: EventKind) -> bool:
        found = await self.session.scalar(
            select(TicketEvent.id)
            .where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == kind).limit(1)
        )
        return found is not None

    async def staff_assignments(self, ticket_id: int) -> Sequence[TicketEvent]:
        """Every time a staff member took the incident (or was given it), in order."""
        result = await self.session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id,
                                      TicketEvent.kind == EventKind.ASSIGNED,
                                      TicketEvent.actor_kind == ActorKind.STAFF)
            .order_by(TicketEvent.id)
        )
        return result.all()

    async def severities_set_by_staff(self) -> dict[int, str]:
        """Per incident whose severity staff changed by hand: the level they chose last."""
        events = await self.session.execute(
            select(TicketEvent.ticket_id, TicketEvent.new_value)
            .where(TicketEvent.kind == EventKind.SEVERITY,
                   TicketEvent.actor_kind == ActorKind.STAFF)
            .order_by(TicketEvent.at, TicketEvent.id)
        )
        return {ticket_id: level for ticket_id, level in events if level}
