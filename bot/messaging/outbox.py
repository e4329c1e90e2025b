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
from html import unescape
from pathlib import Path
from typing import Any

from storage.models import OutboxMessage
from storage.repos.outbox import Outbox

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

# Lower is sent first: a client who just wrote must not wait behind a broadcast.
PRIORITY_REPLY = 0
PRIORITY_STAFF = 10
# A client's follow-ups in the staff group go after every new incident's card: one client
# writing a lot must not hold up another's first message (issue 14).
PRIORITY_FOLLOWUP = 15
PRIORITY_NOTICE = 20
PRIORITY_BROADCAST = 90

Keyboard = list[list[dict[str, str]]]

_TAG = re.compile(r"<(/?)([a-z-]+)[^>]*>")
# What an HTML message is made of, for measuring it: tags (nothing visible), entities (one
# character each) and single characters.
_PIECE = re.compile(r"(?P<tag><[^>]*>)|&#?\w+;|.", re.DOTALL)
_BLANK = re.compile(r"(?:<[^>]*>|\s)*")  # nothing to show: Telegram refuses such a text


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def cut_html(html: str, limit: int) -> tuple[str, str]:
    """The longest head of an HTML message that fits in `limit`, and the rest ("" if it all
    fits). `limit` counts what Telegram counts: the rendered text (a tag takes nothing, an
    entity one character) in UTF-16 code units.

    Never cuts inside a tag or an entity; tags open at the cut are closed in the head and
    reopened in the rest. The cut prefers a paragraph break, then a line break, then a
    space, if one lies in the second half of what fits; else it falls where the limit does.
    """
    if _utf16_units(html) <= limit:  # the markup counted too: surely fits
        return html, ""
    used = 0
    last_break = {"\n\n": -1, "\n": -1, " ": -1}
    for piece in _PIECE.finditer(html):
        width = 0 if piece["tag"] else _utf16_units(unescape(piece[0]))
        if used + width > limit:
            fits = piece.start()
            break
        used += width
        if piece[0] in ("\n", " "):
            after_newline = piece[0] == "\n" and html.endswith("\n", 0, piece.start())
            last_break["\n\n" if after_newline else piece[0]] = piece.start()
    else:
        return html, ""
    cut = next((at for at in last_break.values() if at > 0 and at >= fits // 2), fits)
    head = html[:cut].rstrip()
    stack: list[tuple[str, str]] = []
    for tag in _TAG.finditer(head):
        if tag.group(1):
            if stack and stack[-1][0] == tag.group(2):
                stack.pop()
        else:
            stack.append((tag.group(2), tag.group(0)))
    closing = "".join(f"</{name}>" for name, _ in reversed(stack))
    tail = html[cut:].lstrip()
    rest = "" if _BLANK.fullmatch(tail) else "".join(opening for _, opening in stack) + tail
    return head + closing, rest


def split_html(html: str, limit: int = TEXT_LIMIT) -> list[str]:
    """An HTML message in parts that each fit in `limit` (see `cut_html`)."""
    parts: list[str] = []
    rest = html
    while rest:
        part, rest = cut_html(rest, limit)
        parts.append(part)
    return [part for part in parts if not _BLANK.fullmatch(part)]


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
        not_before: datetime | None = None,
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
                not_before=not_before,
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
        """Copy a message (a caption longer than Telegram's limit: see `_caption`)."""
        payload: dict[str, Any] = {"from_chat_id": from_chat_id, "message_id": message_id}
        caption_rest = _caption(payload, caption_html)
        _address(payload, topic_of, reply_to)
        row = await self._add(
            chat_id, "copyMessage", payload, priority=priority, ticket_id=ticket_id
        )
        if caption_rest:
            await self.send_text(chat_id, caption_rest, priority=priority, ticket_id=ticket_id,
                                 topic_of=topic_of)
        return row

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
        the desk's data directory. A caption longer than Telegram's limit: see `_caption`."""
        method = {"document": "sendDocument", "photo": "sendPhoto"}[kind]
        upload: dict[str, Any] = {"$file": _absolute(path)}
        if filename:
            upload["filename"] = filename
        payload: dict[str, Any] = {kind: upload}
        caption_rest = _caption(payload, caption_html)
        if thread_id:
            payload["message_thread_id"] = thread_id
        row = await self._add(chat_id, method, payload, priority=priority, ticket_id=ticket_id)
        if caption_rest:
            await self.send_text(chat_id, caption_rest, priority=priority, ticket_id=ticket_id,
                                 thread_id=thread_id)
        return row

    async def call(
        self, chat_id: int, method: str, payload: dict[str, Any], *, priority: int,
        not_before: datetime | None = None,
    ) -> OutboxMessage:
        """Any other Bot API call (e.g. a reply keyboard asking for the phone number);
        `not_before`: not made before then."""
        return await self._add(chat_id, method, payload, priority=priority,
                               not_before=not_before)


def _caption(payload: dict[str, Any], caption_html: str | None) -> str:
    """Put the caption that fits on the media's payload; return the rest ("" if none).

    The caller sends the rest as text right after the media, to the same chat and thread
    at the same priority, so it follows the media in the chat's order."""
    if caption_html is None:
        return ""
    payload["caption"], rest = cut_html(caption_html, CAPTION_LIMIT)
    payload["parse_mode"] = "HTML"
    return rest


def _absolute(path: str | Path) -> str:
    return os.path.abspath(path)  # no file system access: the path is only made absolute


def _address(
    payload: dict[str, Any], topic_of: int | None, reply_to: dict[str, int] | int | None
) -> None:
    if topic_of is not None:
        payload["message_thread_id"] = {"$topic_of": topic_of}
    if reply_to is not None:
        payload["reply_parameters"] = {"message_id": reply_to, "allow_sending_without_reply": True}
