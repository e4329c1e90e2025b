"""The quarterly quality check: campaigns, one delivery per client, and what the check
sums up (the client's incidents of the quarter)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.enums import CampaignState, DeliveryState, OutboxStatus
from storage.models import Client, OutboxMessage, QualityCampaign, QualityDelivery, Ticket


class PendingDelivery(NamedTuple):
    delivery: QualityDelivery
    client: Client
    campaign: QualityCampaign


class DeliveryOutcome(NamedTuple):
    """A delivery with what became of its outbox row and of its client."""

    state: DeliveryState
    score: int | None
    talk_ticket_id: int | None
    unused_at: datetime | None
    sent: OutboxStatus | None  # None: no outbox row (yet)
    last_error: str | None
    client_unreachable_since: datetime | None


class ClientQuarter(NamedTuple):
    period: str
    delivery: QualityDelivery


class CompanyCheck(NamedTuple):
    company_id: int
    period: str
    score: int | None
    unused_at: datetime | None


class Quality:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- campaigns ----------------------------------------------------------------------

    async def campaign(self, campaign_id: int) -> QualityCampaign | None:
        return await self.session.get(QualityCampaign, campaign_id)

    async def campaign_of(self, period: str) -> QualityCampaign | None:
        return await self.session.scalar(
            select(QualityCampaign).where(QualityCampaign.period == period))

    async def latest_campaign(self) -> QualityCampaign | None:
        return await self.session.scalar(
            select(QualityCampaign).order_by(QualityCampaign.id.desc()).limit(1))

    async def campaigns_started(self, start: datetime, end: datetime) -> Sequence[QualityCampaign]:
        """The campaigns created in [start, end), in order."""
        return (await self.session.scalars(
            select(QualityCampaign)
            .where(QualityCampaign.created_at >= start, QualityCampaign.created_at < end)
            .order_by(QualityCampaign.id)
        )).all()

    async def running_campaigns(self) -> Sequence[QualityCampaign]:
        return (await self.session.scalars(
            select(QualityCampaign).where(QualityCampaign.status == CampaignState.RUNNING)
        )).all()

    async def add_campaign(
        self, campaign: QualityCampaign, client_ids: Collection[int]
    ) -> QualityCampaign:
        """A new campaign with a pending delivery for each of these clients."""
        self.session.add(campaign)
        await self.session.flush()
        if client_ids:
            await self.session.execute(insert(QualityDelivery), [
                {"campaign_id": campaign.id, "client_id": client_id,
                 "status": DeliveryState.PENDING, "incidents": 0, "closed": 0}
                for client_id in client_ids
            ])
        return campaign

    # -- deliveries ---------------------------------------------------------------------

    async def delivery(self, delivery_id: int) -> QualityDelivery | None:
        return await self.session.get(QualityDelivery, delivery_id)

    async def pending(self, limit: int) -> list[PendingDelivery]:
        """The next deliveries of running campaigns to write to the outbox, in order."""
        rows = await self.session.execute(
            select(QualityDelivery, Client, QualityCampaign)
            .join(Client, Client.id == QualityDelivery.client_id)
            .join(QualityCampaign, QualityCampaign.id == QualityDelivery.campaign_id)
            .where(QualityCampaign.status == CampaignState.RUNNING,
                   QualityDelivery.status == DeliveryState.PENDING)
            .order_by(QualityDelivery.id).limit(limit)
        )
        return [PendingDelivery(*row) for row in rows]

    async def open_question(self, client_id: int, asked_since: datetime
                            ) -> QualityDelivery | None:
        """The client's "what is wrong?" after a bad answer, still open, asked since then."""
        return await self.session.scalar(
            select(QualityDelivery).where(QualityDelivery.client_id == client_id,
                                          QualityDelivery.question_open.is_(True),
                                          QualityDelivery.question_at >= asked_since)
            .order_by(QualityDelivery.question_at.desc()).limit(1)
        )

    async def bad_followups(self, start: datetime, end: datetime) -> tuple[int, int]:
        """Bad answers (Плохо/Ужас) given in [start, end): (all, taken)."""
        row = (await self.session.execute(
            select(func.count(), func.count(QualityDelivery.followup_by))
            .where(QualityDelivery.score.in_((1, 2)), QualityDelivery.answered_at >= start,
                   QualityDelivery.answered_at < end)
        )).one()
        return int(row[0]), int(row[1])

    async def answers(self, campaign_id: int) -> Sequence[tuple[QualityDelivery, Client]]:
        """Who answered what in a campaign (answered ones only), by client name."""
        rows = await self.session.execute(
            select(QualityDelivery, Client).join(Client, Client.id == QualityDelivery.client_id)
            .where(QualityDelivery.campaign_id == campaign_id,
                   or_(QualityDelivery.score.is_not(None), QualityDelivery.unused_at.is_not(None),
                       QualityDelivery.talk_ticket_id.is_not(None)))
            .order_by(Client.company, Client.first_name, Client.id)
        )
        return [(d, c) for d, c in rows]

    async def pending_count(self, campaign_id: int) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(QualityDelivery)
            .where(QualityDelivery.campaign_id == campaign_id,
                   QualityDelivery.status == DeliveryState.PENDING)
        )
        return count or 0

    async def outcomes(self, campaign_id: int) -> list[DeliveryOutcome]:
        rows = await self.session.execute(
            select(QualityDelivery.status, QualityDelivery.score, QualityDelivery.talk_ticket_id,
                   QualityDelivery.unused_at, OutboxMessage.status, OutboxMessage.last_error,
                   Client.unreachable_since)
            .join(Client, Client.id == QualityDelivery.client_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == QualityDelivery.outbox_id)
            .where(QualityDelivery.campaign_id == campaign_id)
        )
        return [DeliveryOutcome(*row) for row in rows]

    async def quarters_of(self, client_id: int) -> list[ClientQuarter]:
        """A client's checks, oldest quarter first."""
        rows = await self.session.execute(
            select(QualityCampaign.period, QualityDelivery)
            .join(QualityCampaign, QualityCampaign.id == QualityDelivery.campaign_id)
            .where(QualityDelivery.client_id == client_id).order_by(QualityCampaign.period_start)
        )
        return [ClientQuarter(*row) for row in rows]

    async def company_checks(self, company_id: int | None = None) -> list[CompanyCheck]:
        """Every check sent to a company's employee (of one company, or of all), oldest
        period first: the company, the period's label and the answer."""
        query = (
            select(Client.company_id, QualityCampaign.period, QualityDelivery.score,
                   QualityDelivery.unused_at)
            .join(Client, Client.id == QualityDelivery.client_id)
            .join(QualityCampaign, QualityCampaign.id == QualityDelivery.campaign_id)
            .where(Client.company_id.is_not(None))
        )
        if company_id is not None:
            query = query.where(Client.company_id == company_id)
        rows = await self.session.execute(
            query.order_by(QualityCampaign.period_start, QualityDelivery.id))
        return [CompanyCheck(company, period, score, unused)
                for company, period, score, unused in rows if company is not None]

    # -- who is asked and what they are told ----------------------------------------------

    async def audience(self, *, with_incident_since: datetime | None,
                       except_users: Collection[int]) -> list[int]:
        """Client ids: those with an incident opened since then (None: every client),
        leaving out these Telegram users."""
        if with_incident_since is None:
            query = select(Client.id)
        else:
            query = (select(Client.id).join(Ticket, Ticket.client_id == Client.id)
                     .where(Ticket.opened_at >= with_incident_since).distinct())
        if except_users:
            query = query.where(Client.user_id.not_in(list(except_users)))
        return list(await self.session.scalars(query.order_by(Client.id)))

    async def tickets_of(
        self, client_ids: Collection[int], start: datetime, end: datetime
    ) -> Sequence[Ticket]:
        """The clients' incidents opened or resolved between start and end (both included:
        the caller draws the exact lines)."""
        return (await self.session.scalars(
            select(Ticket).where(
                Ticket.client_id.in_(list(client_ids)),
                or_(Ticket.opened_at.between(start, end), Ticket.resolved_at.between(start, end)),
            )
        )).all()
