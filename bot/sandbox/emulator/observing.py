"""The test side's view: waiting for the bot (a message sent, the emulator idle) and
reading what it did (messages sent, topics, recorded calls)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from bot.sandbox.emulator.protocol import Json
from bot.sandbox.emulator.state import BotMessageListener, CallRecord, EmulatorState


class Observing(EmulatorState):
    """Waiting for and reading what the bot did."""

    def on_bot_message(self, callback: BotMessageListener) -> Callable[[], None]:
        """Call ``callback(message, kind)`` for every message the bot sends
        (kind "sent"), edits ("edited") or deletes ("deleted"). A coroutine result is
        scheduled as a task. Returns a function that unsubscribes."""
        self._listeners.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return remove

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 5.0,
    ) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every state change);
        returns its value; raises TimeoutError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ev = self._changed
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), remaining)

    async def wait_sent(
        self,
        chat_id: int,
        count: int = 1,
        timeout: float = 5.0,
        *,
        thread_id: int | None = None,
    ) -> list[Json]:
        """Wait until the bot has sent at least ``count`` messages to the chat (thread);
        returns them all."""

        def check() -> list[Json] | None:
            msgs = self.sent(chat_id, thread_id)
            return msgs if len(msgs) >= count else None

        try:
            result: list[Json] = await self.wait_for(check, timeout)
        except TimeoutError:
            got = [m.get("plain") for m in self.sent(chat_id, thread_id)]
            raise TimeoutError(
                f"expected {count} bot messages in chat {chat_id}, got {len(got)}: {got}"
            ) from None
        return result

    @property
    def idle(self) -> bool:
        """No update waits to be fetched, confirmed or posted, and no call is being answered
        (a long poll waiting for updates is not a call in flight)."""
        return self._inflight == 0 and not self._has_pending()

    @property
    def activity(self) -> int:
        """A count that grows with every update queued or handed to the bot and with every
        call: unchanged between two looks, nothing happened here in between."""
        return self._activity

    async def wait_idle(self, quiet: float = 0.0, timeout: float = 10.0) -> None:
        """Wait until :attr:`idle` and no call (other than an empty getUpdates) came for
        ``quiet`` seconds: a quiet time is all there is to go by for a bot that says
        nothing of its own work (bot/sandbox/settle.py waits for one that does)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ev = self._changed
            busy = not self.idle
            left = quiet - (time.monotonic() - self._last_activity)
            if not busy and left <= 0:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"emulator not idle within {timeout}s (pending updates: "
                    f"{len(self._updates)}, in flight: {self._inflight})"
                )
            wait = remaining if busy else min(remaining, left)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), wait)

    def sent(
        self, chat_id: int, thread_id: int | None = None, *, include_deleted: bool = False
    ) -> list[Json]:
        """Messages the bot sent to the chat (in order; edits applied in place), optionally
        only those in forum topic ``thread_id``. Each has ``plain``: the text/caption
        without markup. Do not mutate them."""
        return [
            m
            for m in self._bot_messages
            if m["chat"]["id"] == chat_id
            and (thread_id is None or m.get("message_thread_id") == thread_id)
            and (include_deleted or not m.get("deleted"))
        ]

    def last(self, chat_id: int, thread_id: int | None = None) -> Json | None:
        """The bot's most recent message in the chat (thread), or None."""
        msgs = self.sent(chat_id, thread_id)
        return msgs[-1] if msgs else None

    def all_sent(self) -> list[Json]:
        """Every message the bot sent, in order."""
        return list(self._bot_messages)

    def message(self, chat_id: int, message_id: int) -> Json | None:
        """Any stored message (bot's or users') by chat and id."""
        chat = self.chats.get(chat_id)
        return chat.messages.get(message_id) if chat else None

    def topics(self, chat_id: int) -> list[Json]:
        """Forum topics of the chat: ForumTopic dicts plus ``closed``."""
        return list(self._chat_state(chat_id).topics.values())

    def topic_by_name(self, chat_id: int, prefix: str) -> Json | None:
        """The most recent topic whose name starts with ``prefix``."""
        for topic in reversed(self.topics(chat_id)):
            if str(topic["name"]).startswith(prefix):
                return topic
        return None

    def calls_to(self, method: str, chat_id: int | None = None) -> list[CallRecord]:
        """Recorded calls of one method (optionally to one chat)."""
        return [
            c
            for c in self.calls
            if c.method == method and (chat_id is None or c.chat_id == chat_id)
        ]

    @property
    def pending_updates(self) -> list[Json]:
        """Queued updates not yet confirmed by the bot."""
        return list(self._updates)
