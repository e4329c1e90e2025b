"""The incident desk: the only place where tickets change.

Every change appends a ticket_event (who, what, when, old -> new) and tells the
people concerned through the notifier, all in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import DeskConfig, LimitsConfig
from bot.domain.calendar import Pause
from bot.domain.clock import Clock
from bot.domain.enums import (
    ActorKind,
    ContentKind,
    EventKind,
    MessageAuthor,
    ResolutionKind,
    Severity,
    TicketStatus,
)
from bot.domain.errors import UserError
from bot.domain.flood import take
from bot.domain.sla import (
    PAUSED_STATUSES,
    WAITING_STATUSES,
    Promise,
    SlaPolicy,
    pauses_from_events,
    terms_of,
)
from bot.domain.storable import storable
from bot.messaging.callbacks import PickTicket
from bot.messaging.notify import Actor, CardLinks, Closure, Content, Notifier
from bot.messaging.outbox import PRIORITY_REPLY, button
from storage.models import Client, Company, Ticket, TicketEvent, TicketMessage, TimeEntry
from storage.repos.clients import Clients
from storage.repos.companies import Companies
from storage.repos.events import TicketEvents
from storage.repos.inbox import Inbox
from storage.repos.problems import Problems
from storage.repos.tickets import TicketMessages, Tickets

SUBJECT_WORDS = 8
SUBJECT_CHARS = 199  # tickets.subject is 200 long, the ellipsis included
# A burst of follow-ups gets one acknowledgement, not one per photo.
FOLLOWUP_ACK_AFTER = timedelta(minutes=2)

Classifier = Callable[[str], Severity]
# Called after an incident is registered (the FAQ suggestion follows the confirmation).
OnOpened = Callable[[Ticket, Client, Content], Awaitable[None]]
# Called when an incident becomes closed (the rating request), with what the client is to be
# told of the closure (None: nothing); True when it told them (one message with the request).
OnClosed = Callable[[Ticket, Client, Closure | None], Awaitable[bool]]
# The number of the open problem a new client's message reports, if any (bot/services/problems.py).
KnownProblem = Callable[[Client, Content], Awaitable[int | None]]


@dataclass(frozen=True)
class Level:
    """A contract's service level: the promise per severity and the working time."""

    promises: list[Promise]
    work_time: DeskConfig
    own: bool  # the company's own (else the desk's)


REAPPLY_LIMIT = 1000
COMPANY_LIST_LIMIT = 20


def is_contact(company: Company, client: Client) -> bool:
    """Whether the client is one of the company's coordinators."""
    return client.company_id == company.id and client.user_id in (company.contacts or [])


def mention(manager: str) -> int | str:
    """An account manager as the mention templates take it (a user id or an @username)."""
    return int(manager) if manager.isdigit() else manager


class DeskError(UserError):
    """An incident request that cannot be done (templates: `error`)."""


@dataclass(frozen=True)
class Person:
    """A Telegram user as the desk knows them."""

    user_id: int
    chat_id: int
    first_name: str
    last_name: str | None
    username: str | None
    language_code: str | None

    def __post_init__(self) -> None:
        for name in ("first_name", "last_name", "username"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, storable(value))


@dataclass
class Registration:
    """What became of a client's message."""

    outcome: str  # opened | appended | reopened | asked | held | limited
    ticket: Ticket | None = None
    choices: list[Ticket] = field(default_factory=list)


def subject_of(content: Content, fallback: str) -> str:
    words = content.text.split()
    if not words:
        return fallback
    subject = " ".join(words[:SUBJECT_WORDS])
    if len(subject) > SUBJECT_CHARS:  # a 10,000-letter "word": the column holds 200
        return subject[:SUBJECT_CHARS - 1] + "…"
    return subject if len(words) <= SUBJECT_WORDS else subject + "…"


