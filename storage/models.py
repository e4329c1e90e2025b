"""SQLAlchemy 2 typed models. Every schema change comes with an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.operators import OperatorType
from sqlalchemy.types import TypeEngine

from bot.domain.enums import (
    ActorKind,
    CampaignState,
    ContentKind,
    DeliveryState,
    EventKind,
    MessageAuthor,
    OutboxStatus,
    RatingState,
    Severity,
    TicketStatus,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the backend stores (SQLite keeps naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


E = TypeVar("E", bound=StrEnum)


class StrEnumType(TypeDecorator[E]):
    """A vocabulary (bot.domain.enums) kept as its plain strings in a VARCHAR column: the
    schema is that of `String(length)`; values written are checked, enums come out."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum
        # A dict lookup: reports read thousands of these per query.
        self._members: dict[str, E] = {member.value: member for member in enum}

    def _member(self, value: str) -> E:
        member = self._members.get(value)
        if member is None:
            raise ValueError(f"{value!r} is not a {self.enum.__name__}")
        return member

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self._member(value).value

    def coerce_compared_value(self, op: OperatorType | None, value: Any) -> TypeEngine[Any]:
        # Written values must be of the vocabulary; a LIKE pattern is compared as text.
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        return self if all(v in self._members for v in values) else self.impl_instance

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self._member(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        int: BigInteger(),
    }


