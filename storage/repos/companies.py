"""Companies (client organisations), their employees and their maintenance records."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.enums import OPEN_STATUSES
from storage.models import Client, Company, MaintenanceDone, MaintenanceReminder, Ticket


class Companies:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self) -> Sequence[Company]:
        """Every company, by name."""
        return (await self.session.scalars(select(Company).order_by(Company.name))).all()

    async def by_id(self, company_id: int) -> Company | None:
        return await self.session.get(Company, company_id)

    async def by_name(self, name: str) -> Company | None:
        return await self.session.scalar(
            select(Company).where(func.lower(Company.name) == name.lower()))

    async def by_invite(self, code: str) -> Company | None:
        return await self.session.scalar(select(Company).where(Company.invite_code == code))

    async def names(self, company_ids: Collection[int]) -> dict[int, str]:
        rows = await self.session.execute(
            select(Company.id, Company.name).where(Company.id.in_(list(company_ids))))
        return dict(rows.all())

    async def add(self, company: Company) -> Company:
        self.session.add(company)
        await self.session.flush()
        return company

    async def rename(self, company: Company, name: str) -> None:
        """The company and the copy of its name on each employee (clients.company)."""
        company.name = name
        await self.session.execute(update(Client).where(Client.company_id == company.id)
                                   .values(company=name))

    async def managers_of(self, ticket_ids: Collection[int]) -> dict[int, str]:
        """The account manager of each incident's company (those that have one)."""
        rows = await self.session.execute(
            select(Ticket.id, Company.account_manager)
            .join(Client, Client.id == Ticket.client_id)
            .join(Company, Company.id == Client.company_id)
            .where(Ticket.id.in_(list(ticket_ids)), Company.account_manager.is_not(None)))
        return {ticket_id: manager for ticket_id, manager in rows if manager}

    # -- employees ------------------------------------------------------------------------

    async def employee_ids(self, company_id: int) -> set[int]:
        return set(await self.session.scalars(
            select(Client.id).where(Client.company_id == company_id)))

    async def employee_count(self, company_id: int) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(Client).where(Client.company_id == company_id))
        return count or 0

    async def employee_counts(self) -> dict[int, int]:
        """Per company with employees: how many."""
        rows = await self.session.execute(
            select(Client.company_id, func.count()).where(Client.company_id.is_not(None))
            .group_by(Client.company_id))
        return {company_id: count for company_id, count in rows
                if company_id is not None}

    async def open_ticket_counts(self) -> dict[int, int]:
        """Per company with open incidents: how many."""
        rows = await self.session.execute(
            select(Client.company_id, func.count()).join(Ticket, Ticket.client_id == Client.id)
            .where(Client.company_id.is_not(None), Ticket.status.in_(OPEN_STATUSES))
            .group_by(Client.company_id))
        return {company_id: count for company_id, count in rows
                if company_id is not None}

    # -- maintenance ----------------------------------------------------------------------

    async def add_done(self, done: MaintenanceDone) -> MaintenanceDone:
        self.session.add(done)
        await self.session.flush()
        return done

    async def done_at(
        self, company_id: int, work: str, since: datetime, until: datetime
    ) -> list[tuple[datetime, str | None]]:
        """When a planned work of the company was recorded as done in [since, until), and
        by whom."""
        rows = await self.session.execute(
            select(MaintenanceDone.done_at, MaintenanceDone.actor_name).where(
                MaintenanceDone.company_id == company_id, MaintenanceDone.work == work,
                MaintenanceDone.done_at >= since, MaintenanceDone.done_at < until,
            ).order_by(MaintenanceDone.done_at)
        )
        return [(at, name) for at, name in rows]

    async def reminded(self, company_id: int, work: str, due: date, kind: str) -> bool:
        """Whether the reminder of this work's due date (and kind) was posted."""
        found = await self.session.scalar(select(MaintenanceReminder.id).where(
            MaintenanceReminder.company_id == company_id, MaintenanceReminder.work == work,
            MaintenanceReminder.due_on == due.isoformat(), MaintenanceReminder.kind == kind))
        return found is not None

    async def add_reminder(self, reminder: MaintenanceReminder) -> None:
        self.session.add(reminder)
        await self.session.flush()

    async def last_done(self, company_id: int, work: str, before: datetime) -> datetime | None:
        """When a planned work was last recorded as done before `before`."""
        return await self.session.scalar(
            select(func.max(MaintenanceDone.done_at)).where(
                MaintenanceDone.company_id == company_id, MaintenanceDone.work == work,
                MaintenanceDone.done_at < before))
