"""The one redaction of secrets, for every text that leaves the process or is kept: log
lines and tracebacks (bot/app/logs.py), errors stored in the inbox and the outbox
(storage/repos), and so what /health shows.

It removes the secrets the process was given (`keep_secret`: the bot token, the webhook's
secret) and anything shaped like a bot token, with or without the "bot" of a Bot API URL.
"""

from __future__ import annotations

import re

MARK = "<token>"
# A bot token: the bot's id, a colon, 35 characters (Telegram's shape; longer allowed).
TOKEN_SHAPE = re.compile(r"(?<![0-9])[0-9]{5,16}:[A-Za-z0-9_-]{30,}")

_secrets: set[str] = set()


def keep_secret(secret: str) -> None:
    """A secret `redact` removes from now on (set once at start-up; empty ones ignored)."""
    if secret:
        _secrets.add(secret)


def redact(text: str) -> str:
    """`text` without any secret: each is replaced by "<token>"."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MARK)
    return TOKEN_SHAPE.sub(MARK, text)


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)
