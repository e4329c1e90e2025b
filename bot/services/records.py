"""The names handlers use in type hints for what the services hand them (only services
reach storage and the FAQ index).

`Session` is the update's unit of work: handlers pass it on to a use case unopened (they
cannot build a query: they import no SQLAlchemy), so a use case runs in the update's
transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession as Session

from kb.articles import Article
from storage.models import Client, ClientGroup, Company, Ticket

__all__ = ["Article", "Client", "ClientGroup", "Company", "Session", "Ticket"]
