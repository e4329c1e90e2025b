"""The delivery worker: sends outbox rows to Telegram without losing or flooding.

One chat's rows go strictly in order (only the oldest pending row of a chat is
eligible), chats proceed in parallel within the rate limits, and each outcome is
recorded on the row:
  429          wait retry_after, for the chat (for everyone when several chats got
               one within seconds: bot/telegram/ratelimit.py), counted for /health
  5xx, network retry with exponential backoff and jitter; a timeout after the
               request went out may have delivered it: retried anyway (a duplicate
               beats a loss) and logged
  403          the client blocked the bot: the client is marked unreachable, staff
               are told on the ticket, and the chat (this row included) is held
               until they write again; a chat of no client fails the row
  400          fixed where it can be, once (the ticket forgets a deleted topic, a
               missing reply is dropped, a long text is sent in parts, each part a
               send of its own through the limiter) or failed for good

A client group that reaches its 20 messages a minute gets what is queued for it coalesced:
the send that takes the last place of the group's minute carries, as one message, the
texts of the rows waiting behind it in its lane (in order, joined by a blank line, as many
as fit in one Telegram message), and every later place does the same while a backlog
lasts. Only plain texts are carried (no buttons, media, placeholders or parts of a long
text: the first such row ends the run); when their reply targets differ the message is
a reply to none (each text names its incident). The carried rows are marked sent in the
transaction that links the message to each of their incidents (`message_links`), so
after a crash they are either all sent and linked or all still pending. A refused
coalesced message is sent again alone, row by row.

Several workers (PostgreSQL): each send to a group is written down (`group_sends`,
before the request leaves) and a new leader's limiter starts from the last minute of
them, so the staff group's 20 a minute holds across a change of leader. The other
windows are a second long, shorter than any takeover. One process (SQLite) keeps
its history in the limiter alone.

The worker asks the database only for rows it can send now: chats in flight,
held or waiting for a limit are left out in the query, and it fetches no more
rows than the global budget and the free send slots allow.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import Any

from aiogram import Bot, methods
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import FSInputFile
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.clock import Clock, Sleep
from bot.domain.enums import OutboxStatus
from bot.messaging.outbox import TEXT_LIMIT, split_html
from bot.telegram.activity import Activity
from bot.telegram.ratelimit import RateLimiter
from storage.db import Database
from storage.models import OutboxMessage
from storage.repos.clients import Clients
from storage.repos.fleet import GroupSends
from storage.repos.groups import ClientGroups
from storage.repos.outbox import Outbox, record_rate_limited
from storage.repos.tickets import TicketMessages, Tickets

log = logging.getLogger(__name__)

BlockedHandler = Callable[[AsyncSession, int, int | None], Awaitable[None]]
# A group became a supergroup: (session, old id, new id) -> the outbox rows moved.
MigratedHandler = Callable[[AsyncSession, int, int], Awaitable[int]]


PARK_AFTER = 5  # unexpected failures of one row before it is given up (status failed)
GROUP_SENDS_KEPT = timedelta(minutes=10)
# A coalesced message: at most so many rows looked at behind its head, texts joined thus.
COALESCE_LOOKAHEAD = 100
COALESCE_SEPARATOR = "\n\n"
# What a row may hold to be carried in a coalesced message: a plain text.
_COALESCIBLE_KEYS = frozenset({"chat_id", "text", "parse_mode", "reply_parameters",
                               "message_thread_id"})


@dataclass(frozen=True)
class _Row:
    id: int
    chat_id: int
    method: str
    payload: dict[str, Any]
    ticket_id: int | None
    purpose: str | None
    attempts: int
    priority: int = 0
    # A coalesced message: the rows whose texts follow the head's (marked sent with it).
    carried: tuple[_Row, ...] = ()

    @property
    def coalescible(self) -> bool:
        return (self.method == "sendMessage" and self.purpose is None
                and self.payload.get("parse_mode") == "HTML"
                and set(self.payload) <= _COALESCIBLE_KEYS
                and isinstance(self.payload.get("text"), str))


class _Dropped(Exception):
    """A placeholder points at a message that will never exist."""


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        bot: Bot,
        limiter: RateLimiter,
        clock: Clock,
        *,
        on_blocked: BlockedHandler | None = None,
        on_migrated: MigratedHandler | None = None,
        max_in_flight: int = 32,
        max_backoff: float = 60.0,
        idle_poll: float = 0.5,
        group_history: bool = False,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.db = db
        self.bot = bot
        self.limiter = limiter
        self.clock = clock
        self.on_blocked = on_blocked
        self.on_migrated = on_migrated
        self.max_in_flight = max_in_flight
        self.max_backoff = max_backoff
        self.idle_poll = idle_poll
        self.group_history = group_history  # sends to groups kept in the database (above)
        # The limiter's waits are on its clock (`monotonic`); tests run both faster.
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}  # chat id -> its send
        self._stopping = False
        self._running = False
        # Idle: no send in flight and nothing due now (rows waiting for a limit or a retry
        # are the database's to tell); only while run() runs, i.e. on the leader.
        self.activity = Activity()
        # Rows fetched but not sent yet: heads of distinct chats, none of them in flight.
        self._buffer: list[_Row] = []
        self._buffered_at = 0.0
        self._batch = max(8, min(200, int(limiter.global_per_second) + 8))
        # Heads of coalesced messages Telegram refused: sent alone from now on.
        self._alone: set[int] = set()

    def wake(self) -> None:
        self._wake.set()
        if self._running:
            self.activity.begin()  # the next pass looks for what was written

    def reset(self) -> None:
        """Ready to run() again after stop(): a deposed leader elected again (bot/app/leader.py).
        Rows fetched before are fetched again; the database may have changed meanwhile."""
        self._stopping = False
        self._buffer = []
        self._buffered_at = 0.0

    async def run(self) -> None:
        self._running = True
        self.activity.begin()
        try:
            await self._recall_group_sends()
            while not self._stopping:
                # Cleared before looking, so a wake-up that comes while we look is not lost.
                self._wake.clear()
                delay = await self._dispatch_due()
                if not (self._in_flight or self._buffer or self._wake.is_set()):
                    self.activity.end()
                await self._sleep_unless_woken(delay)
        finally:
            self._running = False
            self.activity.end()

    async def _sleep_unless_woken(self, seconds: float) -> None:
        """`seconds` on the worker's clock, or until something is written (wake)."""
        sleeping = asyncio.ensure_future(self._sleep(seconds))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeping, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()
            woken.cancel()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)

    async def _recall_group_sends(self) -> None:
        """What the previous leader sent to groups within their window (bot/app/leader.py)."""
        if not self.group_history:
            return
        window = timedelta(seconds=self.limiter.group_window)
        async with self.db.transaction() as session:
            recent = await GroupSends(session).recent(window)
        self.limiter.remember(recent)
        if recent:
            log.info("delivery: %d sends to groups in the last minute taken into account",
                     len(recent))

    async def drain(self, timeout: float = 30.0) -> None:
        """Deliver everything that is due now (used by the CLI and tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            delay = await self._dispatch_due()
            if not self._in_flight and delay >= self.idle_poll:
                async with self.db.transaction() as session:
                    if not await Outbox(session).due(self.clock() + timedelta(days=1), 1):
                        self.activity.end()
                        return
            await asyncio.sleep(min(delay, 0.05) if not self._in_flight else 0.01)

    async def _dispatch_due(self) -> float:
        """Start sends for every chat that may receive now; returns how long to sleep.

        Rows come from a small buffer (about a second of sends), refilled by one query
        when it runs dry, holds nothing sendable or is a second old. Sends are thus not
        held up by the database lock that the intake holds during a rush, and sends
        reserved in the limiter go out at once: a send that waited for the database
        after its reservation would reach Telegram bunched up with later ones.
        """
        if len(self._in_flight) >= self.max_in_flight:
            return 0.05
        global_wait = self.limiter.global_wait()
        if global_wait > 0:
            return global_wait
        loop = asyncio.get_running_loop()
        stale = loop.time() - self._buffered_at > 1.0
        if stale or not any(self._sendable(row) for row in self._buffer):
            # The same snapshot that left busy chats out says when the first frees up:
            # asked again later, a chat freed in between would be missed until idle_poll.
            first_free = await self._refill()
        else:
            _, first_free = self.limiter.busy_chats()
        delay = self.idle_poll if len(self._buffer) < self._batch else 0.0
        if first_free > 0:
            delay = min(delay, first_free)
        kept: list[_Row] = []
        for index, row in enumerate(self._buffer):
            if len(self._in_flight) >= self.max_in_flight or self.limiter.global_wait() > 0:
                kept.extend(self._buffer[index:])
                break
            if row.chat_id in self._in_flight:
                kept.append(row)
                continue
            wait = self.limiter.wait(row.chat_id)
            if wait > 0:
                delay = min(delay, wait)
                kept.append(row)
                continue
            self.limiter.record(row.chat_id)
            self.activity.begin()
            task = asyncio.create_task(self._deliver(row))
            self._in_flight[row.chat_id] = task
            task.add_done_callback(partial(self._finished, row.chat_id))
        self._buffer = kept
        if self.limiter.global_wait() > 0:
            delay = min(delay, self.limiter.global_wait())
        return delay

    def _sendable(self, row: _Row) -> bool:
        return row.chat_id not in self._in_flight and self.limiter.wait(row.chat_id) == 0

    async def _refill(self) -> float:
        """The next rows of chats that may receive now, at most a batch; returns the
        seconds until the first chat left out frees up."""
        busy, first_free = self.limiter.busy_chats()
        busy |= set(self._in_flight)
        async with self.db.transaction() as session:
            due = await Outbox(session).due(
                self.clock(), limit=self._batch, exclude=busy, skip_unreachable=True
            )
            self._buffer = [_row(r) for r in due]
        self._buffered_at = asyncio.get_running_loop().time()
        return first_free

    def _finished(self, chat_id: int, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(chat_id, None)
        self._wake.set()

    async def _deliver(self, row: _Row) -> None:
        try:
            row = await self._coalesce(row)
            await self._send_and_record(row)
        except Exception:  # a bug here must not stop the worker; the row is retried...
            log.exception("outbox row %s: unexpected failure", row.id)
            if row.attempts + 1 >= PARK_AFTER:  # ...a few times, then parked (/health)
                await self._finish(row, OutboxStatus.FAILED, error="internal error")
            else:
                await self._retry_later(row, "internal error", backoff=True)

    async def _send_and_record(self, row: _Row) -> None:
        try:
            payload = await self._resolve(row)
        except _Dropped as exc:
            await self._finish(row, OutboxStatus.FAILED, error=str(exc))
            return
        try:
            result = await self._call(row.method, payload)
        except TelegramRetryAfter as exc:
            everyone = self.limiter.rate_limited(row.chat_id, exc.retry_after)
            log.warning("429 for chat %s: retry after %ss%s", row.chat_id, exc.retry_after,
                        " (429s for several chats: everyone waits)" if everyone else "")
            await self._retry_later(row, f"429 retry after {exc.retry_after}",
                                    delay=exc.retry_after, count_attempt=False,
                                    rate_limited=True)
        except TelegramForbiddenError as exc:
            await self._blocked(row, exc.message)
        except TelegramMigrateToChat as exc:
            await self._migrated(row, exc.migrate_to_chat_id)
        except TelegramBadRequest as exc:
            if row.carried:  # the rows go alone: each gets the fixes of its own refusal
                log.warning("outbox row %s: coalesced message of %d refused (%s); sent "
                            "alone", row.id, 1 + len(row.carried), exc.message)
                self._alone.add(row.id)
            else:
                await self._bad_request(row, payload, exc)
        except TelegramNetworkError as exc:
            if "timeout" in exc.message.lower() and row.method != "editMessageText":
                log.warning("outbox row %s: timeout after sending; retrying, the client "
                            "may see it twice", row.id)
            await self._retry_later(row, f"network: {exc.message}", backoff=True)
        except (TelegramServerError, ClientDecodeError) as exc:
            await self._retry_later(row, f"server: {exc}", backoff=True)
        except TelegramAPIError as exc:
            # 404 (TelegramNotFoundError), 401, 409 and what Telegram may add: retrying
            # would block the chat's queue for good. Parked: counted and shown in /health.
            log.error("outbox row %s parked: %s %s", row.id, type(exc).__name__, exc.message)
            await self._finish(row, OutboxStatus.FAILED,
                               error=f"{type(exc).__name__}: {exc.message}")
        else:
            await self._delivered(row, result)

    async def _coalesce(self, row: _Row) -> _Row:
        """The head of a client group's lane, carrying the rows queued behind it when its
        send is the last the group may have in its minute (module docstring)."""
        if (not self.limiter.is_group(row.chat_id) or row.id in self._alone
                or not row.coalescible or self.limiter.group_room(row.chat_id) > 0):
            return row
        async with self.db.transaction() as session:
            group = await ClientGroups(session).by_chat(row.chat_id)
            if group is None or not group.active:  # the staff group: its cards and threads
                return row
            queued = await Outbox(session).queued_behind(
                row.id, row.chat_id, row.priority, COALESCE_LOOKAHEAD)
            now = self.clock()
            thread = row.payload.get("message_thread_id")
            texts = [row.payload["text"].strip()]
            carried: list[_Row] = []
            for queued_row in queued:
                follower = _row(queued_row)
                if queued_row.not_before is not None and queued_row.not_before > now:
                    break  # waits for its time, and so does everything behind it
                if not follower.coalescible or follower.payload.get("message_thread_id") != thread:
                    break
                text = follower.payload["text"].strip()
                if len(split_html(COALESCE_SEPARATOR.join([*texts, text]))) > 1:
                    break  # one message, never parts
                texts.append(text)
                carried.append(follower)
        if not carried:
            return row
        payload = {**row.payload, "text": COALESCE_SEPARATOR.join(texts)}
        targets = {repr(r.payload.get("reply_parameters")) for r in (row, *carried)}
        if len(targets) > 1:
            payload.pop("reply_parameters", None)
        log.info("chat %s at its limit: %d queued messages sent as one", row.chat_id,
                 1 + len(carried))
        return replace(row, payload=payload, carried=tuple(carried))

    async def _migrated(self, row: _Row, new_chat_id: int) -> None:
        """The group became a supergroup with a new id: this row and every other one
        waiting for the chat go there, at once (`on_migrated`: the staff directory, which
        also records the move and, for the staff group, goes on with the new id); a client
        group's link follows it."""
        async with self.db.transaction() as session:
            if self.on_migrated is not None:
                moved = await self.on_migrated(session, row.chat_id, new_chat_id)
            else:
                moved = await Outbox(session).move_chat(row.chat_id, new_chat_id)
            client_group = await ClientGroups(session).move_chat(row.chat_id, new_chat_id)
        log.warning("chat %s became supergroup %s: %d queued messages%s moved there",
                    row.chat_id, new_chat_id, moved,
                    " and its client group's link" if client_group else "")
        self.wake()

    async def _call(self, method: str, payload: dict[str, Any]) -> Any:
        method_class = getattr(methods, method[0].upper() + method[1:])
        params = {k: v for k, v in payload.items() if not k.startswith("$")}  # our bookkeeping
        request = method_class.model_validate(params)
        chat_id = payload["chat_id"]
        if self.group_history and self.limiter.is_group(chat_id):
            async with self.db.transaction() as session:  # known before it may arrive
                await GroupSends(session).note(chat_id, keep=GROUP_SENDS_KEPT)
        self.limiter.resend(chat_id)
        return await self.bot(request)

    async def _resolve(self, row: _Row) -> dict[str, Any]:
        if not _has_placeholder(row.payload):  # most rows: no database on the way out
            return row.payload
        async with self.db.transaction() as session:
            resolved: dict[str, Any] = await _resolve_value(session, row.payload)
            return resolved

    async def _bad_request(
        self, row: _Row, payload: dict[str, Any], exc: TelegramBadRequest
    ) -> None:
        message = exc.message.lower()
        if "not modified" in message:
            await self._finish(row, OutboxStatus.SENT, error=None)
        elif "thread not found" in message and "message_thread_id" in row.payload:
            # The topic was deleted: post to the group itself rather than lose the message,
            # and let the ticket forget the topic so its next lines go there straight away.
            thread = row.payload["message_thread_id"]
            topic_of = thread.get("$topic_of") if isinstance(thread, dict) else None
            await self._rewrite(row, _without(row.payload, "message_thread_id"),
                                forget_topic_of=topic_of)
        elif "replied not found" in message and "reply_parameters" in row.payload:
            await self._rewrite(row, _without(row.payload, "reply_parameters"))
        elif "too long" in message and "text" in payload and "$rest" not in row.payload:
            # Telegram's HTML parser counted otherwise than split_html's measure: send it
            # in halves, one send each (the row stays the chat's head until done).
            parts = split_html(payload["text"], limit=TEXT_LIMIT // 2)
            log.warning("outbox row %s: too long, sent in %d parts", row.id, len(parts))
            await self._rewrite(row, _first_part(row.payload, parts))
        else:
            log.error("outbox row %s failed for good: %s", row.id, exc.message)
            await self._finish(row, OutboxStatus.FAILED, error=exc.message)

    async def _rewrite(
        self, row: _Row, payload: dict[str, Any], *, forget_topic_of: int | None = None
    ) -> None:
        async with self.db.transaction() as session:
            if forget_topic_of is not None:
                await Tickets(session).forget_topic(forget_topic_of)
            await Outbox(session).rewrite(row.id, payload, attempts=row.attempts + 1)
        self.wake()

    async def _delivered(self, row: _Row, result: Any) -> None:
        message_id = getattr(result, "message_id", None)
        async with self.db.transaction() as session:
            if row.carried:  # one message of several rows: linked and marked together
                tickets = [r.ticket_id for r in (row, *row.carried) if r.ticket_id is not None]
                if message_id is not None:
                    await TicketMessages(session).link_all(tickets, row.chat_id, message_id)
                for carried in row.carried:
                    await self._mark(session, carried, OutboxStatus.SENT, error=None,
                                     message_id=message_id)
            elif row.ticket_id is not None:
                if row.purpose == "topic":
                    ticket = await Tickets(session).by_id(row.ticket_id)
                    ticket.topic_id = result.message_thread_id
                elif message_id is not None:  # a new message: linked to nothing yet
                    await TicketMessages(session).link_all([row.ticket_id], row.chat_id,
                                                           message_id)
            if row.payload.get("$rest"):  # a part of a long text; the next is the head now
                await Outbox(session).next_part(row.id, _next_part(row.payload))
                self.wake()
                return
            await self._mark(session, row, OutboxStatus.SENT, error=None, message_id=message_id)

    async def _blocked(self, row: _Row, description: str) -> None:
        async with self.db.transaction() as session:
            client = await Clients(session).by_chat(row.chat_id)
            if client is None:  # not a client's chat (a group that removed the bot, ...)
                log.error("outbox row %s failed for good: 403 %s", row.id, description)
                await self._mark(session, row, OutboxStatus.FAILED, error=f"403 {description}")
                return
            if client.unreachable_since is None:
                client.unreachable_since = self.clock()
                log.warning("client %s blocked the bot: chat %s held", client.id, row.chat_id)
                if self.on_blocked is not None:
                    await self.on_blocked(session, client.id, row.ticket_id)
            # Held with the rest of the chat: it goes out first when the client writes again.
            await Outbox(session).hold(row.id, attempts=row.attempts + 1,
                                       error=f"403 {description}")
        self.wake()

    async def _retry_later(
        self,
        row: _Row,
        error: str,
        *,
        delay: float | None = None,
        backoff: bool = False,
        count_attempt: bool = True,
        rate_limited: bool = False,
    ) -> None:
        if backoff:
            delay = min(self.max_backoff, 0.5 * 2 ** min(row.attempts, 10))
            delay *= random.uniform(0.8, 1.2)
        async with self.db.transaction() as session:
            await Outbox(session).retry_at(
                row.id, self.clock() + timedelta(seconds=delay or 0),
                attempts=row.attempts + (1 if count_attempt else 0), error=error)
            if rate_limited:
                await record_rate_limited(session, self.clock())

    async def _finish(self, row: _Row, status: OutboxStatus, *, error: str | None) -> None:
        async with self.db.transaction() as session:
            await self._mark(session, row, status, error=error)

    async def _mark(
        self,
        session: AsyncSession,
        row: _Row,
        status: OutboxStatus,
        *,
        error: str | None,
        message_id: int | None = None,
    ) -> None:
        self._alone.discard(row.id)
        await Outbox(session).finish(row.id, status, attempts=row.attempts + 1, error=error,
                                     sent_at=self.clock(), message_id=message_id)


def _row(row: OutboxMessage) -> _Row:
    return _Row(row.id, row.chat_id, row.method, dict(row.payload), row.ticket_id, row.purpose,
                row.attempts, row.priority)


def _first_part(payload: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    """The payload of a long text's first part; the rest ride along under "$rest"."""
    first = _without(payload, "reply_markup")
    first.update({"text": parts[0], "$rest": parts[1:]})
    if "reply_markup" in payload:  # the keyboard goes with the last part
        first["$markup"] = payload["reply_markup"]
    return first


def _next_part(payload: dict[str, Any]) -> dict[str, Any]:
    rest = list(payload["$rest"])
    following = {k: v for k, v in payload.items()
                 if k not in ("reply_parameters", "$rest", "$markup")}
    following["text"] = rest.pop(0)
    # Still marked as split when it is the last part, so a refusal of it fails for good.
    following["$rest"] = rest
    if "$markup" in payload:
        if rest:
            following["$markup"] = payload["$markup"]
        else:
            following["reply_markup"] = payload["$markup"]
    return following


def _without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != key}


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, dict):
        return "$message_of" in value or "$topic_of" in value or "$file" in value or any(
            _has_placeholder(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_placeholder(item) for item in value)
    return False


def _is_file(path: str) -> bool:
    return os.path.isfile(path)  # one stat() of a local file, as cheap as the upload's open()


async def _resolve_value(session: AsyncSession, value: Any) -> Any:
    if isinstance(value, list):
        return [await _resolve_value(session, item) for item in value]
    if not isinstance(value, dict):
        return value
    if "$message_of" in value:
        source = await Outbox(session).get(value["$message_of"])
        if source is None or source.telegram_message_id is None:
            raise _Dropped(f"message of outbox row {value['$message_of']} does not exist")
        return source.telegram_message_id
    if "$file" in value:  # a local file to upload (an FAQ screenshot, a report, a chart)
        path = value["$file"]
        if not _is_file(path):  # gone (cleaned up, another machine): retry cannot help
            raise _Dropped(f"file {path} does not exist")
        return FSInputFile(path, filename=value.get("filename"))
    resolved: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict) and "$topic_of" in item:
            ticket = await Tickets(session).get(item["$topic_of"])
            if ticket is not None and ticket.topic_id is not None:
                resolved[key] = ticket.topic_id
            continue
        resolved[key] = await _resolve_value(session, item)
    return resolved