class Counter(Base):
    """Gapless sequences (ticket numbers): incremented in the transaction that uses the value."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class Client(Base):
    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(unique=True)
    chat_id: Mapped[int]
    first_name: Mapped[str] = mapped_column(String(128), default="")
    last_name: Mapped[str | None] = mapped_column(String(128))
    username: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    phone: Mapped[str | None] = mapped_column(String(32))
    # The company's name, kept in step with `company_id` by bot/services/companies.py (the only
    # writer): every staff template shows it without a join.
    company: Mapped[str | None] = mapped_column(String(200))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    contact_asked: Mapped[bool] = mapped_column(default=False)
    # Set by /new: the next message starts a separate incident.
    wants_new_ticket: Mapped[bool] = mapped_column(default=False)
    # Set when Telegram answers 403 (the client blocked the bot); cleared when they write again.
    unreachable_since: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # Flood control (bot/services/flood.py): the token bucket as of `flood_at`, whether the
    # client was told their messages are being collected, and a staff /mute.
    flood_tokens: Mapped[float | None] = mapped_column(Float)
    flood_at: Mapped[datetime | None]
    flood_told: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    muted_until: Mapped[datetime | None]
    # Came through another company's invite link: the move waits for staff to confirm it
    # (bot/services/companies.py); None: nothing pending.
    pending_company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL"))

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or f"id{self.user_id}"


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[int] = mapped_column(unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    status: Mapped[TicketStatus] = mapped_column(StrEnumType(TicketStatus, 16))
    severity: Mapped[Severity] = mapped_column(StrEnumType(Severity, 16))
    subject: Mapped[str] = mapped_column(String(200))
    assignee_id: Mapped[int | None]
    assignee_name: Mapped[str | None] = mapped_column(String(200))
    # Forum topic of the incident in the staff group (None when the group has no topics).
    topic_id: Mapped[int | None]
    # The staff-group card: the outbox row that posts it (its message id is known once sent).
    card_outbox_id: Mapped[int | None]
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    resolution: Mapped[str | None] = mapped_column(Text)
    # How the incident was resolved when not by staff: "faq" = the client's FAQ answer (deflected).
    resolution_kind: Mapped[str | None] = mapped_column(String(16))
    # Where the incident came from when not a client's message: "quality_callback" (the client
    # pressed "Let's talk" on a quarterly quality check). None for ordinary incidents.
    origin: Mapped[str | None] = mapped_column(String(24))
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # -- SLA (see bot/domain/sla.py) --
    # Who set the severity: auto (the classifier), staff (/sev, card buttons), client (urgent).
    severity_source: Mapped[str] = mapped_column(String(8), default="auto", server_default="auto")
    # When each target falls due and when to warn (warn_at of it); None while paused, met,
    # or when the incident predates SLA tracking. The sweep reads only these columns.
    first_response_due: Mapped[datetime | None]
    first_response_warn_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    resolution_warn_due: Mapped[datetime | None]
    # When the staff group was warned / told of a breach: each fires once.
    first_response_warned_at: Mapped[datetime | None]
    first_response_breached_at: Mapped[datetime | None]
    resolution_warned_at: Mapped[datetime | None]
    resolution_breached_at: Mapped[datetime | None]
    # Stored when it happens: SLA time spent (business time, pauses excluded) and the verdict.
    first_response_seconds: Mapped[int | None]
    first_response_met: Mapped[bool | None]
    resolution_seconds: Mapped[int | None]
    resolution_met: Mapped[bool | None]
    # Set while the incident waits for the client (the SLA clock is stopped).
    paused_since: Mapped[datetime | None]
    # The last message about the incident to the client (status reminders count from it).
    client_updated_at: Mapped[datetime | None]
    # Client messages joined while the client was over their limit, not yet announced to
    # the staff group (one combined line a minute: bot/services/flood.py).
    held_messages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The company's service level when the incident was registered ({"sla": {severity:
    # {...}}, "desk": {...}}, bot/domain/sla.py `Terms`); None: the desk's own. A later
    # change of the company's level leaves it unless applied again (`/org sla ... --reapply`).
    sla_terms: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Why the work is outside the contract (`/scope N out <reason>`); None: within it.
    out_of_scope: Mapped[str | None] = mapped_column(Text)
    # Time staff logged on it (time_entries), in minutes.
    minutes_spent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The problem this incident is one report of (problems.number); None: on its own.
    problem_number: Mapped[int | None] = mapped_column(
        ForeignKey("problems.number", use_alter=True), index=True)
    # A client group's incident (bot/services/groups.py): the group where answers go, as
    # replies to the reporting message. None: answers go to the client's private chat.
    group_chat_id: Mapped[int | None] = mapped_column(index=True)
    group_message_id: Mapped[int | None]

    __table_args__ = (
        Index("ix_tickets_client_status", "client_id", "status"),
        # By status; with the severity, the reports' open incidents per severity read the
        # index alone.
        Index("ix_tickets_status_severity", "status", "severity"),
    )


class TicketMessage(Base):
    """Everything said about an incident: by the client, by staff to the client, internal notes."""

    __tablename__ = "ticket_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    author: Mapped[MessageAuthor] = mapped_column(StrEnumType(MessageAuthor, 8))
    author_user_id: Mapped[int]
    author_name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[ContentKind] = mapped_column(StrEnumType(ContentKind, 16))
    text: Mapped[str] = mapped_column(Text, default="")
    chat_id: Mapped[int]
    message_id: Mapped[int]
    created_at: Mapped[datetime]


class MessageLink(Base):
    """Which incident a Telegram message belongs to: replies are routed through this map.

    Mostly one incident a message; a client group's coalesced message (several queued
    notifications sent as one when the group reached its limit: bot/telegram/delivery.py)
    belongs to each incident it speaks of, and a reply to it is routed by
    bot/services/groups.py `GroupDesk._thread_ticket`."""

    __tablename__ = "message_links"
    chat_id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True,
                                           index=True)


class TicketEvent(Base):
    """The audit trail: who changed what, when, from which value to which."""

    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_kind: Mapped[ActorKind] = mapped_column(StrEnumType(ActorKind, 8))
    actor_id: Mapped[int | None]
    actor_name: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[EventKind] = mapped_column(StrEnumType(EventKind, 24))
    old_value: Mapped[str | None] = mapped_column(String(64))
    new_value: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


class InboxUpdate(Base):
    """Updates recorded before they are handled: duplicates are ignored, unfinished ones resumed."""

    __tablename__ = "inbox"
    update_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    chat_id: Mapped[int | None]
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # PostgreSQL: the worker (`workers.id`) that holds the update until it is handled; when
    # that worker stops beating, another one takes the update over (bot/telegram/lease.py).
    claimed_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_inbox_pending", "handled_at", "update_id"),)


class Worker(Base):
    """PostgreSQL: each running worker process and its last heartbeat (the server's time):
    a worker silent for a few seconds is dead, and its updates go to another."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pid: Mapped[int]
    host: Mapped[str] = mapped_column(String(255))
    beat_at: Mapped[datetime]


class GroupSend(Base):
    """PostgreSQL: the leader's sends to groups in the last minutes (the server's time), so
    that a new leader keeps to the per-group limit (bot/telegram/delivery.py)."""

    __tablename__ = "group_sends"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chat_id: Mapped[int]
    sent_at: Mapped[datetime] = mapped_column(index=True)


class OutboxMessage(Base):
    """A Bot API call decided in some transaction, delivered later by the delivery worker."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chat_id: Mapped[int]
    method: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    # Lower goes first: replies to a client who just wrote before staff cards before broadcasts.
    priority: Mapped[int] = mapped_column(Integer, default=0)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # What a delivered message means for the ticket (e.g. "topic" stores the new thread id).
    purpose: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[OutboxStatus] = mapped_column(StrEnumType(OutboxStatus, 12),
                                                default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_outbox_pending", "status", "priority", "id"),)


class FaqArticle(Base):
    """An FAQ article written in chat (articles from YAML files live in the files)."""

    __tablename__ = "faq_articles"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lang: Mapped[str] = mapped_column(String(8))
    question: Mapped[str] = mapped_column(Text)
    alt: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # "tg:<file_id>" (a screenshot sent in chat), an http(s) URL, or a file next to the KB.
    image: Mapped[str | None] = mapped_column(String(300))
    # A draft (e.g. made by "/close 42 faq") is not suggested until staff publish it.
    draft: Mapped[bool] = mapped_column(default=False)
    source_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    created_by: Mapped[int | None]
    created_at: Mapped[datetime]


class FaqStats(Base):
    """Usage counters and freshness of every article, from a file or from the database."""

    __tablename__ = "faq_stats"
    article_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    suggested: Mapped[int] = mapped_column(Integer, default=0)
    solved: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)  # "Not that"
    # When the article's content last changed (file articles: noticed by content_hash at start).
    updated_at: Mapped[datetime]
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # Client phrasings accepted by staff for an article that lives in a file.
    extra_alt: Mapped[list[str]] = mapped_column(JSON, default=list)


class FaqSuggestion(Base):
    """An article offered to a client for an incident; its buttons are checked against this row."""

    __tablename__ = "faq_suggestions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    article_id: Mapped[str] = mapped_column(String(64), index=True)
    score: Mapped[float] = mapped_column(Float)
    query: Mapped[str] = mapped_column(Text)  # the client's words
    created_at: Mapped[datetime]
    outcome: Mapped[str | None] = mapped_column(String(12))  # solved | rejected
    answered_at: Mapped[datetime | None]
    # The client's words offered to staff as a new phrasing: offered | accepted.
    phrasing: Mapped[str | None] = mapped_column(String(12))


# -- ratings, the quarterly quality check (bot/services/ratings.py, quality.py) -----------


class Rating(Base):
    """The client's rating of one incident (one row per incident), and the request for it.

    Scores: 5 Excellent (Отлично) ... 1 Terrible (Ужас). A rating by a staff member is kept
    with `counted` False and left out of every statistic.
    """

    __tablename__ = "ratings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    state: Mapped[RatingState] = mapped_column(StrEnumType(RatingState, 12))
    send_at: Mapped[datetime | None]
    requested_at: Mapped[datetime | None]
    # The outbox rows of the request and of its reminder: only their buttons are taken.
    request_outbox_id: Mapped[int | None]
    reminder_outbox_id: Mapped[int | None]
    reminded_at: Mapped[datetime | None]
    score: Mapped[int | None] = mapped_column(Integer)
    counted: Mapped[bool] = mapped_column(default=True)
    rated_at: Mapped[datetime | None]  # the first rating (ix_ratings_rated_report)
    changed_at: Mapped[datetime | None]
    # The follow-up question: "bad" (what went wrong?) or "good" (anything to add?); while
    # `question_open`, the client's next text message is the comment.
    question: Mapped[str | None] = mapped_column(String(8))
    question_at: Mapped[datetime | None]
    question_open: Mapped[bool] = mapped_column(default=False)
    comment: Mapped[str | None] = mapped_column(Text)
    comment_at: Mapped[datetime | None]
    # The bell (bot/services/bell.py): the staff alert of a bad rating, and who took it.
    alert_outbox_id: Mapped[int | None]
    followup_by: Mapped[int | None]
    followup_name: Mapped[str | None] = mapped_column(String(200))
    followup_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_ratings_state_send_at", "state", "send_at"),
        # The statistics count ratings by the first rating's time: covering (the table is
        # not read).
        Index("ix_ratings_rated_report", "rated_at", "counted", "score", "followup_by",
              "client_id"),
    )


class RatingAgent(Base):
    """Who a rating is attributed to: every staff member the incident was assigned to."""

    __tablename__ = "rating_agents"
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id"), primary_key=True)
    agent_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    agent_name: Mapped[str] = mapped_column(String(200), default="")


class QualityCampaign(Base):
    """One quarterly quality check: a row per quarter, so it is never started twice."""

    __tablename__ = "quality_campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    period: Mapped[str] = mapped_column(String(8), unique=True)  # "2026Q1": the quarter summarised
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    status: Mapped[CampaignState] = mapped_column(StrEnumType(CampaignState, 12))
    started_by: Mapped[int | None]  # the admin who pressed /quality send; None: the schedule
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class QualityDelivery(Base):
    """One client's quality check in one campaign: written once, sent once, answered here.

    `status`: pending (not yet written to the outbox), queued (its outbox row is
    `outbox_id`; sent/failed/blocked is read from that row and the client), blocked (the
    client had blocked the bot when its turn came: nothing was sent). The summary numbers
    are kept, so a client's quarters can be compared (the trend).
    """

    __tablename__ = "quality_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("quality_campaigns.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    status: Mapped[DeliveryState] = mapped_column(StrEnumType(DeliveryState, 12))
    outbox_id: Mapped[int | None]
    queued_at: Mapped[datetime | None]
    incidents: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    avg_response_seconds: Mapped[int | None]
    sla_kept: Mapped[int | None] = mapped_column(Integer)
    sla_total: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[int | None] = mapped_column(Integer)
    answered_at: Mapped[datetime | None]
    talk_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # "Not used / nothing to rate": an answer, counted apart from the scores.
    unused_at: Mapped[datetime | None]
    # The bell (bot/services/bell.py): a bad answer's staff alert, "what is wrong?" asked
    # (the client's next text within [ratings] comment_minutes goes to the alert's thread),
    # the comment, and who took the follow-up.
    alert_outbox_id: Mapped[int | None]
    question_at: Mapped[datetime | None]
    question_open: Mapped[bool] = mapped_column(default=False)
    comment: Mapped[str | None] = mapped_column(Text)
    followup_by: Mapped[int | None]
    followup_name: Mapped[str | None] = mapped_column(String(200))
    followup_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("campaign_id", "client_id"),
        Index("ix_quality_deliveries_campaign_status", "campaign_id", "status"),
    )


# -- companies and reports (bot/services/companies.py, bot/services/reports/) ------------


class Company(Base):
    """A client organisation: its employees are clients linked by `clients.company_id`.

    Contract notes: `services` (what the contract covers, free text) and `maintenance`
    (planned works: a list of {"work": ..., "every": daily|weekly|monthly|quarterly|yearly}).
    """

    __tablename__ = "companies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The start parameter of the invite deep link https://t.me/<bot>?start=<invite_code>.
    invite_code: Mapped[str] = mapped_column(String(64), unique=True)
    # The invite link's limits (None: none): it stops working at `invite_expires_at`, or
    # once `invite_uses` employees have joined through it (`invite_max_uses`). Rotating
    # the link starts the count again.
    invite_expires_at: Mapped[datetime | None]
    invite_max_uses: Mapped[int | None]
    invite_uses: Mapped[int] = mapped_column(default=0, server_default="0")
    services: Mapped[str | None] = mapped_column(Text)
    maintenance: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # "config" (a [[companies]] table: its notes are rewritten at start) or "chat".
    source: Mapped[str] = mapped_column(String(8), default="chat")
    created_by: Mapped[int | None]
    created_at: Mapped[datetime]
    # The contract's service level over the desk's: {severity: {"response_hours": ..., ...}}
    # (keys of [sla.<severity>]) and the working time ({"workdays": [...], "work_start":
    # "HH:MM", ...}, keys of [desk]); None: the desk's.
    sla: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    work_time: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The client's coordinators (Telegram user ids): they see all the company's incidents.
    contacts: Mapped[list[int] | None] = mapped_column(JSON)
    # Whether the coordinators are told of every new incident of the company.
    notify_contacts: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    # The staff member mentioned when it goes wrong (a user id or an @username).
    account_manager: Mapped[str | None] = mapped_column(String(64))
    # The monthly fee, and the hours the fee includes (the act compares).
    fee: Mapped[float | None] = mapped_column(Float)
    hours_included: Mapped[float | None] = mapped_column(Float)
    # The company's own act template (a path; relative: to the config file's folder).
    act_template: Mapped[str | None] = mapped_column(String(500))


class ClientGroup(Base):
    """A client company's own group chat with the bot in it (bot/services/groups.py).

    Linked through the company's group invite (`?startgroup=<code>`) or by staff
    (`/org group <name>` typed in the group); `active` is False once the bot was removed."""

    __tablename__ = "client_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(unique=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    title: Mapped[str] = mapped_column(String(255), default="")
    linked_by: Mapped[int | None]
    linked_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(default=True)


class MaintenanceDone(Base):
    """A planned maintenance work recorded as done (`/org done`): the act shows its status."""

    __tablename__ = "maintenance_done"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    work: Mapped[str] = mapped_column(String(200))
    done_at: Mapped[datetime]
    actor_id: Mapped[int | None]
    actor_name: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_maintenance_done_company_done_at", "company_id", "done_at"),)


class TimeEntry(Base):
    """Time a staff member spent on an incident (`/time`, `/close N 1h ...`)."""

    __tablename__ = "time_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    minutes: Mapped[int]
    actor_id: Mapped[int | None]
    actor_name: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(index=True)


class MaintenanceReminder(Base):
    """A reminder posted for a planned work's due date ("due" within 7 days, "overdue"):
    one of each per due date, also across restarts."""

    __tablename__ = "maintenance_reminders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    work: Mapped[str] = mapped_column(String(200))
    due_on: Mapped[str] = mapped_column(String(10))  # ISO date
    kind: Mapped[str] = mapped_column(String(8))
    sent_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("company_id", "work", "due_on", "kind"),)


# Reports select incidents by when they were opened and resolved (bot/services/reports/,
# storage/repos/reports.py). Each index holds every column its report query reads, so that
# `/stats month` never reads the table (a covering index: the query plan says "USING
# COVERING INDEX"); the order of the columns after the first does not matter.
REPORT_OPENED_COLUMNS = (
    "opened_at", "severity", "first_response_at", "first_response_met",
    "first_response_breached_at", "resolution_met", "resolution_breached_at", "client_id",
)
REPORT_RESOLVED_COLUMNS = (
    "resolved_at", "status", "severity", "resolution_kind", "reopen_count", "opened_at",
    "first_response_at", "resolution_seconds", "assignee_id", "assignee_name", "client_id",
)
Index("ix_tickets_opened_report", *(Ticket.__table__.c[name] for name in REPORT_OPENED_COLUMNS))
Index("ix_tickets_resolved_report",
      *(Ticket.__table__.c[name] for name in REPORT_RESOLVED_COLUMNS))


class Problem(Base):
    """One cause behind many incidents (an outage): staff tell every linked client at once.

    A problem is made from an incident (`/problem 101 <title>`: `number` is that incident's
    number, `ticket_id` the incident) or opened by monitoring before anyone calls: then it
    has no incident and no client reporter (`ticket_id` None), its number is taken from the
    incidents' counter all the same (so `#N` never means two things) and its place in the
    staff group is its alert message (`card_outbox_id`), answered by replying to it.
    """

    __tablename__ = "problems"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[int] = mapped_column(unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    # "staff" or "monitoring"
    source: Mapped[str] = mapped_column(String(16))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)
    # Who closed it: its linked incidents are closed in batches after the closing's commit
    # (bot/services/problems.py `close_linked`), each in their name; None: the system.
    closed_by_id: Mapped[int | None]
    closed_by_name: Mapped[str | None] = mapped_column(String(200))
    # The staff-group message of a problem opened by monitoring (replies to it go to all).
    card_outbox_id: Mapped[int | None]
    # Monitoring: the alert's fingerprint (one problem per alert), its severity as the
    # alert gave it, when it began firing (a replay of it changes nothing), when it said
    # it was resolved (staff were offered to close the problem).
    fingerprint: Mapped[str | None] = mapped_column(String(200), unique=True)
    alert_severity: Mapped[str | None] = mapped_column(String(32))
    alert_started: Mapped[str | None] = mapped_column(String(64))
    alert_resolved_at: Mapped[datetime | None]

    @property
    def is_open(self) -> bool:
        return self.closed_at is None
