"""Text as every database can keep it: PostgreSQL refuses the NUL character in a text
column (SQLite keeps it), so a client typing one crashed their update there (issue 14)."""

from __future__ import annotations


def storable(text: str) -> str:
    return text.replace("\x00", "\ufffd")
