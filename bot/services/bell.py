"""The bell: one bad rating, or one bad quarterly answer, is a bell to react to.

- A bad rating (Плохо/Ужас) and a bad answer to the quarterly check alert the staff group
  itself (not a topic): who, which company, their last incidents (the check) or the
  incident and its assignees (the rating), `[ratings] managers` mentioned. The alert
  carries "Take" (`Взять`): a staff member (re-checked on the press) owns the follow-up;
  the button's data (kind, row id) is checked against the row: it must have an alert.
- After a bad quarterly answer the client is asked "what is wrong?"; their next plain text
  within `[ratings] comment_minutes` goes to the alert's thread (a reply to it).
- `/stats` counts bad ratings and bad answers with and without a follow-up owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import RatingsConfig
from bot.domain.clock import Clock
from bot.domain.errors import UserError
from bot.domain.periods import Period
from bot.messaging.callbacks import BellTake
from bot.messaging.notify import Actor, Notifier
from bot.messaging.outbox import PRIORITY_REPLY, PRIORITY_STAFF, Keyboard, button
from bot.services.desk import mention
from storage.models import Client, QualityDelivery, Rating, Ticket
from storage.repos.companies import Companies
from storage.repos.quality import Quality
from storage.repos.ratings import Ratings
from storage.repos.tickets import Tickets

BAD = frozenset({1, 2})  # Плохо, Ужас
RATING = "r"
CHECK = "q"
LAST_INCIDENTS = 3


class BellError(UserError):
    """A "Take" press that cannot be taken (template: staff `bell_error`)."""


@dataclass(frozen=True)
class Followups:
    """Bad ratings and bad quarterly answers of a period, and how many have an owner."""

    ratings: int = 0
    ratings_taken: int = 0
    checks: int = 0
    checks_taken: int = 0


class Bell:
    """The bell in one transaction (the caller's session and notifier)."""

    def __init__(
        self, config: RatingsConfig, session: AsyncSession, notifier: Notifier, clock: Clock
    ) -> None:
        self._config = config
        self._session = session
        self._notify = notifier
        self._clock = clock

    async def _managers(self, client: Client) -> list[int | str]:
        """Whom an alert mentions: `[ratings] managers` and the client's company's account
        manager."""
        managers: list[int | str] = list(self._config.managers)
        company = (await Companies(self._session).by_id(client.company_id)
                   if client.company_id is not None else None)
        if company is not None and company.account_manager:
            manager = mention(company.account_manager)
            if manager not in managers:
                managers.append(manager)
        return managers

    def _keyboard(self, kind: str, ref: int) -> Keyboard:
        label = self._notify.texts.label(self._notify.texts.default_language, "take")
        return [[button(label, BellTake(kind=kind, ref=ref).pack())]]

    async def _ring(self, html: str, row: Rating | QualityDelivery, kind: str,
                    ticket_id: int | None = None) -> None:
        """The alert itself, or a reply to it when there is one (a comment)."""
        staff = self._notify.staff_chat_id
        if row.alert_outbox_id is not None:
            await self._notify.out.send_text(
                staff, html, priority=PRIORITY_STAFF, ticket_id=ticket_id,
                reply_to={"$message_of": row.alert_outbox_id})
            return
        sent = await self._notify.out.send_text(
            staff, html, priority=PRIORITY_STAFF, ticket_id=ticket_id,
            keyboard=self._keyboard(kind, row.id))
        row.alert_outbox_id = sent.id

    # -- a bad rating ---------------------------------------------------------------------

    async def rating_alert(
        self, ticket: Ticket, client: Client, rating: Rating, comment: str | None
    ) -> None:
        agents = await Ratings(self._session).agent_names(rating.id)
        html = self._notify.texts.staff(
            "rating_alert", ticket=ticket, client=client, score=rating.score, agents=agents,
            comment=comment, managers=await self._managers(client))
        await self._ring(html, rating, RATING, ticket.id)

    # -- a bad quarterly answer -------------------------------------------------------------

    async def check_answered(
        self, delivery: QualityDelivery, client: Client, period: Period, old: int | None
    ) -> None:
        """A quarterly answer was given or changed: a bad one (not bad before) rings."""
        if delivery.score not in BAD or old in BAD:
            return
        recent = await Tickets(self._session).for_client(client.id, LAST_INCIDENTS)
        html = self._notify.texts.staff(
            "check_alert", client=client, period=period, score=delivery.score,
            tickets=recent, delivery=delivery, managers=await self._managers(client))
        await self._ring(html, delivery, CHECK)
        delivery.question_at = self._clock()
        delivery.question_open = True
        await self._notify.to_client(None, client, "check_ask_bad", priority=PRIORITY_REPLY,
                                     period=period)

    async def open_check_question(self, client: Client) -> QualityDelivery | None:
        since = self._clock() - timedelta(minutes=self._config.comment_minutes)
        return await Quality(self._session).open_question(client.id, since)

    async def close_check_question(self, delivery: QualityDelivery) -> None:
        delivery.question_open = False

    async def check_comment(self, delivery: QualityDelivery, client: Client, text: str) -> None:
        """The client's answer to "what is wrong?": to the alert's thread, and thanks."""
        delivery.question_open = False
        delivery.comment = (delivery.comment + "\n\n" + text) if delivery.comment else text
        html = self._notify.texts.staff("check_comment", client=client, text=text,
                                        score=delivery.score)
        await self._ring(html, delivery, CHECK)
        await self._notify.to_client(None, client, "check_comment_taken",
                                     priority=PRIORITY_REPLY)

    # -- "Take" ------------------------------------------------------------------------------

    async def take(self, kind: str, ref: int, actor: Actor) -> None:
        """A staff member takes the follow-up of an alert (the caller checked they are staff).
        The data is untrusted: the row must exist and have rung."""
        row: Rating | QualityDelivery | None
        if kind == RATING:
            row = await Ratings(self._session).by_id(ref)
        elif kind == CHECK:
            row = await Quality(self._session).delivery(ref)
        else:
            row = None
        if row is None or row.alert_outbox_id is None:
            raise BellError("button_invalid")
        if row.followup_by is not None:
            raise BellError("followup_taken", name=row.followup_name or "")
        row.followup_by, row.followup_name = actor.user_id, actor.name[:200]
        row.followup_at = self._clock()
        await self._notify.out.send_text(
            self._notify.staff_chat_id,
            self._notify.texts.staff("followup_taken", name=actor.name),
            priority=PRIORITY_STAFF, reply_to={"$message_of": row.alert_outbox_id})



async def followups(session: AsyncSession, start: datetime, end: datetime) -> Followups:
    """Bad ratings and bad quarterly answers given in [start, end), and how many were taken
    (the figures /stats shows)."""
    ratings, ratings_taken = await Ratings(session).bad_followups(start, end)
    checks, checks_taken = await Quality(session).bad_followups(start, end)
    return Followups(ratings, ratings_taken, checks, checks_taken)
