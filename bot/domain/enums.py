"""Domain vocabularies shared by storage, services and handlers (plain strings in the database)."""

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
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        return self not in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
