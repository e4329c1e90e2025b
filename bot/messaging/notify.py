"""What people are told when something happens to an incident: rendered, then written to the outbox.

The staff side of an incident is a forum topic when the staff group has topics
(the card is its first message), or a card message whose replies form the thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain.enums import TicketStatus
from bot.domain.sla import Promise
from bot.domain.storable import storable
from bot.messaging.callbacks import (
    ClientAction,
    CompanyMove,
    ProblemAction,
    ProblemLink,
    ProblemSuggest,
    TicketAction,
    UrgentAction,
)
from bot.messaging.outbox import (
    PRIORITY_FOLLOWUP,
    PRIORITY_NOTICE,
    PRIORITY_REPLY,
    PRIORITY_STAFF,
    Keyboard,
    OutboxWriter,
    button,
)
from bot.messaging.texts import Texts
from storage.models import Client, Company, Problem, Ticket

CARD_TEXT_LIMIT = 3000


@dataclass(frozen=True)
class CardLinks:
    """What an incident's card shows of problems: the problem it is (`problem`, with how
    many incidents are linked), or the open problem it may be linked to (`offer`)."""

    problem: Problem | None = None
    linked: int = 0
    offer: int | None = None


@dataclass(frozen=True)
class Actor:
    kind: str  # client | staff | system
    user_id: int | None
    name: str

    @classmethod
    def system(cls) -> Actor:
        return cls("system", None, "")


@dataclass(frozen=True)
class Closure:
    """What the client is told of an incident's closure: who closed it and their words."""

    signature: str
    text: str | None


@dataclass(frozen=True)
class Content:
    """A Telegram message reduced to what the desk keeps of it."""

    kind: str  # text, photo, document, video, voice, sticker, contact... (see handlers._parse)
    text: str  # the text or the caption
    chat_id: int
    message_id: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", storable(self.text))

    @property
    def is_text(self) -> bool:
        return self.kind == "text"


def answers_to(ticket: Ticket | None, client: Client) -> tuple[int, bool]:
    """Where the client hears of the incident: its client group (as replies to the
    reporting message) when it was reported there, else their private chat; and whether
    that is the group."""
    if ticket is not None and ticket.group_chat_id is not None:
        return ticket.group_chat_id, True
    return client.chat_id, False


