"""Ratings after closure: the request, the client's choice, the follow-up question, reminders,
and the distribution of ratings that reports show.

The rules, in one place:
- A closed incident gets one rating request (with the closure, or `request_delay_minutes`
  later), unless it was closed in a way listed in `[ratings] exclude` (an FAQ answer,
  a merge: `tickets.resolution_kind`). Re-closing after a reopen asks again; the incident
  still has one rating (the `ratings` row), which the client may change.
- Only the incident's own client rates it, only on a message of ours about that incident,
  only while it is closed. An incident reported in a client group is asked there (a reply
  to the reporting message), and only its reporter's press counts there; the follow-up
  question is not asked in a group (the comment rule reads the private chat). The first
  rating may be changed for `change_hours`; pressing the same score again changes nothing.
  The rating message is edited to show the choice.
- A staff member's rating (a member of the staff group, or an admin) is recorded with
  `counted` False: it is left out of every statistic and raises no alert.
- After a bad rating (Плохо/Ужас) the client is asked what went wrong and the staff group
  is alerted (incident, assignee, `[ratings] managers`; bot/services/bell.py: the alert
  can be taken, the comment goes to its thread); after "Нормально", once,
  "anything to add?"; after a good one (Отлично/Хорошо) nothing. Either question is
  optional and never repeated. A comment that says the problem is back is answered with
  the reopen button ("Not fixed"), as on the request.
- **The comment rule**: while a question is open (asked less than `comment_minutes` ago
  and not answered), the client's next plain-text message that is not a command and not a
  reply to a message about another incident is the comment, not a new incident. Any other
  message (media, a reply about another incident) closes the question and is handled as
  usual; commands leave it open. The acknowledgement says how to send it as a message
  instead, so nothing is lost either way.
- An unanswered request gets one reminder after `remind_after_hours` (off by default); never
  a second.
- A rating is attributed to every staff member the incident was assigned to.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import RatingsConfig
from bot.domain.clock import Clock
from bot.domain.comeback import says_problem_is_back
from bot.domain.enums import ActorKind, EventKind, RatingState, TicketStatus
from bot.domain.errors import UserError
from bot.messaging.callbacks import ClientAction, RateAction
from bot.messaging.notify import Closure, Notifier, answers_to
from bot.messaging.outbox import PRIORITY_NOTICE, PRIORITY_REPLY, Keyboard, button
from bot.services.bell import Bell
from storage.db import Database
from storage.models import Client, Rating, Ticket, TicketEvent
from storage.repos.events import TicketEvents
from storage.repos.outbox import Outbox
from storage.repos.ratings import Ratings, ScoreCount
from storage.repos.tickets import Tickets

SCORES = (5, 4, 3, 2, 1)  # Отлично, Хорошо, Нормально, Плохо, Ужас
BAD = frozenset({1, 2})
FAIR = 3  # below "Хорошо", not bad: "anything to add?"
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
        self, config: RatingsConfig, session: AsyncSession, notifier: Notifier, clock: Clock,
        bell: Bell,
    ) -> None:
        """`bell`: the staff alert of a bad rating (and its comment, in the alert's thread)."""
        self.config = config
        self.session = session
        self.notify = notifier
        self.clock = clock
        self.bell = bell
        self.ratings = Ratings(session)

    # -- the request ---------------------------------------------------------------------

    async def on_closed(
        self, ticket: Ticket, client: Client, closure: Closure | None = None
    ) -> bool:
        """An incident was closed (called by Desk in the closing transaction). With a
        `closure` to tell, the request is sent now and tells it too (one message: the
        closure, the scores, "Not fixed"): True then; False when the client was not told."""
        if not self.config.enabled or (ticket.resolution_kind or "") in self.config.exclude:
            return False
        now = self.clock()
        rating = await self.of_ticket(ticket.id)
        if rating is None:
            rating = await self.ratings.add(Rating(
                ticket_id=ticket.id, client_id=client.id, counted=True, question_open=False,
                state=RatingState.SCHEDULED))
        rating.reminded_at = None
        rating.question_open = False
        await self._attribute(rating, ticket)
        if self.config.request_delay_minutes > 0:
            rating.state = RatingState.SCHEDULED
            rating.send_at = now + timedelta(minutes=self.config.request_delay_minutes)
            return False
        await self._send_request(rating, ticket, client, closure=closure)
        return closure is not None

    async def _attribute(self, rating: Rating, ticket: Ticket) -> None:
        """Every staff member the incident was assigned to (the audit trail and the current
        assignee): the per-agent statistics count the rating for each of them."""
        agents: dict[int, str] = {}
        for event in await TicketEvents(self.session).staff_assignments(ticket.id):
            if event.actor_id is not None:
                agents[event.actor_id] = event.new_value or event.actor_name or ""
        if ticket.assignee_id is not None:
            agents[ticket.assignee_id] = ticket.assignee_name or ""
        await self.ratings.set_agents(rating.id, {a: name[:200] for a, name in agents.items()})

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
        self, rating: Rating, ticket: Ticket, client: Client, *, reminder: bool = False,
        closure: Closure | None = None,
    ) -> None:
        now = self.clock()
        html = self.notify.texts.client(client.language, "rating_request", ticket=ticket,
                                        reminder=reminder, closure=closure)
        chat_id, in_group = answers_to(ticket, client)
        row = await self.notify.out.send_text(
            chat_id, html, priority=PRIORITY_NOTICE, ticket_id=ticket.id,
            keyboard=self.keyboard(client.language, ticket.number),
            reply_to=ticket.group_message_id if in_group else None,
        )
        rating.state = RatingState.REQUESTED
        rating.send_at = None
        if reminder:
            rating.reminded_at, rating.reminder_outbox_id = now, row.id
        else:
            rating.requested_at, rating.request_outbox_id = now, row.id
            rating.reminder_outbox_id = None

    # -- the client's choice ----------------------------------------------------------------

    async def of_ticket(self, ticket_id: int) -> Rating | None:
        return await self.ratings.of_ticket(ticket_id)

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
                or rating.state != RatingState.REQUESTED
                or chat_id != answers_to(ticket, client)[0] or message_id is None):
            raise RatingError("invalid")
        # The button must sit on the request (or its reminder) for this very closure.
        if not await self._is_request(rating, chat_id, message_id):
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
        await TicketEvents(self.session).add(TicketEvent(
            ticket_id=ticket.id, at=now,
            actor_kind=ActorKind.STAFF if is_staff else ActorKind.CLIENT, actor_id=client.user_id,
            actor_name=client.display_name, kind=EventKind.RATING,
            old_value=str(old) if old is not None else None, new_value=str(score),
            note=None if rating.counted else "not counted: rated by a staff member",
        ))
        await self._show_choice(rating, ticket, client, message_id)
        if not rating.counted:
            return RateResult("staff", rating)
        await self.notify.staff_line(ticket, "rating_line", score=score, old=old)
        if score in BAD and (old is None or old not in BAD):
            await self.bell.rating_alert(ticket, client, rating, comment=None)
        await self._follow_up(rating, ticket, client, score)
        return RateResult("rated" if first else "changed", rating)

    async def _is_request(self, rating: Rating, chat_id: int, message_id: int) -> bool:
        outbox = Outbox(self.session)
        for row_id in (rating.request_outbox_id, rating.reminder_outbox_id):
            row = await outbox.get(row_id) if row_id else None
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
        await self.notify.out.call(answers_to(ticket, client)[0], "editMessageText", {
            "message_id": message_id, "text": html, "parse_mode": "HTML",
            "reply_markup": {"inline_keyboard": keyboard},
        }, priority=PRIORITY_REPLY)

    async def _follow_up(self, rating: Rating, ticket: Ticket, client: Client, score: int) -> None:
        """Ask "what went wrong?" after the first bad rating, "anything to add?" once after a
        good first rating; never both, never twice."""
        if ticket.group_chat_id is not None:
            return  # the next plain text is the comment in a private chat only
        if score in BAD and rating.question != "bad":
            question = "bad"
        elif score == FAIR and rating.question is None and self.config.ask_fair_comment:
            question = "fair"
        else:
            return
        rating.question = question
        rating.question_at = self.clock()
        rating.question_open = True
        keyboard = [[button(self.notify.texts.label(client.language, "no_comment"),
                            RateAction(number=ticket.number, score=NO_COMMENT).pack())]]
        await self.notify.to_client(ticket, client, f"rating_ask_{question}",
                                    priority=PRIORITY_REPLY, keyboard=keyboard,
                                    minutes=int(self.config.comment_minutes),
                                    managers=bool(self.config.managers))

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
        return await self.ratings.open_question(client.id, since)

    async def close_question(self, rating: Rating) -> None:
        rating.question_open = False

    async def take_comment(self, rating: Rating, client: Client, text: str) -> Ticket:
        ticket = await Tickets(self.session).by_id(rating.ticket_id)
        now = self.clock()
        rating.question_open = False
        rating.comment = (rating.comment + "\n\n" + text) if rating.comment else text
        rating.comment_at = now
        await TicketEvents(self.session).add(TicketEvent(
            ticket_id=ticket.id, at=now, actor_kind=ActorKind.CLIENT, actor_id=client.user_id,
            actor_name=client.display_name, kind=EventKind.RATING_COMMENT, old_value=None,
            new_value=str(rating.score), note=text,
        ))
        if rating.question == "bad":
            await self.bell.rating_alert(ticket, client, rating, comment=text)
        else:
            await self.notify.staff_line(ticket, "rating_comment_line", client=client, text=text)
        # "It is back again": the one button that reopens, as "Not fixed" on the request.
        back = says_problem_is_back(text)
        keyboard = [[button(self.notify.texts.label(client.language, "not_fixed"),
                            ClientAction(action="notfixed", number=ticket.number).pack())]]
        await self.notify.to_client(ticket, client, "rating_comment_taken",
                                    priority=PRIORITY_REPLY, back=back,
                                    keyboard=keyboard if back else None)
        return ticket

    # -- scheduled: delayed requests and the one reminder -----------------------------------

    async def send_due(self, limit: int = 200) -> int:
        """Delayed requests whose time has come (an incident reopened meanwhile is skipped)."""
        rows = await self.ratings.requests_due(self.clock(), limit)
        for rating, ticket, client in rows:
            if ticket.status != TicketStatus.CLOSED:
                rating.state, rating.send_at = RatingState.CANCELLED, None
                continue
            await self._send_request(rating, ticket, client)
        return len(rows)

    async def remind(self, limit: int = 200) -> int:
        """One reminder for requests unanswered after `remind_after_hours`, never a second."""
        if self.config.remind_after_hours <= 0:
            return 0
        before = self.clock() - timedelta(hours=self.config.remind_after_hours)
        rows = await self.ratings.unanswered(before, limit)
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

    def add(self, score: int, count: int = 1) -> None:
        self.counts[score] = self.counts.get(score, 0) + count


def _distribute(rows: Iterable[ScoreCount[Any]]) -> dict[Any, Distribution]:
    result: dict[Any, Distribution] = defaultdict(Distribution)
    for key, score, ratings in rows:
        result[key].add(score, ratings)
    return dict(result)


async def rating_distribution(
    session: AsyncSession, start: datetime, end: datetime, by: str | None = None
) -> dict[Any, Distribution]:
    """Ratings given in [start, end) (by the first rating's time), counted ones only.

    `by`: None (one key, None: the whole desk), "agent" (key: (agent_id, agent_name); a
    rating counts for each agent it is attributed to), "client" (key: client id).
    """
    ratings = Ratings(session)
    if by is None:
        return _distribute(await ratings.score_counts(start, end))
    if by == "client":
        return _distribute(await ratings.score_counts_by_client(start, end))
    if by == "agent":
        return _distribute(await ratings.score_counts_by_agent(start, end))
    raise ValueError(f"unknown grouping {by!r}")