class Desk:
    """Incidents within one transaction (the caller's session and notifier)."""

    def __init__(
        self,
        session: AsyncSession,
        notifier: Notifier,
        clock: Clock,
        config: DeskConfig,
        classify: Classifier,
        language_for: Callable[[str | None], str],
        *,
        sla: SlaPolicy | None = None,
        on_opened: OnOpened | None = None,
        on_closed: OnClosed | None = None,
        limits: LimitsConfig | None = None,
        known_problem: KnownProblem | None = None,
    ) -> None:
        """`sla`: targets and timers (without them incidents carry no due times and the
        registration message makes no promise); `on_opened`, `on_closed`: what follows a
        registration (the FAQ suggestion) and a closure (the rating request);
        `known_problem`: which open problem a new report is one of (it is linked then)."""
        self._session = session
        self._notify = notifier
        self._clock = clock
        self._config = config
        self._classify = classify
        self._language_for = language_for
        self._sla = sla
        self._on_opened = on_opened
        self._on_closed = on_closed
        self._limits = limits or LimitsConfig()
        self._known_problem = known_problem
        self._clients = Clients(session)
        self._problems = Problems(session)
        self._tickets = Tickets(session)
        self._messages = TicketMessages(session)
        self._events = TicketEvents(session)
        self._inbox = Inbox(session)
        self._companies = Companies(session)
        # Clients already looked up in this transaction, by user id: several handlers of one
        # update may ask for the same one (see bot/telegram/middleware.py).
        self._seen: dict[int, Client] = {}

    # -- clients --------------------------------------------------------------------

    async def client_for(self, person: Person) -> Client:
        """The client record of a person, created on first contact."""
        seen = self._seen.get(person.user_id)
        if seen is not None:
            return seen
        now = self._clock()
        client = await self._clients.by_user(person.user_id)
        is_new = client is None
        if client is None:
            client = Client(
                user_id=person.user_id, chat_id=person.chat_id,
                language=self._language_for(person.language_code),
                created_at=now, contact_asked=False, wants_new_ticket=False,
            )
        client.first_name = person.first_name
        client.last_name = person.last_name
        client.username = person.username
        client.last_seen_at = now
        # Writing to the bot means the client unblocked it: their held messages may flow again.
        client.unreachable_since = None
        if is_new:
            await self._clients.add(client)
        self._seen[person.user_id] = client
        return client

    async def known_client(self, user_id: int) -> Client | None:
        """The client record of a Telegram user who has written to the bot, else None."""
        return await self._clients.by_user(user_id)

    async def client_of(self, ticket: Ticket) -> Client:
        return await self._clients.by_id(ticket.client_id)

    async def sent_message(self, client: Client, message_id: int) -> dict[str, Any] | None:
        """The Bot API payload of a message this client sent to the bot in their chat."""
        original = await self._inbox.find_message(client.chat_id, message_id)
        if original is None or original.get("from", {}).get("id") != client.user_id:
            return None
        return original

    async def save_phone(self, client: Client, phone: str) -> None:
        client.phone = phone
        client.contact_asked = True

    # -- a client writes ------------------------------------------------------------

    # -- flood control (bot/domain/flood.py; issue 14) ------------------------------

    def admit(self, client: Client) -> bool:
        """Take a token from the client's bucket: False while they are over their limit or
        muted by staff (their messages are then held: `hold`)."""
        now = self._clock()
        limits = self._limits
        admitted, bucket = take(client.flood_tokens, client.flood_at, now,
                                limits.messages_per_minute, limits.burst)
        client.flood_tokens, client.flood_at = bucket.tokens, now
        if bucket.full and client.muted_until is None:
            client.flood_told = False  # the burst is over: the next one is told again
        if client.muted_until is not None:
            if client.muted_until > now:
                return False
            client.muted_until = None
        # A burst lasts until the bucket is full again: no trickle of single lines meanwhile.
        return admitted and not client.flood_told

    async def hold(self, client: Client, content: Content, reply_to: int | None, *,
                   thread: Ticket | None = None,
                   group_chat_id: int | None = None) -> Registration:
        """A message over the limit: kept with the client's incident (the one replied to, else
        the latest open one) without a staff line of its own; the staff group gets one
        combined line a minute (bot/services/flood.py), the client is told once. In a
        client group (`group_chat_id`; `thread`: the incident replied to there) only that
        group's incidents of the author count."""
        ticket = thread or await self.replied_ticket(client, reply_to)
        if ticket is None or not ticket.status.is_open:
            open_tickets = await self._open_of(client, group_chat_id)
            if not open_tickets:  # nothing to keep it with: it opens one, as always
                return Registration("opened", await self.open_ticket(
                    client, content, group_chat_id=group_chat_id))
            ticket = open_tickets[0]
        await self.ensure_card(ticket, client)
        await self._record_client_message(ticket, client, content)
        await self._tickets.add_held(ticket.id)
        if not client.flood_told:
            client.flood_told = True
            await self._notify.to_client(ticket, client, "collecting", priority=PRIORITY_REPLY,
                                        reply_to=content.message_id)
        return Registration("held", ticket)

    async def open_for(self, client: Client, content: Content | None, *,
                       group_chat_id: int | None = None) -> Registration:
        """The client asks for a new incident (/new, "new incident" button, a report in a
        client group: `group_chat_id`): opened unless they have `[limits] open_incidents`
        open already (there); then told which ones (what they wrote joins the latest of
        them, nothing is lost)."""
        open_tickets = list(await self._open_of(client, group_chat_id))
        if len(open_tickets) < self._limits.open_incidents:
            if content is None:
                await self.start_new(client)
                return Registration("asked")
            return Registration("opened", await self.open_ticket(
                client, content, group_chat_id=group_chat_id))
        reply_to = None
        if content is not None:
            latest = open_tickets[0]
            await self.ensure_card(latest, client)
            await self._record_client_message(latest, client, content)
            await self._notify.client_followup(latest, client, content)
            reply_to = content.message_id
        # Told where they wrote: the group (its incident's place), or their private chat.
        await self._notify.to_client(open_tickets[0] if group_chat_id else None, client,
                                     "open_limit", priority=PRIORITY_REPLY,
                                     reply_to=reply_to, tickets=open_tickets)
        return Registration("limited", open_tickets[0], choices=open_tickets)

    async def _open_of(self, client: Client, group_chat_id: int | None) -> Sequence[Ticket]:
        """The client's open incidents, latest first; with `group_chat_id`, those reported
        in that client group only."""
        tickets = await self._tickets.open_for_client(client.id)
        if group_chat_id is None:
            return tickets
        return [t for t in tickets if t.group_chat_id == group_chat_id]

    async def client_message(
        self, client: Client, content: Content, reply_to: int | None
    ) -> Registration:
        if not self.admit(client):
            return await self.hold(client, content, reply_to)
        if client.wants_new_ticket:
            client.wants_new_ticket = False
            return await self.open_for(client, content)
        replied = await self.replied_ticket(client, reply_to)
        if replied is not None:
            if replied.status.is_open:
                await self.append_from_client(replied, client, content)
                return Registration("appended", replied)
            reopened = await self.reopen_by_reply(replied, client, content)
            if reopened is not None:
                return reopened
        open_tickets = list(await self._tickets.open_for_client(client.id))
        if not open_tickets:
            return Registration("opened", await self.open_ticket(client, content))
        if len(open_tickets) == 1:
            await self.append_from_client(open_tickets[0], client, content)
            return Registration("appended", open_tickets[0])
        await self._ask_which(client, content, open_tickets)
        return Registration("asked", choices=open_tickets)

    async def reopen_by_reply(
        self, ticket: Ticket, client: Client, content: Content
    ) -> Registration | None:
        """A client's reply to a message about a closed (or resolved) incident: it opens
        again, with the reply added, while it ended `reopen_days` ago at most; None when it
        is older (the reply is then a report of its own, by the caller's usual rule). In a
        client group `client` may be a colleague of the reporter's."""
        if not self._may_reopen(ticket):
            return None
        owner = client if client.id == ticket.client_id else await self.client_of(ticket)
        actor = Actor(ActorKind.CLIENT, client.user_id, client.display_name)
        await self._reopen(ticket, owner, actor, content.text)
        await self._record_client_message(ticket, client, content)
        await self._notify.client_followup(ticket, client, content)
        return Registration("reopened", ticket)

    async def replied_ticket(self, client: Client, reply_to: int | None) -> Ticket | None:
        """The client's incident that the message they reply to is about, if any."""
        if reply_to is None:
            return None
        ticket = await self._tickets.by_message(client.chat_id, reply_to)
        return ticket if ticket is not None and ticket.client_id == client.id else None

    async def add_to_only_open(self, client: Client, content: Content) -> bool:
        """A message that says little on its own (a sticker) joins the client's one open
        incident; False when they have none or several (nothing is done then)."""
        open_tickets = await self._tickets.open_for_client(client.id)
        if len(open_tickets) != 1:
            return False
        if not self.admit(client):
            await self.hold(client, content, None)
            return True
        await self.append_from_client(open_tickets[0], client, content)
        return True

    async def pick(self, client: Client, number: int, content: Content) -> Registration:
        """The client answered "which incident is this about?"."""
        if await self._messages.has(content.chat_id, content.message_id):
            raise DeskError("already_attached")
        if number == 0:
            return await self.open_for(client, content)
        ticket = await self._client_ticket(client, number)
        if not ticket.status.is_open:
            raise DeskError("ticket_not_open", number=number)
        await self.append_from_client(ticket, client, content)
        return Registration("appended", ticket)

    async def start_new(self, client: Client) -> None:
        client.wants_new_ticket = True

    async def open_ticket(
        self, client: Client, content: Content, *, severity: Severity | None = None,
        origin: str | None = None, group_chat_id: int | None = None,
    ) -> Ticket:
        """Register an incident; `severity` overrides the classifier and `origin` marks one
        the desk opened on the client's behalf (e.g. "quality_callback"); `group_chat_id`:
        reported in that client group, where its answers go (bot/services/groups.py)."""
        now = self._clock()
        if severity is None:
            severity = self._classify(content.text) if content.text else Severity.NORMAL
        texts = self._notify.texts
        fallback = str(texts.label(texts.default_language, "kind_" + content.kind))
        ticket = Ticket(
            number=await self._tickets.next_number(), client_id=client.id,
            status=TicketStatus.NEW, severity=severity,
            subject=subject_of(content, fallback), reopen_count=0,
            opened_at=now, updated_at=now, origin=origin, group_chat_id=group_chat_id,
            group_message_id=content.message_id if group_chat_id is not None else None,
        )
        promise = None
        if self._sla is not None:  # before the insert: one statement writes it all
            ticket.sla_terms = await self._terms_of(client)
            policy = self._sla.for_terms(ticket.sla_terms)
            policy.schedule(ticket, [], now)
            ticket.client_updated_at = now
            promise = policy.promise(ticket.severity, now)
        await self._tickets.add(ticket)
        await self._event(ticket, Actor(ActorKind.CLIENT, client.user_id, client.display_name),
                          EventKind.OPENED, None, TicketStatus.NEW)
        await self._record_client_message(ticket, client, content, at=now)
        company = await self._company_of(client)
        known = (await self._known_problem(client, content)
                 if self._known_problem is not None and content.is_text and origin is None
                 else None)
        if known is not None:  # one more report of a problem we work on: told so at once
            ticket.problem_number = known
            await self._event(ticket, Actor(ActorKind.SYSTEM, None, ""), EventKind.LINKED,
                              None, str(known))
            await self._notify.known_problem(ticket, client, content)
        else:
            surge = await self._in_surge(now)  # no card now: nothing for it to show
            await self._notify.ticket_opened(ticket, client, content, promise, surge=surge,
                                            services=company.services if company else None,
                                            links=None if surge else await self.card_links(
                                                ticket, new=True))
        if company is not None and company.notify_contacts:
            await self._tell_contacts(ticket, client, company)
        # Its buttons go to a private chat, and a known problem's report has its own.
        if self._on_opened is not None and known is None and group_chat_id is None:
            await self._on_opened(ticket, client, content)
        return ticket

    async def not_the_problem(self, client: Client, number: int) -> Ticket:
        """The client pressed "mine is something else" on the known-problem message: the
        incident is unlinked and becomes one of its own (the usual promise and card)."""
        ticket = await self._client_ticket(client, number)
        if not ticket.status.is_open:
            raise DeskError("ticket_not_open", number=number)
        if ticket.problem_number is None:
            raise DeskError("not_linked", number=number)
        old = ticket.problem_number
        ticket.problem_number = None
        actor = Actor(ActorKind.CLIENT, client.user_id, client.display_name)
        await self._event(ticket, actor, EventKind.UNLINKED, str(old), None)
        first = await self._messages.first_from_client(ticket.id)
        if first is None:
            raise DeskError("not_linked", number=number)
        company = await self._company_of(client)
        await self._notify.ticket_opened(
            ticket, client, Content(kind=first.kind, text=first.text, chat_id=first.chat_id,
                                    message_id=first.message_id),
            self._promise(ticket), services=company.services if company else None,
            links=await self.card_links(ticket))
        return ticket

    async def card_links(self, ticket: Ticket, *, new: bool = False) -> CardLinks:
        """What the incident's card shows of problems (bot.messaging.notify.CardLinks).
        `new`: the incident was registered in this transaction, so no problem was opened
        from it yet (not looked for: one statement less per registration)."""
        problem = None if new else await self._problems.by_ticket(ticket.id)
        if problem is not None:
            return CardLinks(problem=problem,
                             linked=await self._problems.count_linked(problem.number))
        if ticket.problem_number is not None or not ticket.status.is_open:
            return CardLinks()
        latest = await self._problems.latest_open()
        return CardLinks(offer=latest.number if latest is not None else None)

    async def _in_surge(self, now: datetime) -> bool:
        threshold = self._config.surge_threshold
        if not threshold:
            return False
        since = now - timedelta(minutes=self._config.surge_window_minutes)
        return await self._tickets.clients_opened_since_more_than(since, threshold)

    async def ensure_card(self, ticket: Ticket, client: Client) -> None:
        """Post the staff card of an incident registered during a surge, when it matters."""
        if ticket.card_outbox_id is not None:
            return
        first = await self._messages.first_from_client(ticket.id)
        if first is None:
            return
        company = await self._company_of(client)
        await self._notify.post_card(ticket, client, Content(
            kind=first.kind, text=first.text, chat_id=first.chat_id, message_id=first.message_id,
        ), services=company.services if company else None, links=await self.card_links(ticket))

    async def append_from_client(self, ticket: Ticket, client: Client, content: Content) -> None:
        await self.ensure_card(ticket, client)
        if ticket.status == TicketStatus.WAITING:
            # The client answered: the ball is ours again and the SLA clock runs.
            await self._change_status(ticket, client,
                                      Actor(ActorKind.CLIENT, client.user_id, client.display_name),
                                      TicketStatus.IN_PROGRESS, None, announce=False)
        count, previous = await self._messages.client_summary(ticket.id)
        await self._record_client_message(ticket, client, content)
        await self._notify.client_followup(ticket, client, content)
        # The first follow-up is always acknowledged; later ones once per burst.
        if count <= 1 or previous is None or self._clock() - previous > FOLLOWUP_ACK_AFTER:
            await self._notify.to_client(ticket, client, "followup_added",
                                        priority=PRIORITY_REPLY, reply_to=content.message_id)

    async def client_edited(self, client: Client, content: Content) -> Ticket | None:
        ticket = await self._tickets.by_message(content.chat_id, content.message_id)
        if ticket is None or ticket.client_id != client.id:
            return None
        await self.ensure_card(ticket, client)
        await self._record_client_message(ticket, client, content, kind=ContentKind.EDIT)
        await self._notify.staff_line(ticket, "client_edited", client=client, text=content.text)
        return ticket

    async def _record_client_message(
        self, ticket: Ticket, client: Client, content: Content,
        kind: ContentKind | None = None, at: datetime | None = None,
    ) -> None:
        now = at or self._clock()
        ticket.updated_at = now
        await self._messages.add(TicketMessage(
            ticket_id=ticket.id, author=MessageAuthor.CLIENT, author_user_id=client.user_id,
            author_name=client.display_name, kind=kind or content.kind, text=content.text,
            chat_id=content.chat_id, message_id=content.message_id, created_at=now,
        ), link=kind != ContentKind.EDIT)  # the message an edit changes is linked already

    async def _ask_which(self, client: Client, content: Content, tickets: Sequence[Ticket]) -> None:
        label = self._notify.texts.label
        rows = [
            [button(label(client.language, "add_to").format(number=t.number),
                    PickTicket(number=t.number, message_id=content.message_id).pack())]
            for t in tickets[:6]
        ]
        rows.append([button(label(client.language, "new_incident"),
                            PickTicket(number=0, message_id=content.message_id).pack())])
        await self._notify.to_client(None, client, "choose_ticket", tickets=tickets,
                                    priority=PRIORITY_REPLY, reply_to=content.message_id,
                                    keyboard=rows)

    def _may_reopen(self, ticket: Ticket) -> bool:
        ended = ticket.closed_at or ticket.resolved_at
        return (ended is not None
                and self._clock() - ended <= timedelta(days=self._config.reopen_days))

    # -- reading ----------------------------------------------------------------------

    async def _client_ticket(self, client: Client, number: int) -> Ticket:
        ticket = await self._tickets.by_number(number)
        # Someone else's incident looks exactly like a missing one.
        if ticket is None or ticket.client_id != client.id:
            raise DeskError("not_found", number=number)
        return ticket

    async def client_history(
        self, client: Client, number: int
    ) -> tuple[Ticket, Sequence[TicketEvent]]:
        """/status N: the client's own incident, or, for a company's coordinator, any of
        the company's."""
        ticket = await self._tickets.by_number(number)
        if ticket is not None and ticket.client_id != client.id:
            owner = await self.client_of(ticket)
            company = await self._company_of(owner)
            if company is None or not is_contact(company, client):
                ticket = None
        if ticket is None:
            raise DeskError("not_found", number=number)
        return ticket, await self.events(ticket)

    async def company_tickets(
        self, client: Client
    ) -> tuple[Company, list[tuple[Ticket, Client]], int]:
        """/my company: a coordinator's view of the company's incidents, newest first."""
        company = await self._company_of(client)
        if company is None or not is_contact(company, client):
            raise DeskError("not_contact")
        rows, total = await self._tickets.of_company(company.id, COMPANY_LIST_LIMIT)
        return company, [(t, c) for t, c in rows], total

    async def _company_of(self, client: Client) -> Company | None:
        if client.company_id is None:
            return None
        return await self._companies.by_id(client.company_id)

    async def _tell_contacts(self, ticket: Ticket, client: Client, company: Company) -> None:
        """A company's coordinators hear of each new incident of its people."""
        for contact in await self._clients.by_users(company.contacts or []):
            if contact.id != client.id:
                await self._notify.to_client(None, contact, "company_incident", incident=ticket,
                                             author=client.display_name, company=company.name)

    async def manager_of(self, ticket: Ticket) -> str | None:
        """The account manager of the incident's company, to mention when it goes wrong."""
        company = await self._company_of(await self.client_of(ticket))
        return company.account_manager if company is not None else None

    # -- the contract: scope and time spent ----------------------------------------------

    async def set_scope(self, number: int, actor: Actor, reason: str | None) -> Ticket:
        """`/scope N out <reason>` (None: `/scope N in`): whether the work is covered by
        the contract; the client is told plainly when it is not."""
        ticket = await self.ticket(number)
        client = await self.client_of(ticket)
        await self.ensure_card(ticket, client)
        ticket.out_of_scope = reason
        if reason is not None:
            await self._notify.to_client(ticket, client, "out_of_scope", reason=reason)
        await self._notify.staff_line(ticket, "scope_line", actor=actor)
        await self.refresh_card(ticket, client)
        return ticket

    async def log_time(self, ticket: Ticket, actor: Actor, minutes: int) -> None:
        """Time a staff member spent on the incident (the card shows the total)."""
        await self._tickets.add_time(ticket, TimeEntry(
            ticket_id=ticket.id, minutes=minutes, actor_id=actor.user_id,
            actor_name=actor.name or None, at=self._clock()))
        client = await self.client_of(ticket)
        await self.ensure_card(ticket, client)
        await self._notify.staff_line(ticket, "time_line", actor=actor, minutes=minutes)
        await self.refresh_card(ticket, client)

    async def events(self, ticket: Ticket) -> Sequence[TicketEvent]:
        """The incident's history, oldest first."""
        return await self._events.of_ticket(ticket.id)

    async def client_tickets(self, client: Client) -> tuple[Sequence[Ticket], int]:
        tickets = await self._tickets.for_client(client.id, self._config.list_limit)
        return tickets, await self._tickets.count_for_client(client.id)

    async def ticket(self, number: int) -> Ticket:
        ticket = await self._tickets.by_number(number)
        if ticket is None:
            raise DeskError("not_found", number=number)
        return ticket

    async def ticket_by_id(self, ticket_id: int) -> Ticket:
        return await self._tickets.by_id(ticket_id)

    async def ticket_in_thread(
        self, chat_id: int, topic_id: int | None, reply_to: int | None
    ) -> Ticket | None:
        """The incident a staff message in `chat_id` is about: the message it replies to (a
        message of that very chat: a reply in a private chat is no staff-group message id),
        or its topic (the staff group's)."""
        if reply_to is not None:
            ticket = await self._tickets.by_message(chat_id, reply_to)
            if ticket is not None:
                return ticket
        if topic_id is not None and chat_id == self._notify.staff_chat_id:
            return await self._tickets.by_topic(topic_id)
        return None

    # -- staff act ----------------------------------------------------------------------

    async def staff_answer(self, ticket: Ticket, actor: Actor, content: Content, *,
                           in_group: bool = False) -> None:
        """`in_group`: written in the incident's client group itself (bot/services/groups.py):
        recorded and shown in the staff thread, not sent to the group again."""
        client = await self.client_of(ticket)
        if in_group:
            await self.ensure_card(ticket, client)
        await self.answer_only(ticket, client, actor, content, in_group=in_group)
        if ticket.assignee_id is None:
            # Whoever answers an unassigned incident first has taken it.
            await self._event(ticket, actor, EventKind.ASSIGNED, None, actor.name)
            ticket.assignee_id, ticket.assignee_name = actor.user_id, actor.name
        if ticket.status in (TicketStatus.NEW, TicketStatus.TAKEN):
            await self._change_status(ticket, client, actor, TicketStatus.IN_PROGRESS, None,
                                      announce=False)

    async def answer_only(
        self, ticket: Ticket, client: Client, actor: Actor, content: Content, *,
        in_group: bool = False,
    ) -> None:
        """A staff answer recorded with the incident and sent to its client, nothing else
        changed (a problem's update reaches each linked incident so)."""
        now = self._clock()
        await self._messages.add(TicketMessage(
            ticket_id=ticket.id, author=MessageAuthor.STAFF, author_user_id=actor.user_id or 0,
            author_name=actor.name, kind=content.kind, text=content.text,
            chat_id=content.chat_id, message_id=content.message_id, created_at=now,
        ))
        if ticket.first_response_at is None:
            ticket.first_response_at = now
            await self._sla_record(ticket, "first_response")
        ticket.updated_at = now
        ticket.client_updated_at = now
        if in_group:
            await self._notify.staff_said_in_group(ticket, actor, content)
        else:
            await self._notify.staff_answer(ticket, client, actor, content)

    async def staff_note(self, ticket: Ticket, actor: Actor, content: Content) -> None:
        await self._messages.add(TicketMessage(
            ticket_id=ticket.id, author=MessageAuthor.NOTE, author_user_id=actor.user_id or 0,
            author_name=actor.name, kind=content.kind, text=content.text,
            chat_id=content.chat_id, message_id=content.message_id, created_at=self._clock(),
        ))

    async def take(self, number: int, actor: Actor) -> Ticket:
        ticket = await self.ticket(number)
        if not ticket.status.is_open:
            raise DeskError("ticket_not_open", number=number)
        if ticket.assignee_id == actor.user_id:
            raise DeskError("already_yours", number=number)
        client = await self.client_of(ticket)
        await self.ensure_card(ticket, client)
        await self._event(ticket, actor, EventKind.ASSIGNED, ticket.assignee_name, actor.name)
        ticket.assignee_id, ticket.assignee_name = actor.user_id, actor.name
        if ticket.status == TicketStatus.NEW:
            await self._change_status(ticket, client, actor, TicketStatus.TAKEN, None)
        else:  # work is under way already: only the person changes
            await self._notify.to_client(ticket, client, "assigned", signature=actor.name)
            await self._notify.staff_line(ticket, "assigned_line", actor=actor)
            await self.refresh_card(ticket, client)
        return ticket

    async def set_status(
        self, number: int, actor: Actor, status: TicketStatus, text: str | None
    ) -> Ticket:
        if status == TicketStatus.CLOSED:
            return await self.close(number, actor, text)
        ticket = await self.ticket(number)
        if not ticket.status.is_open:
            raise DeskError("ticket_not_open", number=number)
        if ticket.status == status:
            raise DeskError("same_status", number=number)
        client = await self.client_of(ticket)
        if status == TicketStatus.RESOLVED:
            ticket.resolution = text or ticket.resolution
        await self._change_status(ticket, client, actor, status, text)
        return ticket

    async def close(self, number: int, actor: Actor, text: str | None,
                    minutes: int | None = None) -> Ticket:
        """Closed, with what was done (`text`) and, when given, the time it took; from
        "waiting for the client" (with `confirm_days`) resolved first: the client may still
        object, `close_unobjected` closes it later."""
        ticket = await self.ticket(number)
        if ticket.status == TicketStatus.CLOSED:
            raise DeskError("ticket_not_open", number=number)
        if minutes:
            await self.log_time(ticket, actor, minutes)
        client = await self.client_of(ticket)
        ticket.resolution = text or ticket.resolution
        status = (TicketStatus.RESOLVED
                  if ticket.status == TicketStatus.WAITING and self._config.confirm_days
                  else TicketStatus.CLOSED)
        await self._change_status(ticket, client, actor, status, text)
        return ticket

    async def close_unobjected(self, limit: int = 200) -> list[int]:
        """Resolved incidents the client did not object to within `confirm_days`: closed
        (the client told, with the rating request); returns their numbers."""
        days = self._config.confirm_days
        if not days:
            return []
        tickets = await self._tickets.resolved_before(self._clock() - timedelta(days=days),
                                                      limit)
        for ticket in tickets:
            client = await self.client_of(ticket)
            note = self._notify.texts.label(client.language, "auto_closed").format(days=days)
            await self._change_status(ticket, client, Actor.system(), TicketStatus.CLOSED,
                                      note)
        return [t.number for t in tickets]

    async def reopen(self, number: int, actor: Actor, text: str | None = None,
                     client: Client | None = None) -> Ticket:
        ticket = await self._client_ticket(client, number) if client else await self.ticket(number)
        if ticket.status.is_open:
            raise DeskError("ticket_open", number=number)
        if client is not None and not self._may_reopen(ticket):
            raise DeskError("reopen_expired", number=number, days=self._config.reopen_days)
        owner = client or await self.client_of(ticket)
        await self._reopen(ticket, owner, actor, text)
        return ticket

    async def _reopen(self, ticket: Ticket, client: Client, actor: Actor, text: str | None) -> None:
        ticket.reopen_count += 1
        ticket.resolution_kind = None  # an FAQ answer that did not hold is no deflection
        ticket.resolved_at = ticket.closed_at = None
        status = TicketStatus.TAKEN if ticket.assignee_id else TicketStatus.NEW
        await self._event(ticket, actor, EventKind.REOPENED, ticket.status, status, text)
        await self._change_status(ticket, client, actor, status, text, event=False,
                                  reopened=True)

    async def resolve_by_faq(self, ticket: Ticket, client: Client, article_id: str) -> None:
        """The client pressed "This solved it" on an FAQ article: resolved, counted as
        deflected (`resolution_kind` "faq"); the client can still reopen it."""
        if ticket.client_id != client.id or not ticket.status.is_open:
            raise DeskError("ticket_not_open", number=ticket.number)
        actor = Actor(ActorKind.CLIENT, client.user_id, client.display_name)
        await self._event(ticket, actor, EventKind.FAQ_SOLVED, None, article_id[:64])
        ticket.resolution_kind = ResolutionKind.FAQ
        ticket.resolution = ticket.resolution or f"FAQ: {article_id}"
        await self._change_status(ticket, client, actor, TicketStatus.RESOLVED, None)

    async def set_severity(self, number: int, actor: Actor, severity: Severity) -> Ticket:
        ticket = await self.ticket(number)
        if ticket.severity == severity:
            raise DeskError("same_severity", number=number)
        client = await self.client_of(ticket)
        await self.ensure_card(ticket, client)
        old = ticket.severity
        await self._event(ticket, actor, EventKind.SEVERITY, old, severity)
        ticket.severity = severity
        ticket.severity_source = actor.kind
        ticket.updated_at = ticket.client_updated_at = self._clock()
        await self._sla_reschedule(ticket, new_target=True)
        await self._notify.to_client(ticket, client, "severity_changed", old=old,
                                    promise=self._promise(ticket))
        await self._notify.staff_line(ticket, "severity_line", actor=actor, old=old)
        await self.refresh_card(ticket, client)
        return ticket

    async def client_urgent(self, client: Client, number: int) -> Ticket:
        """The client pressed "This is urgent": raised to critical, on-duty staff alerted.

        Only the incident's own client, only while it is open, and once per incident.
        """
        ticket = await self._client_ticket(client, number)
        if not ticket.status.is_open:
            raise DeskError("ticket_not_open", number=number)
        if await self._events.happened(ticket.id, EventKind.URGENT):
            raise DeskError("already_urgent", number=number)
        actor = Actor(ActorKind.CLIENT, client.user_id, client.display_name)
        old = ticket.severity
        await self._event(ticket, actor, EventKind.URGENT, old, Severity.CRITICAL)
        if old != Severity.CRITICAL:
            await self._event(ticket, actor, EventKind.SEVERITY, old, Severity.CRITICAL)
            ticket.severity = Severity.CRITICAL
            ticket.severity_source = "client"
            await self._sla_reschedule(ticket, new_target=True)
        ticket.updated_at = ticket.client_updated_at = self._clock()
        await self._notify.to_client(ticket, client, "urgent_accepted", old=old,
                                    promise=self._promise(ticket),
                                    signature=self._notify.worker(ticket))
        # The on-duty engineers are paged (again, when it was critical already), and the
        # assignee and the company's account manager with them.
        mentions: list[int | str] = list(self._sla.config.on_duty) if self._sla else []
        manager = await self.manager_of(ticket)
        for extra in (ticket.assignee_id, mention(manager) if manager else None):
            if extra is not None and extra not in mentions:
                mentions.append(extra)
        await self._notify.staff_line(ticket, "urgent_line", client=client, old=old,
                                     mentions=mentions)
        await self.refresh_card(ticket, client)
        return ticket

    # -- SLA timers (bot/domain/sla.py) ----------------------------------------------------------

    def level_of(self, company: Company) -> Level | None:
        """The service level the company's contract promises now (None: no SLA at all)."""
        if self._sla is None:
            return None
        policy = self._sla.for_terms(terms_of(company.sla, company.work_time))
        now = self._clock()
        return Level([policy.promise(severity, now) for severity in Severity], policy.desk,
                     own=policy is not self._sla)

    async def reapply_level(self, company: Company) -> int:
        """The company's open incidents moved to its current level, timers recomputed
        (`/org sla ... --reapply`); returns how many."""
        terms = terms_of(company.sla, company.work_time)
        rows = await self._tickets.open_of_company(company.id, REAPPLY_LIMIT)
        for ticket, client in rows:
            ticket.sla_terms = dict(terms) if terms else None
            await self._sla_reschedule(ticket, new_target=True)
            await self.refresh_card(ticket, client)
        return len(rows)


    async def _terms_of(self, client: Client) -> dict[str, Any] | None:
        """The service level of the client's company now (None: the desk's)."""
        if client.company_id is None:
            return None
        company = await self._companies.by_id(client.company_id)
        terms = terms_of(company.sla, company.work_time) if company is not None else None
        return dict(terms) if terms else None

    def _policy(self, ticket: Ticket) -> SlaPolicy | None:
        """The level the incident runs under: its company's when it was registered."""
        return self._sla.for_terms(ticket.sla_terms) if self._sla is not None else None

    def _promise(self, ticket: Ticket) -> Promise | None:
        policy = self._policy(ticket)
        return policy.promise(ticket.severity, self._clock()) if policy is not None else None

    async def _sla_pauses(self, ticket: Ticket) -> list[Pause]:
        return pauses_from_events(await self._events.of_ticket(ticket.id))

    async def _sla_reschedule(self, ticket: Ticket, *, new_target: bool = False) -> None:
        policy = self._policy(ticket)
        if policy is not None:
            policy.schedule(ticket, await self._sla_pauses(ticket), self._clock(),
                              new_target=new_target)

    async def _sla_record(self, ticket: Ticket, target: str) -> None:
        """First response given / resolved: the SLA time spent and whether it was met."""
        policy = self._policy(ticket)
        if policy is not None and getattr(ticket, f"{target}_met") is None:
            policy.record(ticket, target, await self._sla_pauses(ticket), self._clock())

    async def _sla_status(self, ticket: Ticket, old: TicketStatus, new: TicketStatus) -> None:
        """Pause, resume, resolution and reopening, as the status changes."""
        if self._sla is None or old == new:
            return
        ticket.paused_since = (ticket.paused_since or self._clock()
                               if new in WAITING_STATUSES else None)
        if not new.is_open:
            await self._sla_record(ticket, "resolution")
        elif not old.is_open:  # reopened: the resolution did not hold
            ticket.resolution_met = ticket.resolution_seconds = None
        if (old in PAUSED_STATUSES) != (new in PAUSED_STATUSES):
            await self._sla_reschedule(ticket)

    async def _change_status(
        self,
        ticket: Ticket,
        client: Client,
        actor: Actor,
        status: TicketStatus,
        text: str | None,
        *,
        announce: bool = True,
        event: bool = True,
        reopened: bool = False,
    ) -> None:
        if status.is_open:  # someone works on it: it needs its place in the staff group
            await self.ensure_card(ticket, client)
        old = ticket.status
        now = self._clock()
        if event:
            await self._event(ticket, actor, EventKind.STATUS, old, status, text)
        ticket.status = status
        ticket.updated_at = now
        if status == TicketStatus.RESOLVED:
            ticket.resolved_at = now
        elif status == TicketStatus.CLOSED:
            ticket.closed_at = now
            ticket.resolved_at = ticket.resolved_at or now
        if text and actor.kind == ActorKind.STAFF and ticket.first_response_at is None:
            ticket.first_response_at = now  # the reply text reached the client with the news
            await self._sla_record(ticket, "first_response")
        await self._sla_status(ticket, old, status)
        told = False  # the closure and the rating request go out as one message
        if status == TicketStatus.CLOSED and old != TicketStatus.CLOSED and self._on_closed:
            closure = self._notify.closure(client, actor, text) if announce else None
            told = await self._on_closed(ticket, client, closure)
        if announce:
            ticket.client_updated_at = now
            if not told:
                message = "reopened" if reopened else "status_changed"
                await self._notify.status_changed(ticket, client, actor, old, text,
                                                  message=message,
                                                  confirm_days=self._config.confirm_days
                                                  if status == TicketStatus.RESOLVED else 0)
            await self._notify.staff_line(ticket, "status_line", actor=actor, old=old, text=text,
                                         reopened=reopened)
        await self.refresh_card(ticket, client)

    async def refresh_card(self, ticket: Ticket, client: Client) -> None:
        """The staff card shows the incident as it is now (with the client's first words)."""
        first = await self._messages.first_from_client(ticket.id)
        company = await self._company_of(client)
        await self._notify.refresh_card(ticket, client, first.text if first else "",
                                        services=company.services if company else None,
                                        links=await self.card_links(ticket))

    async def record(self, ticket: Ticket, actor: Actor, kind: EventKind, old: str | None,
                     new: str | None) -> None:
        """An event in the incident's audit trail (for the problems desk)."""
        await self._event(ticket, actor, kind, old, new)

    async def _event(
        self,
        ticket: Ticket,
        actor: Actor,
        kind: EventKind,
        old: str | None,
        new: str | None,
        note: str | None = None,
    ) -> None:
        await self._events.add(TicketEvent(
            ticket_id=ticket.id, at=self._clock(), actor_kind=actor.kind, actor_id=actor.user_id,
            actor_name=actor.name or None, kind=kind, old_value=old, new_value=new, note=note,
        ))

    async def open_tickets_by_due(
        self, limit: int = 50
    ) -> list[tuple[Ticket, Client, tuple[str, timedelta] | None]]:
        """Open incidents, soonest SLA due first, each with (target, time left or overdue)."""
        now = self._clock()
        rows = await self._tickets.open_soonest_due_first(limit)
        return [(t, c, self._sla.remaining(t, now) if self._sla is not None else None)
                for t, c in rows]