class Notifier:
    def __init__(
        self,
        out: OutboxWriter,
        texts: Texts,
        *,
        staff_chat_id: int,
        forum: bool,
        signature: str,
    ) -> None:
        self.out = out
        self.texts = texts
        self.staff_chat_id = staff_chat_id
        self.forum = forum
        self.signature = signature

    # -- the staff side -------------------------------------------------------------

    def _staff_thread(self, ticket: Ticket) -> dict[str, Any]:
        if self.forum:
            return {"topic_of": ticket.id}
        if ticket.card_outbox_id is not None:
            return {"reply_to": {"$message_of": ticket.card_outbox_id}}
        return {}

    def _card_keyboard(self, ticket: Ticket, links: CardLinks) -> Keyboard:
        status = ticket.status
        actions = []
        if status.is_open and ticket.assignee_id is None:
            actions.append("take")
        actions.append("close" if status != TicketStatus.CLOSED else "reopen")
        lang = self.texts.default_language
        rows = [[
            button(self.texts.label(lang, action),
                   TicketAction(action=action, number=ticket.number).pack())
            for action in actions
        ]]
        if status.is_open:  # severity override: the two other levels
            names = self.texts.label(lang, "set_severity")
            rows.append([
                button(names[level], TicketAction(action="sev_" + level,
                                                  number=ticket.number).pack())
                for level in ("critical", "normal", "low") if level != ticket.severity
            ])
        if status.is_open and ticket.problem_number is not None:
            rows.append([button(
                self.texts.label(lang, "unlink").format(number=ticket.problem_number),
                TicketAction(action="unlink", number=ticket.number).pack())])
        elif status.is_open and links.offer is not None:
            rows.append([button(
                self.texts.label(lang, "link_to").format(number=links.offer),
                ProblemLink(problem=links.offer, first=ticket.number,
                            last=ticket.number).pack())])
        return rows

    def _card(self, ticket: Ticket, client: Client, text: str, services: str | None,
              links: CardLinks) -> str:
        return self.texts.staff(
            "card", ticket=ticket, client=client, text=text[:CARD_TEXT_LIMIT],
            cut=len(text) > CARD_TEXT_LIMIT, services=services, problem=links.problem,
            linked=links.linked,
        )

    async def ticket_opened(
        self,
        ticket: Ticket,
        client: Client,
        content: Content,
        promise: Promise | None = None,
        *,
        surge: bool = False,
        services: str | None = None,
        links: CardLinks | None = None,
    ) -> None:
        """The client's confirmation, and the staff card unless a surge defers it;
        `services`: what the company's contract covers (shown on the card)."""
        if not surge:
            await self.post_card(ticket, client, content, services=services, links=links)
        await self._ack_registered(ticket, client, content, promise)

    async def post_card(self, ticket: Ticket, client: Client, content: Content, *,
                        services: str | None = None, links: CardLinks | None = None) -> None:
        """The incident's place in the staff group: a topic with the card, or a card."""
        staff = self.staff_chat_id
        if self.forum:
            title = self.texts.staff_plain("topic_title", ticket=ticket, client=client)
            await self.out.create_topic(staff, title, ticket.id)
        links = links or CardLinks()
        card = await self.out.send_text(
            staff, self._card(ticket, client, content.text, services, links),
            priority=PRIORITY_STAFF, ticket_id=ticket.id,
            keyboard=self._card_keyboard(ticket, links),
            topic_of=ticket.id if self.forum else None,
        )
        ticket.card_outbox_id = card.id
        if len(content.text) > CARD_TEXT_LIMIT:
            await self.out.send_text(
                staff, self.texts.staff("text_rest", text=content.text[CARD_TEXT_LIMIT:]),
                priority=PRIORITY_STAFF, ticket_id=ticket.id, **self._staff_thread(ticket),
            )
        if not content.is_text:
            await self.out.copy(
                staff, content.chat_id, content.message_id, priority=PRIORITY_STAFF,
                ticket_id=ticket.id, **self._staff_thread(ticket),
            )

    async def surge_digest(self, tickets: list[tuple[Ticket, Client]], more: int,
                           problem: int | None = None) -> None:
        """`problem`: the open problem the listed incidents may be linked to (one button)."""
        keyboard: Keyboard | None = None
        numbers = [t.number for t, _ in tickets if t.problem_number is None]
        if problem is not None and numbers:
            keyboard = [[button(
                self.texts.label(self.texts.default_language, "link_to").format(number=problem),
                ProblemLink(problem=problem, first=min(numbers), last=max(numbers)).pack())]]
        await self.out.send_text(
            self.staff_chat_id, self.texts.staff("surge_digest", rows=tickets, more=more),
            priority=PRIORITY_STAFF, keyboard=keyboard,
        )

    async def refresh_card(self, ticket: Ticket, client: Client, text: str, *,
                           services: str | None = None, links: CardLinks | None = None) -> None:
        if ticket.card_outbox_id is None:
            return
        links = links or CardLinks()
        await self.out.edit_text(
            self.staff_chat_id, ticket.card_outbox_id,
            self._card(ticket, client, text, services, links),
            keyboard=self._card_keyboard(ticket, links), ticket_id=ticket.id,
        )

    # -- problems (bot/services/problems.py) -----------------------------------------

    def _alert_html(self, problem: Problem, company: str | None) -> str:
        return self.texts.staff("problem_alert", problem=problem, company=company)

    async def problem_alert(self, problem: Problem, company: str | None) -> None:
        """A problem monitoring opened: its message in the staff group (replies to it go to
        every linked client)."""
        row = await self.out.send_text(self.staff_chat_id, self._alert_html(problem, company),
                                       priority=PRIORITY_STAFF)
        problem.card_outbox_id = row.id

    async def refresh_problem_alert(self, problem: Problem, company: str | None) -> None:
        if problem.card_outbox_id is not None:
            await self.out.edit_text(self.staff_chat_id, problem.card_outbox_id,
                                     self._alert_html(problem, company))

    async def problem_line(self, problem: Problem, message: str, *, offer_close: bool = False,
                           **context: Any) -> None:
        """A line about a problem where staff follow it: its incident's thread, or (opened by
        monitoring) a reply to its alert message; `offer_close`: the "close" button."""
        keyboard: Keyboard | None = None
        if offer_close:
            keyboard = [[button(self.texts.label(self.texts.default_language,
                                                 "close_problem").format(number=problem.number),
                                ProblemAction(action="close", number=problem.number).pack())]]
        html = self.texts.staff(message, problem=problem, **context)
        if problem.card_outbox_id is not None and problem.ticket_id is None:
            await self.out.send_text(self.staff_chat_id, html, priority=PRIORITY_STAFF,
                                     keyboard=keyboard,
                                     reply_to={"$message_of": problem.card_outbox_id})
        elif problem.ticket_id is not None:
            thread: dict[str, Any] = ({"topic_of": problem.ticket_id} if self.forum else {})
            await self.out.send_text(self.staff_chat_id, html, priority=PRIORITY_STAFF,
                                     ticket_id=problem.ticket_id, keyboard=keyboard, **thread)
        else:
            await self.out.send_text(self.staff_chat_id, html, priority=PRIORITY_STAFF,
                                     keyboard=keyboard)

    async def problem_suggestion(self, tickets: list[Ticket]) -> None:
        """Similar new incidents from different clients: one tap makes the first a problem
        and links the others."""
        first = tickets[0]
        await self.out.send_text(
            self.staff_chat_id, self.texts.staff("problem_suggestion", tickets=tickets),
            priority=PRIORITY_STAFF,
            keyboard=[[button(self.texts.label(self.texts.default_language,
                                               "accept_suggestion").format(number=first.number),
                              ProblemSuggest(number=first.number).pack())]])

    async def known_problem(self, ticket: Ticket, client: Client, content: Content) -> None:
        """A new report of a problem we work on already: told so at once, with "mine is
        something else"."""
        keyboard = [[button(self.texts.label(client.language, "other_issue"),
                            ClientAction(action="other", number=ticket.number).pack())]]
        await self.to_client(ticket, client, "known_problem", priority=PRIORITY_REPLY,
                             reply_to=content.message_id, keyboard=keyboard)

    async def reply_staff(self, chat_id: int, thread_id: int | None, html: str) -> None:
        """An answer to a staff member's command, where they typed it."""
        await self.out.send_text(chat_id, html, priority=PRIORITY_REPLY, thread_id=thread_id)

    async def company_move_asked(
        self, client: Client, company: Company, before: Company | None
    ) -> None:
        """A client of `before` came through `company`'s invite link: staff confirm the
        move or keep them where they are (the move waits until then)."""
        lang = self.texts.default_language

        def one(action: str) -> dict[str, str]:
            return button(self.texts.label(lang, "move_" + action), CompanyMove(
                action=action, client=client.id, company=company.id).pack())

        await self.out.send_text(
            self.staff_chat_id, self.texts.staff("org_move_ask", client=client,
                                                 company=company, before=before),
            priority=PRIORITY_STAFF, keyboard=[[one("confirm"), one("keep")]])

    async def staff_line(
        self, ticket: Ticket, message: str, *, keyboard: Keyboard | None = None, **context: Any
    ) -> None:
        """A short line in the incident's thread (who did what), with buttons if given.

        An incident with no card yet (registered during a surge) has no thread: nothing is
        posted, the digest and /tickets show it."""
        if ticket.card_outbox_id is None:
            return
        await self.out.send_text(
            self.staff_chat_id, self.texts.staff(message, ticket=ticket, **context),
            priority=PRIORITY_STAFF, ticket_id=ticket.id, keyboard=keyboard,
            **self._staff_thread(ticket),
        )

    async def client_followup(self, ticket: Ticket, client: Client, content: Content) -> None:
        header = self.texts.staff("from_client", ticket=ticket, client=client, text=content.text)
        await self._into_thread(ticket, header, content)

    async def staff_said_in_group(self, ticket: Ticket, actor: Actor, content: Content) -> None:
        """A staff member answered in the client group itself: the incident's thread shows
        it (the group has it already)."""
        header = self.texts.staff("group_staff_answer", ticket=ticket, actor=actor,
                                  text=content.text)
        await self._into_thread(ticket, header, content)

    async def _into_thread(self, ticket: Ticket, header: str, content: Content) -> None:
        """What someone wrote, into the incident's thread: the text, or the media copied
        with the header as its caption."""
        if content.is_text:
            await self.out.send_text(
                self.staff_chat_id, header, priority=PRIORITY_FOLLOWUP, ticket_id=ticket.id,
                **self._staff_thread(ticket),
            )
        else:
            await self.out.copy(
                self.staff_chat_id, content.chat_id, content.message_id,
                priority=PRIORITY_FOLLOWUP, ticket_id=ticket.id, caption_html=header,
                **self._staff_thread(ticket),
            )

    # -- the client side ------------------------------------------------------------

    async def to_client(
        self,
        ticket: Ticket | None,
        client: Client,
        message: str,
        *,
        priority: int = PRIORITY_NOTICE,
        reply_to: int | None = None,
        keyboard: Keyboard | dict[str, Any] | None = None,
        **context: Any,
    ) -> None:
        html = self.texts.client(client.language, message, ticket=ticket, **context)
        chat_id, in_group = answers_to(ticket, client)
        if in_group and ticket is not None:  # the buttons go too: only the reporter's work
            reply_to = reply_to or ticket.group_message_id
        await self.out.send_text(
            chat_id, html, priority=priority, ticket_id=ticket.id if ticket else None,
            reply_to=reply_to, keyboard=keyboard,
        )

    async def to_group(
        self, chat_id: int, message: str, *, reply_to: int | None = None, **context: Any
    ) -> None:
        """A message to a client group as a whole (in the desk's language)."""
        html = self.texts.client(self.texts.default_language, message, ticket=None, **context)
        await self.out.send_text(chat_id, html, priority=PRIORITY_REPLY, reply_to=reply_to)

    async def _ack_registered(
        self, ticket: Ticket, client: Client, content: Content, promise: Promise | None = None
    ) -> None:
        # With SLA targets: the promise in plain words and the "This is urgent" button.
        keyboard: Keyboard | None = None
        if promise is not None:
            keyboard = [[button(self.texts.label(client.language, "urgent"),
                                UrgentAction(number=ticket.number).pack())]]
        await self.to_client(
            ticket, client, "registered", priority=PRIORITY_REPLY, reply_to=content.message_id,
            promise=promise, keyboard=keyboard,
        )

    def worker(self, ticket: Ticket) -> str | None:
        """Who works on the incident, as the client may be told (None: no name to give)."""
        return ticket.assignee_name if self.signature == "name" else None

    def closure(self, client: Client, actor: Actor, text: str | None) -> Closure:
        return Closure(self._signature(client, actor), text)

    def _signature(self, client: Client, actor: Actor) -> str:
        if self.signature == "name" and actor.name:
            return actor.name
        return str(self.texts.label(client.language, "support_team"))

    async def staff_answer(
        self, ticket: Ticket, client: Client, actor: Actor, content: Content
    ) -> None:
        context = {"ticket": ticket, "signature": self._signature(client, actor)}
        if content.is_text:
            await self.to_client(
                ticket, client, "staff_answer", text=content.text,
                signature=context["signature"],
            )
        else:
            caption = self.texts.client(client.language, "staff_answer", text=content.text,
                                        **context)
            chat_id, in_group = answers_to(ticket, client)
            await self.out.copy(
                chat_id, content.chat_id, content.message_id, priority=PRIORITY_NOTICE,
                ticket_id=ticket.id, caption_html=caption,
                reply_to=ticket.group_message_id if in_group else None,
            )

    async def status_changed(
        self,
        ticket: Ticket,
        client: Client,
        actor: Actor,
        old: str,
        text: str | None,
        *,
        message: str = "status_changed",
        confirm_days: int = 0,
    ) -> None:
        """`confirm_days`: a resolved incident closes by itself after so many days (told with
        the resolution)."""
        keyboard: Keyboard | None = None
        if ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            keyboard = [[button(
                self.texts.label(client.language, "not_fixed"),
                ClientAction(action="notfixed", number=ticket.number).pack(),
            )]]
        await self.to_client(
            ticket, client, message, old=old, text=text,
            signature=self._signature(client, actor), keyboard=keyboard,
            **({"confirm_days": confirm_days} if confirm_days else {}),
        )
