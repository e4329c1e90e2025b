"""Ratings after closure: the request, the client's choice, the follow-up question, reminders,
and the distribution of ratings that reports show.

The rules, in one place:
- A closed incident gets one rating request (with the closure, or `request_delay_minutes`
  later), unless it was closed in a way listed in `[ratings] exclude` (an FAQ answer,
  a merge: `tickets.resolution_kind`). Re-closing after a reopen asks again; the incident
  still has one rating (the `ratings` row), which the client may change.
- Only the incident's own client rates it, only on a message of ours about that incident,
  only while it is closed. The first rating may be changed for `change_hours`; pressing the
  same score again changes nothing. The rating message is edited to show the choice.
- A staff member's rating (a member of the staff group, or an admin) is recorded with
  `counted` False: it is left out of every statistic and raises no alert.
- After a bad rating (Плохо/Ужас) the client is asked what went wrong and the staff group
  is alerted (incident, assignee); after a good one (Отлично/Хорошо), once, "anything to
  add?". Either question is optional and never repeated.
- **The comment rule**: while a question is open (asked less than `comment_minutes` ago
  and not answered), the client's next plain-text message that is not a command and not a
  reply to a message about another incident is the comment, not a new incident. Any other
  message (media, a reply about another incident) closes the question and is handled as
  usual; commands leave it open. The acknowledgement says how to send it as a message
  instead, so nothing is lost either way.
- An unanswered request gets one reminder after `remind_after_hours`; never a second.
- A rating is attributed to every staff member the incident was assigned to.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import RatingsConfig
from bot.domain.clock import Clock
from bot.domain.enums import TicketStatus
from bot.domain.errors import UserError
from bot.messaging.callbacks import ClientAction, RateAction
from bot.messaging.notify import Notifier
from bot.messaging.outbox import PRIORITY_NOTICE, PRIORITY_REPLY, PRIORITY_STAFF, Keyboard, button
from storage.db import Database
from storage.models import Client, OutboxMessage, Rating, RatingAgent, Ticket, TicketEvent
from storage.repos import TicketLog, Tickets

SCORES = (5, 4, 3, 2, 1)  # Отлично, Хорошо, Нормально, Плохо, Ужас
BAD = frozenset({1, 2})
GOOD = frozenset({4, 5})
NO_COMMENT = 0


class RatingError(UserError):
    """A rating press that cannot be taken (template: `rating_error`)."""


@dataclass(frozen=True)
class RateResult:
    outcome: str  # rated | changed | same | staff
    rating: Rating


class RatingDesk:
    """Ratings in one transaction (the caller's session and notifier)."""

    def __init__(
        self, config: RatingsConfig, session: AsyncSession, notifier: Notifier, clock: Clock
    ) -> None:
        self.config = config
        self.session = session
        self.notify = notifier
        self.clock = clock

    # -- the request ---------------------------------------------------------------------

    async def on_closed(self, ticket: Ticket, client: Client) -> None:
        """An incident was closed (called by Desk in the closing transaction)."""
        if not self.config.enabled or (ticket.resolution_kind or "") in self.config.exclude:
            return
        now = self.clock()
        rating = await self.of_ticket(ticket.id)
        if rating is None:
            rating = Rating(ticket_id=ticket.id, client_id=client.id, counted=True,
                            question_open=False, state="scheduled")
            self.session.add(rating)
        rating.reminded_at = None
        rating.question_open = False
        await self._attribute(rating, ticket)
        if self.config.request_delay_minutes > 0:
            rating.state = "scheduled"
            rating.send_at = now + timedelta(minutes=self.config.request_delay_minutes)
            await self.session.flush()
            return
        await self._send_request(rating, ticket, client)

    async def _attribute(self, rating: Rating, ticket: Ticket) -> None:
        """Every staff member the incident was assigned to (the audit trail and the current
        assignee): the per-agent statistics count the rating for each of them."""
        await self.session.flush()
        agents: dict[int, str] = {}
        events = await self.session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                      TicketEvent.kind == "assigned",
                                      TicketEvent.actor_kind == "staff")
            .order_by(TicketEvent.id)
        )
        for event in events:
            if event.actor_id is not None:
                agents[event.actor_id] = event.new_value or event.actor_name or ""
        if ticket.assignee_id is not None:
            agents[ticket.assignee_id] = ticket.assignee_name or ""
        await self.session.execute(delete(RatingAgent).where(RatingAgent.rating_id == rating.id))
        for agent_id, name in agents.items():
            self.session.add(RatingAgent(rating_id=rating.id, agent_id=agent_id,
                                         agent_name=name[:200]))

    def keyboard(self, language: str, number: int, chosen: int | None = None) -> Keyboard:
        label = self.notify.texts.label
        names = label(language, "rating")

        def one(score: int) -> dict[str, str]:
            mark = "✓ " if score == chosen else ""
            return button(mark + names[score], RateAction(number=number, score=score).pack())

        return [
            [one(5), one(4), one(3)],
            [one(2), one(1)],
            [button(label(language, "not_fixed"),
                    ClientAction(action="notfixed", number=number).pack())],
        ]

    async def _send_request(
        self, rating: Rating, ticket: Ticket, client: Client, *, reminder: bool = False
    ) -> None:
        now = self.clock()
        html = self.notify.texts.client(client.language, "rating_request", ticket=ticket,
                                        reminder=reminder)
        row = await self.notify.out.send_text(
            client.chat_id, html, priority=PRIORITY_NOTICE, ticket_id=ticket.id,
            keyboard=self.keyboard(client.language, ticket.number),
        )
        rating.state = "requested"
        rating.send_at = None
        if reminder:
            rating.reminded_at, rating.reminder_outbox_id = now, row.id
        else:
            rating.requested_at, rating.request_outbox_id = now, row.id
            rating.reminder_outbox_id = None

    # -- the client's choice ----------------------------------------------------------------

    async def of_ticket(self, ticket_id: int) -> Rating | None:
        return await self.session.scalar(select(Rating).where(Rating.ticket_id == ticket_id))

    async def rate(
        self, client: Client, number: int, score: int, *, is_staff: bool, chat_id: int,
        message_id: int | None,
    ) -> RateResult:
        """A rating button was pressed. Everything in the button is checked: the score, the
        incident (the client's own, closed, asked to rate), the message it was pressed on."""
        if score not in SCORES:
            raise RatingError("invalid")
        ticket = await Tickets(self.session).by_number(number)
        rating = await self.of_ticket(ticket.id) if ticket is not None else None
        if (ticket is None or rating is None or ticket.client_id != client.id
                or rating.state != "requested" or chat_id != client.chat_id
                or message_id is None):
            raise RatingError("invalid")
        # The button must sit on the request (or its reminder) for this very closure.
        if not await self._is_request(rating, client.chat_id, message_id):
            raise RatingError("invalid")
        if ticket.status != TicketStatus.CLOSED:
            raise RatingError("reopened", number=number)
        now = self.clock()
        if rating.score == score:
            return RateResult("same", rating)
        first = rating.score is None
        if not first:
            assert rating.rated_at is not None
            if now > rating.rated_at + timedelta(hours=self.config.change_hours):
                raise RatingError("locked", number=number)
        old = rating.score
        rating.score = score
        rating.counted = not is_staff
        rating.changed_at = now
        if first:
            rating.rated_at = now
        await TicketLog(self.session).add_event(TicketEvent(
            ticket_id=ticket.id, at=now, actor_kind="staff" if is_staff else "client",
            actor_id=client.user_id, actor_name=client.display_name, kind="rating",
            old_value=str(old) if old is not None else None, new_value=str(score),
            note=None if rating.counted else "not counted: rated by a staff member",
        ))
        await self._show_choice(rating, ticket, client, message_id)
        if not rating.counted:
            return RateResult("staff", rating)
        await self.notify.staff_line(ticket, "rating_line", score=score, old=old)
        if score in BAD and (old is None or old not in BAD):
            await self._alert(ticket, client, rating, comment=None)
        await self._follow_up(rating, ticket, client, score)
        return RateResult("rated" if first else "changed", rating)

    async def _is_request(self, rating: Rating, chat_id: int, message_id: int) -> bool:
        for row_id in (rating.request_outbox_id, rating.reminder_outbox_id):
            row = await self.session.get(OutboxMessage, row_id) if row_id else None
            if row is not None and row.chat_id == chat_id and row.telegram_message_id == message_id:
                return True
        return False

    async def _show_choice(
        self, rating: Rating, ticket: Ticket, client: Client, message_id: int
    ) -> None:
        assert rating.rated_at is not None and rating.score is not None
        until = rating.rated_at + timedelta(hours=self.config.change_hours)
        html = self.notify.texts.client(client.language, "rating_chosen", ticket=ticket,
                                        score=rating.score, until=until,
                                        changeable=self.config.change_hours > 0)
        keyboard = (self.keyboard(client.language, ticket.number, rating.score)
                    if self.config.change_hours > 0 else [])
        await self.notify.out.call(client.chat_id, "editMessageText", {
            "message_id": message_id, "text": html, "parse_mode": "HTML",
            "reply_markup": {"inline_keyboard": keyboard},
        }, priority=PRIORITY_REPLY)

    async def _follow_up(self, rating: Rating, ticket: Ticket, client: Client, score: int) -> None:
        """Ask "what went wrong?" after the first bad rating, "anything to add?" once after a
        good first rating; never both, never twice."""
        if score in BAD and rating.question != "bad":
            question = "bad"
        elif score in GOOD and rating.question is None and self.config.ask_good_comment:
            question = "good"
        else:
            return
        rating.question = question
        rating.question_at = self.clock()
        rating.question_open = True
        keyboard = [[button(self.notify.texts.label(client.language, "no_comment"),
                            RateAction(number=ticket.number, score=NO_COMMENT).pack())]]
        await self.notify.to_client(ticket, client, f"rating_ask_{question}",
                                    priority=PRIORITY_REPLY, keyboard=keyboard,
                                    minutes=int(self.config.comment_minutes))

    async def _alert(
        self, ticket: Ticket, client: Client, rating: Rating, comment: str | None
    ) -> None:
        """A bad rating rings a bell in the staff group itself (not only in the topic)."""
        agents = list(await self.session.scalars(
            select(RatingAgent.agent_name).where(RatingAgent.rating_id == rating.id)
        ))
        await self.notify.out.send_text(
            self.notify.staff_chat_id,
            self.notify.texts.staff("rating_alert", ticket=ticket, client=client,
                                    score=rating.score, agents=agents, comment=comment),
            priority=PRIORITY_STAFF, ticket_id=ticket.id,
        )

    async def skip_question(self, client: Client, number: int) -> None:
        ticket = await Tickets(self.session).by_number(number)
        rating = await self.of_ticket(ticket.id) if ticket is not None else None
        if rating is None or rating.client_id != client.id or not rating.question_open:
            raise RatingError("no_question")
        rating.question_open = False
        await self.notify.to_client(ticket, client, "rating_thanks", priority=PRIORITY_REPLY)

    # -- the comment ----------------------------------------------------------------------

    async def open_question(self, client: Client) -> Rating | None:
        """The follow-up question the client's next message answers, if one is open."""
        since = self.clock() - timedelta(minutes=self.config.comment_minutes)
        return await self.session.scalar(
            select(Rating).where(Rating.client_id == client.id, Rating.question_open.is_(True),
                                 Rating.question_at >= since)
            .order_by(Rating.question_at.desc()).limit(1)
        )

    async def close_question(self, rating: Rating) -> None:
        rating.question_open = False

    async def take_comment(self, rating: Rating, client: Client, text: str) -> Ticket:
        ticket = await Tickets(self.session).by_id(rating.ticket_id)
        now = self.clock()
        rating.question_open = False
        rating.comment = (rating.comment + "\n\n" + text) if rating.comment else text
        rating.comment_at = now
        await TicketLog(self.session).add_event(TicketEvent(
            ticket_id=ticket.id, at=now, actor_kind="client", actor_id=client.user_id,
            actor_name=client.display_name, kind="rating_comment", old_value=None,
            new_value=str(rating.score), note=text,
        ))
        if rating.question == "bad":
            await self._alert(ticket, client, rating, comment=text)
        else:
            await self.notify.staff_line(ticket, "rating_comment_line", client=client, text=text)
        await self.notify.to_client(ticket, client, "rating_comment_taken",
                                    priority=PRIORITY_REPLY)
        return ticket

    # -- scheduled: delayed requests and the one reminder -----------------------------------

    async def send_due(self, limit: int = 200) -> int:
        """Delayed requests whose time has come (an incident reopened meanwhile is skipped)."""
        now = self.clock()
        rows = (await self.session.execute(
            select(Rating, Ticket, Client)
            .join(Ticket, Ticket.id == Rating.ticket_id).join(Client, Client.id == Rating.client_id)
            .where(Rating.state == "scheduled", Rating.send_at <= now)
            .order_by(Rating.send_at).limit(limit)
        )).all()
        for rating, ticket, client in rows:
            if ticket.status != TicketStatus.CLOSED:
                rating.state, rating.send_at = "cancelled", None
                continue
            await self._send_request(rating, ticket, client)
        return len(rows)

    async def remind(self, limit: int = 200) -> int:
        """One reminder for requests unanswered after `remind_after_hours`, never a second."""
        if self.config.remind_after_hours <= 0:
            return 0
        now = self.clock()
        before = now - timedelta(hours=self.config.remind_after_hours)
        rows = (await self.session.execute(
            select(Rating, Ticket, Client)
            .join(Ticket, Ticket.id == Rating.ticket_id).join(Client, Client.id == Rating.client_id)
            .where(Rating.state == "requested", Rating.score.is_(None),
                   Rating.reminded_at.is_(None), Rating.requested_at <= before,
                   Ticket.status == TicketStatus.CLOSED)
            .order_by(Rating.requested_at).limit(limit)
        )).all()
        for rating, ticket, client in rows:
            await self._send_request(rating, ticket, client, reminder=True)
        return len(rows)


