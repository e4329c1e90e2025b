"""Problems: one cause behind many incidents (an outage), and monitoring opening them.

- `/problem 101 <title>` makes incident #101 a problem; `/link 102 101` (a card's button,
  the surge digest's) links incidents to it, `/unlink 102` (a button) undoes that.
- A staff message in the problem's thread (its incident's topic, or a reply to the alert
  message of a problem monitoring opened) goes to its client and to every linked client,
  each through the same notifier path as any answer about their own incident (their
  language, their chat, the outbox's priority and Telegram's limits).
- Closing the problem closes every linked incident through the desk's closure: each client
  gets the resolution and one rating request. The closing's own transaction closes the
  problem (and its own incident) and keeps who closed it; the linked incidents follow in
  batches of `CLOSE_BATCH`, each batch a transaction of its own (`close_linked`), started
  after the commit and, should the process stop meanwhile, finished by the scheduler's
  sweep (the same function: the database says what is left). So another client's message
  waits for one batch at most, not for the whole closing, under SQLite's write lock.
- A new client's message that matches an open problem (`ProblemMatcher`: the sentence
  model's vectors, prepared before the transaction, else the words; the company when
  both sides know it) is linked at once and the client told so (bot/services/desk.py).
- Monitoring (bot/domain/alerts.py, bot/telegram/monitoring.py): a firing alert opens or
  updates the problem of its fingerprint; a replay changes nothing; a resolved one tells
  staff and offers to close the problem. A problem monitoring opened has no incident and
  no client reporter (`problems.ticket_id` NULL): its number comes from the incidents'
  counter, its place in the staff group is its alert message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import DeskConfig
from bot.domain.alerts import Alert
from bot.domain.clock import Clock, Monotonic
from bot.domain.enums import ActorKind, EventKind, TicketStatus
from bot.messaging.notify import Actor, Content, Notifier
from bot.services.desk import SUBJECT_CHARS, Desk, DeskError
from bot.services.semantic import Semantic
from kb.encoder import Vectors
from kb.text import stems
from storage.db import Database
from storage.models import Client, Problem, Ticket, TicketEvent
from storage.repos.companies import Companies
from storage.repos.events import TicketEvents
from storage.repos.problems import Problems
from storage.repos.tickets import TicketMessages, Tickets

log = logging.getLogger(__name__)

# A report matches a problem at this cosine similarity of their sentence vectors (lower
# when both are of the same company), or with this share of the problem's words in it.
SIMILAR = 0.55
SIMILAR_SAME_COMPANY = 0.45
WORDS_SHARED = 0.6
LINK_LIMIT = 2000  # incidents one /link or button links at most
# Linked incidents of a closed problem closed per transaction. A closure holds the write
# lock about 15 ms on a loaded 2-core machine (the resolution, the rating request, the
# card): 50 made batches of 0.75 s there and another client waited 0.93 s behind them
# (tests/bench/problem_fanout.py); 25 keep a batch near a third of a second.
CLOSE_BATCH = 25
CLOSE_SWEEP_SECONDS = 30

ProblemDeskFactory = Callable[[AsyncSession, datetime], "ProblemDesk"]


@dataclass(frozen=True)
class Linked:
    problem: Problem
    tickets: list[Ticket]


def lexical_overlap(title: str, text: str) -> float:
    """The share of the title's word stems found in the text (0 when the title has none)."""
    wanted = set(stems(title))
    return len(wanted & set(stems(text))) / len(wanted) if wanted else 0.0


class ProblemMatcher:
    """Which open problem a new client's message reports (Desk's `known_problem`)."""

    def __init__(self, session: AsyncSession, semantic: Semantic | None) -> None:
        self._problems = Problems(session)
        self._semantic = semantic

    async def __call__(self, client: Client, content: Content) -> int | None:
        problems = [p for p in await self._problems.open()
                    if p.company_id is None or client.company_id is None
                    or p.company_id == client.company_id]
        if not problems or not content.text.strip():
            return None
        best, score = _best(problems, content.text, client, self._semantic)
        return best.number if best is not None and score > 0 else None


