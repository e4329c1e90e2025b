"""The inbox: every update is recorded before it is handled, and handled exactly once.

Telegram confirms polled updates when the next getUpdates asks for a higher
offset, so a batch is written to the `inbox` table first and only then
confirmed. The update's own transaction (see bot.telegram.middleware) marks it handled,
so after a crash the unfinished ones are handled again and the finished ones
never. A chat's updates are handled strictly in order; different chats in
parallel, at most `concurrency` at a time.

Several worker processes (PostgreSQL, webhook mode) may each receive updates
of the same chat. Then the update's transaction first takes the chat's advisory
lock (`pg_advisory_xact_lock(chat_id)`, bot/telegram/middleware.py), so a chat is handled
by one worker at a time, and if an earlier update of the chat is recorded but
not handled yet (another worker has it queued), it is put back (`OutOfTurn`)
and tried again every OUT_OF_TURN_WAIT seconds, up to OUT_OF_TURN_TRIES times;
then it goes ahead anyway (the earlier one's worker may have died).
Ordering is by update_id, i.e. the order Telegram gave them, for updates
recorded by the time the later one is handled.

Each worker records the updates it receives as its own (`inbox.claimed_by`) and
beats every half second (bot/telegram/lease.py); the updates of a worker silent
for a few seconds are taken over by another one (`adopt`), so a kill -9 leaves no
client waiting more than about 5 s. Taken over twice or by a worker only slow to
beat, an update is still handled once: its transaction locks the inbox row and
checks that it is not handled yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import ClientDecodeError, TelegramAPIError, TelegramNetworkError
from aiogram.methods import GetUpdates
from aiogram.types import Update

from bot.domain.clock import Clock, Sleep
from bot.telegram.activity import Activity
from storage.db import Database
from storage.repos.inbox import Inbox

log = logging.getLogger(__name__)

FailureHandler = Callable[[dict[str, Any]], Awaitable[None]]
# chat_member: the staff group's members coming and going (bot/telegram/staff.py).
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member",
                   "chat_member"]
OUT_OF_TURN_WAIT = 0.05
OUT_OF_TURN_TRIES = 200  # 10 s


class OutOfTurn(Exception):
    """An earlier update of the same chat is not handled yet (raised inside the transaction,
    which is rolled back; the intake tries again shortly)."""


def batch_of(response: Any) -> list[dict[str, Any]] | None:
    """The updates of a getUpdates answer aiogram could not parse, as raw dicts (each one
    with an integer update_id), or None when it is not such an answer."""
    result = response.get("result") if isinstance(response, dict) else None
    if not isinstance(result, list):
        return None
    return [u for u in result if isinstance(u, dict) and type(u.get("update_id")) is int]


def chat_of(update: dict[str, Any]) -> int | None:
    for key in ("message", "edited_message", "my_chat_member", "chat_member"):
        if key in update:
            return int(update[key]["chat"]["id"])
    callback = update.get("callback_query")
    if callback:
        message = callback.get("message")
        return int(message["chat"]["id"]) if message else int(callback["from"]["id"])
    return None


class Intake:
    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        bot: Bot,
        clock: Clock,
        *,
        concurrency: int,
        on_failure: FailureHandler | None = None,
        ordered_across_processes: bool = False,
        worker_id: str | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.db = db
        self.worker_id = worker_id  # several workers: whose updates these are (inbox.claimed_by)
        # Several processes handle updates: keep each chat in order across them (see above).
        self.ordered_across_processes = ordered_across_processes
        self.dispatcher = dispatcher
        self.bot = bot
        self.clock = clock
        self.on_failure = on_failure
        self.sleep = sleep  # the polling back-off's
        self._slots = asyncio.Semaphore(concurrency)
        # Updates taken over from a dead worker have waited already: a lane of their own,
        # so they do not queue again behind this worker's backlog.
        self._late_slots = asyncio.Semaphore(max(1, concurrency // 4))
        self._late: set[int] = set()
        self._queues: dict[int, deque[dict[str, Any]]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self.activity = Activity()  # an update queued or being handled
        self._queued: set[int] = set()  # update ids waiting in this process's queues

    async def accept(self, updates: list[dict[str, Any]]) -> int:
        """Record a batch durably, then schedule the updates not seen before."""
        if not updates:
            return 0
        now = self.clock()
        rows = [
            {"update_id": u["update_id"], "chat_id": chat_of(u), "payload": u, "received_at": now,
             "claimed_by": self.worker_id}
            for u in updates
        ]
        async with self.db.transaction() as session:
            fresh = await Inbox(session).record(rows)
        for update in updates:
            if update["update_id"] in fresh:
                self._schedule(update)
        return len(fresh)

    async def resume(self) -> int:
        """One process: schedule updates recorded before a crash but never finished."""
        async with self.db.transaction() as session:
            rows = await Inbox(session).pending()
            pending = [dict(row.payload) for row in rows]
        return self.adopt(pending, late=False)

    def adopt(self, updates: list[dict[str, Any]], *, late: bool = True) -> int:
        """Schedule updates left unfinished (by a crash, or `late`: by a worker that died,
        in the lane of their own), but for those queued here already."""
        fresh = [u for u in updates if u["update_id"] not in self._queued]
        for update in fresh:
            if late:
                self._late.add(update["update_id"])
            self._schedule(update)
        if fresh:
            log.info("resuming %d updates left unfinished", len(fresh))
        return len(fresh)

    async def poll(self, timeout: int) -> None:
        """Long polling until cancelled; network trouble is waited out, never fatal."""
        async with self.db.transaction() as session:
            last = await Inbox(session).max_update_id()
        offset = last + 1 if last is not None else None
        backoff = 1.0
        while True:
            try:
                updates = await self.bot(
                    GetUpdates(offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES),
                    request_timeout=timeout + 10,
                )
            except ClientDecodeError as exc:
                # One update with a field of an unexpected type fails the parsing of its
                # whole batch, again at every retry: take the batch as it came, so that each
                # update is parsed on its own and a bad one is parked with its error.
                raw = batch_of(exc.data)
                if raw is None:
                    log.warning("getUpdates answered what is not a batch of updates; "
                                "retrying in %.0fs", backoff)
                    await self.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
            except (TelegramNetworkError, TelegramAPIError) as exc:
                log.warning("getUpdates failed (%s); retrying in %.0fs", exc, backoff)
                await self.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            else:
                raw = [u.model_dump(mode="json", by_alias=True, exclude_none=True)
                       for u in updates]
            backoff = 1.0
            if not raw:
                continue
            await self.accept(raw)
            offset = max(u["update_id"] for u in raw) + 1

    async def wait_idle(self) -> None:
        await self.activity.wait_idle()

    def _schedule(self, update: dict[str, Any]) -> None:
        key = chat_of(update)
        if key is None:
            key = -(10**15) - update["update_id"]  # no chat: a queue of its own
        self._queues.setdefault(key, deque()).append(update)
        self._queued.add(update["update_id"])
        self.activity.begin()
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._drain(key))

    async def _drain(self, key: int) -> None:
        queue = self._queues[key]
        try:
            while queue:
                update = queue.popleft()
                for attempt in range(OUT_OF_TURN_TRIES + 1):
                    if attempt:  # out of turn: wait without holding a slot
                        await asyncio.sleep(OUT_OF_TURN_WAIT)
                    late = update["update_id"] in self._late
                    async with self._late_slots if late else self._slots:
                        if await self._handle(update, last_try=attempt == OUT_OF_TURN_TRIES):
                            break
                self._queued.discard(update["update_id"])
                self._late.discard(update["update_id"])
        finally:
            del self._queues[key]
            del self._workers[key]
            if not self._workers:
                self.activity.end()

    async def _handle(self, update: dict[str, Any], *, last_try: bool = False) -> bool:
        """Handle one update; False when it has to wait for an earlier one of its chat."""
        try:
            # feed_update, not feed_raw_update: that one logs every exception as an error,
            # OutOfTurn (a normal wait) included; real failures are logged below.
            await self.dispatcher.feed_update(
                self.bot, Update.model_validate(update, context={"bot": self.bot}),
                in_order=self.ordered_across_processes and not last_try,
                chat_lock=self.ordered_across_processes,
            )
        except OutOfTurn:
            return False
        except Exception as exc:
            log.exception("update %s failed", update.get("update_id"))
            async with self.db.transaction() as session:
                await Inbox(session).mark_handled(
                    update["update_id"], self.clock(), error=f"{type(exc).__name__}: {exc}"
                )
            if self.on_failure is not None:
                await self.on_failure(update)
        return True