# The ratings of one transaction at a moment (bot/app/container.py builds them).
RatingDeskFactory = Callable[[AsyncSession, datetime], RatingDesk]


async def rating_sweep(
    db: Database, ratings_for: RatingDeskFactory, config: RatingsConfig, now: datetime
) -> int:
    """The scheduled job: delayed requests that are due, then the one reminder; returns how
    many messages it wrote. Idempotent: each row's state changes with the message it sends."""
    if not config.enabled:
        return 0
    async with db.transaction() as session:
        desk = ratings_for(session, now)
        return await desk.send_due() + await desk.remind()


# -- the distribution (rendered by reports) ---------------------------------------------------


@dataclass
class Distribution:
    """Counts of each score and their share (percent, one decimal); counted ratings only."""

    counts: dict[int, int] = field(default_factory=lambda: dict.fromkeys(SCORES, 0))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def percent(self) -> dict[int, float]:
        total = self.total
        return {s: round(100 * n / total, 1) if total else 0.0 for s, n in self.counts.items()}

    @property
    def average(self) -> float | None:
        total = self.total
        return round(sum(s * n for s, n in self.counts.items()) / total, 2) if total else None

    def add(self, score: int) -> None:
        self.counts[score] = self.counts.get(score, 0) + 1


def _distribute(rows: Iterable[tuple[Any, int]]) -> dict[Any, Distribution]:
    result: dict[Any, Distribution] = defaultdict(Distribution)
    for key, score in rows:
        result[key].add(score)
    return dict(result)