def _best(problems: Sequence[Problem], text: str, client: Client,
          semantic: Semantic | None) -> tuple[Problem | None, float]:
    """The closest problem and how far above its bar it is (<= 0: none is close enough).
    Vectors only if `prepare` made them all (never encoded here: this runs inside the
    transaction); else the words."""
    vectors = semantic.cached([text, *(p.title for p in problems)]) if semantic else None
    best: Problem | None = None
    margin = 0.0
    for index, problem in enumerate(problems):
        same = problem.company_id is not None and problem.company_id == client.company_id
        if vectors is not None:
            value = float(vectors[0] @ vectors[index + 1])
            bar = SIMILAR_SAME_COMPANY if same else SIMILAR
        else:
            value, bar = lexical_overlap(problem.title, text), WORDS_SHARED
        if value - bar >= margin and (best is None or value - bar > margin):
            best, margin = problem, value - bar
    return best, margin if best is not None else 0.0


class OpenTitles:
    """The vectors of open problems' titles, made ahead so that `ProblemMatcher` finds them
    in the cache. `refresh` (called before each client message's transaction) never waits:
    at most every `ttl` seconds it starts one read of the titles beside the writer and
    their encoding in the encoder's thread, in the background (a message meanwhile is
    matched by its words if a title's vector is not made yet)."""

    def __init__(self, db: Database, semantic: Semantic, monotonic: Monotonic,
                 ttl: float = 2.0) -> None:
        self._db = db
        self._semantic = semantic
        self._monotonic = monotonic
        self._ttl = ttl
        self._read_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    def refresh(self) -> None:
        if not self._semantic.available or (self._task is not None and not self._task.done()):
            return
        now = self._monotonic()
        if self._read_at is None or now - self._read_at >= self._ttl:
            self._read_at = now
            self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async with self._db.reading() as session:
                titles = [p.title for p in await Problems(session).open()]
            await self._semantic.prepare(titles)
        except Exception:  # the words still match; the next message tries again
            log.exception("Problems: the open titles could not be prepared")

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task


# -- the desk suggests a problem ------------------------------------------------------

SUGGEST_CANDIDATES = 200  # recent incidents compared at most, per sweep
SUGGEST_SECONDS = 60


@dataclass(frozen=True)
class Candidate:
    number: int
    client_id: int
    text: str


def clusters(candidates: Sequence[Candidate], vectors: Vectors | None,
             need: int) -> list[list[Candidate]]:
    """Groups of similar incidents from at least `need` different clients, each led by its
    earliest; an incident joins one group at most. Similar: the sentence vectors (when
    given) at `SIMILAR`, else `WORDS_SHARED` of the shorter text's words."""
    words = [set(stems(c.text)) for c in candidates] if vectors is None else []

    def alike(i: int, j: int) -> bool:
        if vectors is not None:
            return float(vectors[i] @ vectors[j]) >= SIMILAR
        least = min(len(words[i]), len(words[j]))
        return bool(least) and len(words[i] & words[j]) / least >= WORDS_SHARED

    used: set[int] = set()
    found = []
    for i in range(len(candidates)):
        if i in used:
            continue
        members = [j for j in range(i, len(candidates)) if j not in used
                   and (j == i or alike(i, j))]
        if len({candidates[j].client_id for j in members}) >= need:
            used.update(members)
            found.append([candidates[j] for j in members])
    return found


async def close_linked(db: Database, problems_for: ProblemDeskFactory, clock: Clock,
                       wake: Callable[[], None] | None = None, *,
                       batch: int | None = None) -> int:
    """The linked incidents of closed problems still open, closed batch by batch, each
    batch its own transaction (so other updates get the write lock in between); returns
    how many were closed. Idempotent and driven by the database alone: after the closing's
    commit, and as the scheduler's sweep (which finishes a closing a restart cut short)."""
    batch = batch or CLOSE_BATCH
    total = 0
    while True:
        started = time.monotonic()
        async with db.transaction() as session:
            taken = await problems_for(session, clock()).close_batch(batch)
        if taken:
            log.info("problems: %d linked incidents closed in %.3f s", taken,
                     time.monotonic() - started)
        total += taken
        if taken and wake is not None:
            wake()  # the batch's resolutions and rating requests are in the outbox
        if taken < batch:
            return total


