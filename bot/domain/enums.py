"""Domain vocabularies shared by storage, services and handlers.

The database keeps the plain strings (the values) in VARCHAR columns; the models read
them back as these enums (storage.models.StrEnumType), so a typo fails at the write.
"""

from enum import StrEnum


class Severity(StrEnum):
    CRITICAL = "critical"
    NORMAL = "normal"
    LOW = "low"


class TicketStatus(StrEnum):
    NEW = "new"
    TAKEN = "taken"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"  # waiting for the client: the SLA clock pauses
    VENDOR = "vendor"  # waiting for a third party (a vendor, the ISP, a 1C partner): paused too
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        return self not in (TicketStatus.RESOLVED, TicketStatus.CLOSED)


OPEN_STATUSES = tuple(s for s in TicketStatus if s.is_open)
CLOSED_STATUSES = tuple(s for s in TicketStatus if not s.is_open)


class ActorKind(StrEnum):
    """Who did something to an incident (ticket_events.actor_kind)."""

    CLIENT = "client"
    STAFF = "staff"
    SYSTEM = "system"  # the scheduled jobs


class MessageAuthor(StrEnum):
    """Who wrote a message kept with an incident (ticket_messages.author)."""

    CLIENT = "client"
    STAFF = "staff"  # to the client
    NOTE = "note"  # staff among themselves


class ContentKind(StrEnum):
    """What a Telegram message carried (ticket_messages.kind)."""

    TEXT = "text"
    PHOTO = "photo"
    DOCUMENT = "document"
    VIDEO = "video"
    VOICE = "voice"
    AUDIO = "audio"
    ANIMATION = "animation"
    VIDEO_NOTE = "video_note"
    STICKER = "sticker"
    CONTACT = "contact"
    LOCATION = "location"
    VENUE = "venue"
    POLL = "poll"
    DICE = "dice"
    OTHER = "other"
    EDIT = "edit"  # the client edited an earlier message: the new text, kept as a message


class EventKind(StrEnum):
    """What happened to an incident (ticket_events.kind)."""

    OPENED = "opened"
    ASSIGNED = "assigned"
    STATUS = "status"
    REOPENED = "reopened"
    SEVERITY = "severity"
    URGENT = "urgent"  # the client pressed "This is urgent"
    FAQ_SOLVED = "faq_solved"
    RATING = "rating"
    RATING_COMMENT = "rating_comment"
    SLA_WARNING = "sla_warning"
    SLA_BREACH = "sla_breach"
    STATUS_REMINDER = "status_reminder"
    PROBLEM = "problem"  # made a problem (new_value: its title's start)
    LINKED = "linked"  # linked to problem new_value
    UNLINKED = "unlinked"  # unlinked from problem old_value
    SUGGESTED = "suggested"  # in a suggested problem, with incident new_value first


class ResolutionKind(StrEnum):
    """How an incident was resolved when not by staff (tickets.resolution_kind; the column
    stays a plain string: `[ratings] exclude` may name kinds of other tools)."""

    FAQ = "faq"  # the client's FAQ answer: deflected


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # given up on: Telegram refused it for good


class RatingState(StrEnum):
    SCHEDULED = "scheduled"  # the request goes out later (`send_at`)
    REQUESTED = "requested"
    CANCELLED = "cancelled"  # reopened before the delayed request went out


class CampaignState(StrEnum):
    """A quarterly quality check as a whole (quality_campaigns.status)."""

    RUNNING = "running"
    DONE = "done"


class DeliveryState(StrEnum):
    """One client's quality check (quality_deliveries.status)."""

    PENDING = "pending"  # not yet written to the outbox
    QUEUED = "queued"  # its outbox row exists: sent, failed or held is read from that row
    BLOCKED = "blocked"  # the client had blocked the bot when its turn came: nothing sent