async def rating_distribution(
    session: AsyncSession, start: datetime, end: datetime, by: str | None = None
) -> dict[Any, Distribution]:
    """Ratings given in [start, end) (by the first rating's time), counted ones only.

    `by`: None (one key, None: the whole desk), "agent" (key: (agent_id, agent_name); a
    rating counts for each agent it is attributed to), "client" (key: client id).
    """
    where = (Rating.counted.is_(True), Rating.score.is_not(None),
             Rating.rated_at >= start, Rating.rated_at < end)
    if by is None:
        scores = await session.scalars(select(Rating.score).where(*where))
        return _distribute((None, s) for s in scores if s is not None)
    if by == "client":
        rows = await session.execute(select(Rating.client_id, Rating.score).where(*where))
        return _distribute((c, s) for c, s in rows.all() if s is not None)
    if by == "agent":
        rows2 = await session.execute(
            select(RatingAgent.agent_id, RatingAgent.agent_name, Rating.score)
            .join(Rating, Rating.id == RatingAgent.rating_id).where(*where)
        )
        return _distribute(((a, n), s) for a, n, s in rows2.all() if s is not None)
    raise ValueError(f"unknown grouping {by!r}")


async def distribution_by_period(
    session: AsyncSession, periods: Sequence[tuple[str, datetime, datetime]],
    by: str | None = None,
) -> dict[str, dict[Any, Distribution]]:
    """The distribution for each (label, start, end) period, e.g. months or quarters."""
    return {label: await rating_distribution(session, start, end, by)
            for label, start, end in periods}