async def suggest_problems(
    db: Database, semantic: Semantic, notifier_for: Callable[[AsyncSession], Notifier],
    config: DeskConfig, now: datetime,
) -> int:
    """The scheduled sweep: suggest a problem for each group of similar new incidents from
    different clients within `surge_window_minutes` (each incident suggested once); returns
    how many suggestions were posted. The texts are read beside the writer and encoded in
    the encoder's thread before the writing transaction opens."""
    need = config.suggest_problem_after
    since = now - timedelta(minutes=config.surge_window_minutes)
    async with db.reading() as session:
        tickets = await Problems(session).candidates(since, SUGGEST_CANDIDATES)
        texts = await TicketMessages(session).first_texts_from_client([t.id for t in tickets])
        candidates = [Candidate(t.number, t.client_id, texts.get(t.id) or t.subject)
                      for t in tickets]
    if len({c.client_id for c in candidates}) < need:
        return 0
    await semantic.prepare([c.text for c in candidates])
    found = clusters(candidates, semantic.cached([c.text for c in candidates]), need)
    if not found:
        return 0
    posted = 0
    async with db.transaction() as session:
        problems = Problems(session)
        events = TicketEvents(session)
        for group in found:
            # still unsuggested now, in the writing transaction (another sweep, a /link)
            fresh = await problems.candidates(since, len(group), [c.number for c in group])
            if len({t.client_id for t in fresh}) < need:
                continue
            for ticket in fresh:
                await events.add(TicketEvent(
                    ticket_id=ticket.id, at=now, actor_kind=ActorKind.SYSTEM,
                    kind=EventKind.SUGGESTED, new_value=str(fresh[0].number)))
            await notifier_for(session).problem_suggestion(list(fresh))
            posted += 1
    return posted


class ProblemError(DeskError):
    """A problem request that cannot be done (template: staff `error`)."""


