"""Writing Bot API calls to the outbox, in the caller's transaction.

Payloads are plain Bot API parameters. Placeholders are resolved by the
delivery worker at send time, because their values exist only after an earlier
row of the same chat was delivered (or cannot be stored as JSON):
  {"$topic_of": ticket_id}   the forum topic of the ticket (the key is dropped if none)
  {"$message_of": outbox_id} the Telegram message id that row produced
  {"$file": path}            a local file to upload (FAQ screenshots kept next to the KB,
                             reports and charts); "filename" names it for the recipient.
                             A file that is gone by send time fails the row (never retried)
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from storage.models import OutboxMessage
from storage.repos.outbox import Outbox

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

# Lower is sent first: a client who just wrote must not wait behind a broadcast.
PRIORITY_REPLY = 0
PRIORITY_STAFF = 10
PRIORITY_NOTICE = 20
PRIORITY_BROADCAST = 90

Keyboard = list[list[dict[str, str]]]

_TAG = re.compile(r"<(/?)([a-z-]+)[^>]*>")


def split_html(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split an HTML message into parts Telegram accepts, never inside a tag or an entity.

    Cuts prefer paragraph, line, then word boundaries; tags open at a cut are
    closed before it and reopened after it.
    """
    parts: list[str] = []
    reopen = ""
    rest = text
    budget = limit - 64  # room for the tags closed and reopened around a cut
    while len(reopen) + len(rest) > limit:
        window = rest[: budget - len(reopen)]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < len(window) // 2:
            cut = len(window)
        # Never cut inside a tag or an &entity;
        while True:
            lt, gt = window.rfind("<", 0, cut), window.rfind(">", 0, cut)
            amp, semi = window.rfind("&", 0, cut), window.rfind(";", 0, cut)
            if lt > gt:
                cut = lt
            elif amp > semi and cut - amp < 10:
                cut = amp
            else:
                break
        chunk = reopen + rest[:cut]
        stack: list[tuple[str, str]] = []
        for match in _TAG.finditer(chunk):
            if match.group(1):
                if stack and stack[-1][0] == match.group(2):
                    stack.pop()
            else:
                stack.append((match.group(2), match.group(0)))
        parts.append(chunk.rstrip() + "".join(f"</{name}>" for name, _ in reversed(stack)))
        reopen = "".join(tag for _, tag in stack)
        rest = rest[cut:].lstrip()
    parts.append(reopen + rest)
    return [part for part in parts if part.strip()]


def inline_keyboard(rows: Keyboard) -> dict[str, Any]:
    return {"inline_keyboard": rows}


def button(text: str, data: str) -> dict[str, str]:
    return {"text": text, "callback_data": data}


