"""Logging set-up. The bot token never reaches a log line, whoever formats it: both the
filter and the formatter use the one redaction (bot/domain/redact.py)."""

from __future__ import annotations

import logging

from bot.domain.redact import keep_secret, redact


class RedactToken(logging.Filter):
    """Removes secrets from a record's message (for handlers we do not format ourselves)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        keep_secret(token)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg = clean
            record.args = None
        return True


class RedactingFormatter(logging.Formatter):
    """Also covers tracebacks, whose text (a request URL, say) the filter never sees."""

    def __init__(self, token: str, fmt: str) -> None:
        super().__init__(fmt)
        keep_secret(token)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(token: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        RedactingFormatter(token, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactToken(token))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
