"""The records the services hand to their callers, by name: handlers name them in type
hints (only services reach storage)."""

from __future__ import annotations

from storage.models import Client, Company, Ticket

__all__ = ["Client", "Company", "Ticket"]