class OutboxWriter:
    """Adds rows for the current transaction; `wrote` tells the caller to wake the worker."""

    def __init__(self, repo: Outbox, now: datetime) -> None:
        self.repo = repo
        self.now = now
        self.wrote = 0

    async def _add(
        self,
        chat_id: int,
        method: str,
        payload: dict[str, Any],
        *,
        priority: int,
        ticket_id: int | None = None,
        purpose: str | None = None,
    ) -> OutboxMessage:
        self.wrote += 1
        return await self.repo.add(
            OutboxMessage(
                chat_id=chat_id,
                method=method,
                payload={"chat_id": chat_id, **payload},
                priority=priority,
                ticket_id=ticket_id,
                purpose=purpose,
                status="pending",
                attempts=0,
                created_at=self.now,
            )
        )

    async def send_text(
        self,
        chat_id: int,
        html: str,
        *,
        priority: int,
        ticket_id: int | None = None,
        topic_of: int | None = None,
        thread_id: int | None = None,
        reply_to: dict[str, int] | int | None = None,
        keyboard: Keyboard | dict[str, Any] | None = None,
    ) -> OutboxMessage:
        """Send HTML text (split if too long; the keyboard goes on the last part).

        `topic_of` addresses the forum topic of a ticket; `thread_id` a known thread.
        """
        parts = split_html(html)
        row: OutboxMessage | None = None
        for index, part in enumerate(parts):
            payload: dict[str, Any] = {"text": part, "parse_mode": "HTML"}
            if thread_id:
                payload["message_thread_id"] = thread_id
            _address(payload, topic_of, reply_to if index == 0 else None)
            if keyboard is not None and index == len(parts) - 1:
                payload["reply_markup"] = (
                    inline_keyboard(keyboard) if isinstance(keyboard, list) else keyboard
                )
            row = await self._add(
                chat_id, "sendMessage", payload, priority=priority, ticket_id=ticket_id
            )
        assert row is not None
        return row

    async def copy(
        self,
        chat_id: int,
        from_chat_id: int,
        message_id: int,
        *,
        priority: int,
        ticket_id: int | None = None,
        topic_of: int | None = None,
        reply_to: dict[str, int] | int | None = None,
        caption_html: str | None = None,
    ) -> OutboxMessage:
        payload: dict[str, Any] = {"from_chat_id": from_chat_id, "message_id": message_id}
        if caption_html is not None:
            payload["caption"] = caption_html[:CAPTION_LIMIT]
            payload["parse_mode"] = "HTML"
        _address(payload, topic_of, reply_to)
        return await self._add(
            chat_id, "copyMessage", payload, priority=priority, ticket_id=ticket_id
        )

    async def edit_text(
        self,
        chat_id: int,
        message_of: int,
        html: str,
        *,
        keyboard: Keyboard | None = None,
        priority: int = PRIORITY_STAFF,
        ticket_id: int | None = None,
    ) -> OutboxMessage:
        payload: dict[str, Any] = {
            "message_id": {"$message_of": message_of},
            "text": split_html(html)[0],
            "parse_mode": "HTML",
            "reply_markup": inline_keyboard(keyboard or []),
        }
        return await self._add(
            chat_id, "editMessageText", payload, priority=priority, ticket_id=ticket_id
        )

    async def create_topic(self, chat_id: int, name: str, ticket_id: int) -> OutboxMessage:
        return await self._add(
            chat_id,
            "createForumTopic",
            {"name": name[:128]},
            priority=PRIORITY_STAFF,
            ticket_id=ticket_id,
            purpose="topic",
        )

    async def send_file(
        self,
        chat_id: int,
        path: str | Path,
        *,
        kind: str = "document",
        filename: str | None = None,
        caption_html: str | None = None,
        priority: int,
        thread_id: int | None = None,
        ticket_id: int | None = None,
    ) -> OutboxMessage:
        """Upload a local file (sendDocument, or sendPhoto with `kind` "photo").

        The row stores the file's path, not its bytes (payloads are JSON): the delivery
        worker reads the file when it sends, so the file must outlive the row, e.g. under
        the desk's data directory."""
        method = {"document": "sendDocument", "photo": "sendPhoto"}[kind]
        upload: dict[str, Any] = {"$file": _absolute(path)}
        if filename:
            upload["filename"] = filename
        payload: dict[str, Any] = {kind: upload}
        if caption_html is not None:
            payload["caption"] = caption_html[:CAPTION_LIMIT]
            payload["parse_mode"] = "HTML"
        if thread_id:
            payload["message_thread_id"] = thread_id
        return await self._add(chat_id, method, payload, priority=priority, ticket_id=ticket_id)

    async def call(
        self, chat_id: int, method: str, payload: dict[str, Any], *, priority: int
    ) -> OutboxMessage:
        """Any other Bot API call (e.g. a reply keyboard asking for the phone number)."""
        return await self._add(chat_id, method, payload, priority=priority)


def _absolute(path: str | Path) -> str:
    return os.path.abspath(path)  # no file system access: the path is only made absolute


def _address(
    payload: dict[str, Any], topic_of: int | None, reply_to: dict[str, int] | int | None
) -> None:
    if topic_of is not None:
        payload["message_thread_id"] = {"$topic_of": topic_of}
    if reply_to is not None:
        payload["reply_parameters"] = {"message_id": reply_to, "allow_sending_without_reply": True}