class ProblemDesk:
    """Problems within one transaction (the caller's session, notifier and desk)."""

    def __init__(self, session: AsyncSession, notifier: Notifier, desk: Desk,
                 clock: Clock, *, close_later: Callable[[], None] | None = None) -> None:
        """`close_later`: asks for `close_linked` after this transaction's commit (without
        it, the scheduler's sweep closes the linked incidents)."""
        self._session = session
        self._notify = notifier
        self._desk = desk
        self._clock = clock
        self._close_later = close_later
        self._problems = Problems(session)
        self._tickets = Tickets(session)
        self._companies = Companies(session)

    async def problem(self, number: int) -> Problem:
        problem = await self._problems.by_number(number)
        if problem is None:
            raise ProblemError("no_problem", number=number)
        return problem

    async def _open_problem(self, number: int) -> Problem:
        problem = await self.problem(number)
        if not problem.is_open:
            raise ProblemError("problem_closed", number=number)
        return problem

    # -- staff make, link, unlink -------------------------------------------------------

    async def make(self, number: int, title: str | None, actor: Actor) -> Problem:
        """`/problem 101 <title>`: incident #101 becomes a problem (open, not linked)."""
        ticket = await self._desk.ticket(number)
        if not ticket.status.is_open:
            raise DeskError("ticket_not_open", number=number)
        if await self._problems.by_ticket(ticket.id) is not None:
            raise ProblemError("already_problem", number=number)
        if ticket.problem_number is not None:
            raise ProblemError("is_linked", number=number, problem=ticket.problem_number)
        now = self._clock()
        client = await self._desk.client_of(ticket)
        problem = await self._problems.add(Problem(
            number=ticket.number, ticket_id=ticket.id,
            title=(title or ticket.subject)[:SUBJECT_CHARS], source="staff",
            company_id=client.company_id, opened_at=now, updated_at=now))
        await self._desk.record(ticket, actor, EventKind.PROBLEM, None, problem.title[:64])
        await self._desk.ensure_card(ticket, client)
        await self._notify.problem_line(problem, "problem_made", actor=actor)
        await self._desk.refresh_card(ticket, client)
        return problem

    async def link(self, numbers: Sequence[tuple[int, int]], problem_number: int,
                   actor: Actor) -> Linked:
        """Link the open incidents in these ranges (first, last) to the problem; the ones
        linked already, the problem's own and closed ones are left as they are."""
        problem = await self._open_problem(problem_number)
        linked: list[Ticket] = []
        for first, last in numbers:
            for ticket in await self._problems.tickets_between(first, last, LINK_LIMIT):
                if len(linked) >= LINK_LIMIT:
                    break
                if ticket.id == problem.ticket_id or ticket.problem_number is not None:
                    continue
                if await self._problems.by_ticket(ticket.id) is not None:
                    continue  # a problem of its own
                ticket.problem_number = problem.number
                await self._desk.record(ticket, actor, EventKind.LINKED, None,
                                        str(problem.number))
                await self._desk.refresh_card(ticket, await self._desk.client_of(ticket))
                linked.append(ticket)
        if not linked:
            raise ProblemError("nothing_linked", number=problem.number)
        problem.updated_at = self._clock()
        await self._notify.problem_line(problem, "problem_linked", actor=actor,
                                        numbers=[t.number for t in linked])
        await self._refresh_problem(problem)
        return Linked(problem, linked)

    async def unlink(self, number: int, actor: Actor) -> Ticket:
        """`/unlink 102` (or the card's button): #102 is an incident of its own again."""
        ticket = await self._desk.ticket(number)
        if ticket.problem_number is None:
            raise ProblemError("not_linked", number=number)
        problem = await self.problem(ticket.problem_number)
        ticket.problem_number = None
        await self._desk.record(ticket, actor, EventKind.UNLINKED, str(problem.number), None)
        client = await self._desk.client_of(ticket)
        if ticket.status.is_open:
            await self._desk.ensure_card(ticket, client)
        await self._desk.refresh_card(ticket, client)
        await self._notify.problem_line(problem, "problem_unlinked", actor=actor,
                                        numbers=[ticket.number])
        await self._refresh_problem(problem)
        return ticket

    async def _refresh_problem(self, problem: Problem) -> None:
        if problem.ticket_id is not None:
            ticket = await self._tickets.by_id(problem.ticket_id)
            await self._desk.refresh_card(ticket, await self._desk.client_of(ticket))
        else:
            await self._notify.refresh_problem_alert(problem, await self._company(problem))

    async def _company(self, problem: Problem) -> str | None:
        if problem.company_id is None:
            return None
        company = await self._companies.by_id(problem.company_id)
        return company.name if company is not None else None

    # -- staff tell everyone ------------------------------------------------------------

    async def staff_answer(self, ticket: Ticket, actor: Actor, content: Content) -> None:
        """A staff answer in an incident's thread: to its client, as always, and when the
        incident is a problem, to every linked client too."""
        await self._desk.staff_answer(ticket, actor, content)
        problem = await self._problems.by_ticket(ticket.id)
        if problem is not None and problem.is_open:
            await self._tell_linked(problem, actor, content)

    async def alert_reply(self, chat_id: int, reply_to: int | None, actor: Actor,
                          content: Content) -> bool:
        """A staff reply to the alert message of a problem monitoring opened: to every
        linked client; False when the message is no such reply."""
        if reply_to is None:
            return False
        problem = await self._problems.by_card_message(chat_id, reply_to)
        if problem is None or not problem.is_open:
            return False
        await self._tell_linked(problem, actor, content)
        return True

    async def _tell_linked(self, problem: Problem, actor: Actor, content: Content) -> None:
        rows = await self._problems.linked(problem.number)
        for ticket, client in rows:
            await self._desk.answer_only(ticket, client, actor, content)
        problem.updated_at = self._clock()
        await self._notify.problem_line(problem, "problem_told", count=len(rows))

    async def accept_suggestion(self, number: int, actor: Actor) -> Problem:
        """The suggestion's button: its first incident made a problem, the others linked."""
        others = [n for n in await self._problems.suggested_with(number) if n != number]
        if not others:
            raise ProblemError("button_invalid")
        problem = await self.make(number, None, actor)
        await self.link([(n, n) for n in others], problem.number, actor)
        return problem

    # -- closing ------------------------------------------------------------------------

    async def close(self, number: int, actor: Actor, text: str | None,
                    minutes: int | None = None) -> Problem | None:
        """`/close N ...` of an incident that is a problem, `/problem close N ...`, the
        alert's button: the problem closed, and every linked incident after the commit, in
        batches (`close_linked`; each client gets the resolution and one rating request).
        Returns None when N is no open problem (an ordinary incident is closed then)."""
        problem = await self._problems.by_number(number)
        if problem is None or not problem.is_open:
            if problem is None and await self._tickets.by_number(number) is None:
                raise ProblemError("no_problem", number=number)
            if problem is not None and problem.ticket_id is None:
                raise ProblemError("problem_closed", number=number)
            await self._desk.close(number, actor, text, minutes)
            return None
        own = (await self._tickets.by_id(problem.ticket_id)
               if problem.ticket_id is not None else None)
        if own is not None and own.status != TicketStatus.CLOSED:  # closed by a sweep maybe
            await self._desk.close(number, actor, text, minutes)
        now = self._clock()
        problem.closed_at = problem.updated_at = now
        problem.resolution = text
        by_someone = actor.kind != ActorKind.SYSTEM
        problem.closed_by_id = actor.user_id if by_someone else None
        problem.closed_by_name = actor.name[:200] if by_someone else None
        if self._close_later is not None:
            self._close_later()
        await self._notify.problem_line(problem, "problem_closed", actor=actor,
                                        count=await self._problems.count_linked(problem.number))
        await self._refresh_problem(problem)
        return problem

    async def close_batch(self, limit: int) -> int:
        """Close the next `limit` incidents still to close of closed problems, in the name
        of whoever closed each problem, with its resolution; returns how many were taken."""
        rows = await self._problems.closing(limit)
        for ticket, problem in rows:
            actor = (Actor(ActorKind.STAFF, problem.closed_by_id, problem.closed_by_name or "")
                     if problem.closed_by_id is not None else Actor.system())
            try:
                await self._desk.close(ticket.number, actor, problem.resolution)
            except DeskError:  # not open after all: nothing to do
                log.info("problem #%s: incident #%s was closed already", problem.number,
                         ticket.number)
        return len(rows)

    # -- monitoring ---------------------------------------------------------------------

    async def alerts(self, alerts: Sequence[Alert]) -> list[str]:
        """Alerts from monitoring, in the caller's one transaction: what became of each
        (opened | updated | reopened | resolved | unchanged)."""
        return [await self._alert(alert) for alert in alerts]

    async def _alert(self, alert: Alert) -> str:
        problem = await self._problems.by_fingerprint(alert.fingerprint)
        now = self._clock()
        if problem is None:
            if not alert.firing:
                return "unchanged"  # resolved before we heard of it: nothing to close
            company = (await self._companies.by_name(alert.company)
                       if alert.company else None)
            problem = await self._problems.add(Problem(
                number=await self._tickets.next_number(), ticket_id=None,
                title=alert.title[:SUBJECT_CHARS], source="monitoring",
                company_id=company.id if company else None, opened_at=now, updated_at=now,
                fingerprint=alert.fingerprint, alert_severity=alert.severity,
                alert_started=alert.started))
            await self._notify.problem_alert(problem, company.name if company else alert.company)
            return "opened"
        if alert.firing:
            if not problem.is_open:
                if alert.started is None or alert.started == problem.alert_started:
                    return "unchanged"  # a late replay of what was closed
                problem.closed_at = problem.alert_resolved_at = None
                self._update(problem, alert, now)
                await self._notify.problem_line(problem, "alert_reopened")
                await self._refresh_problem(problem)
                return "reopened"
            changed = (problem.alert_resolved_at is not None
                       or alert.title[:SUBJECT_CHARS] != problem.title
                       or alert.severity != problem.alert_severity)
            if not changed:
                return "unchanged"
            problem.alert_resolved_at = None
            self._update(problem, alert, now)
            await self._notify.problem_line(problem, "alert_updated")
            await self._refresh_problem(problem)
            return "updated"
        if not problem.is_open or problem.alert_resolved_at is not None:
            return "unchanged"
        problem.alert_resolved_at = problem.updated_at = now
        await self._notify.problem_line(problem, "alert_resolved", offer_close=True,
                                        count=await self._problems.count_linked(problem.number))
        await self._refresh_problem(problem)
        return "resolved"

    @staticmethod
    def _update(problem: Problem, alert: Alert, now: datetime) -> None:
        problem.title = alert.title[:SUBJECT_CHARS] or problem.title
        problem.alert_severity = alert.severity
        problem.alert_started = alert.started or problem.alert_started
        problem.updated_at = now
