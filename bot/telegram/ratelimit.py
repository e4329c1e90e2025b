"""Telegram's flood limits, kept on our side so the bot never provokes a 429.

Three limits, all configurable: messages per second for the whole bot, per
second to one chat, and per minute to one group. Windows are sliding and a
little wider than nominal, so that jitter between our clock and the moment the
request reaches Telegram never turns into a burst over the limit.

A 429 pauses the chat it concerns for its `retry_after`. Only when 429s come for
BOT_LIMITED_CHATS different chats within BOT_LIMITED_SECONDS is the bot as a
whole taken to be limited, and everyone waits: one client's 429 must not hold up
every other confirmation of a mass outage.

A group's sends of the last minute are what a new leader must know (its window is
a minute long, the others' a second: a takeover takes longer than that), so
`group_history` / `remember` hand them over, as ages in seconds (bot/telegram/delivery.py).
"""

from __future__ import annotations

import time
from collections import deque

from bot.domain.clock import Monotonic

# Windows are widened by these factors. The global one stays tight, because throughput in a
# mass outage is counted against it. One chat loses nothing by a wider gap, and a request
# held up on the way (a busy event loop, a slow connection) must not land two messages to
# it inside one second: 1.15 still let that happen under load in CI, 1.3 leaves 0.3 s. A
# group's window is a minute long, where such delays hardly matter.
SAFETY = 1.02
CHAT_SAFETY = 1.3
GROUP_SAFETY = 1.1
# Consecutive sends are at least this fraction of the average interval apart. A window's
# whole budget sent at once would land next to the following window's burst whenever one
# of them is held up on the way (a busy event loop at either end): 17 of 5,000 sends went
# over Telegram's 30/s in the outage bench that way. Half the interval still lets a backlog
# go at the full rate.
SPREAD = 0.5
# 429s for this many different chats within this many seconds: the bot as a whole is limited.
BOT_LIMITED_CHATS = 3
BOT_LIMITED_SECONDS = 2.0


class RateLimiter:
    def __init__(
        self,
        global_per_second: float,
        per_chat_per_second: float,
        per_group_per_minute: float,
        clock: Monotonic = time.monotonic,
    ) -> None:
        self._global_count = max(1, int(global_per_second))
        self._global_window = SAFETY * self._global_count / global_per_second
        self._global_gap = SPREAD / global_per_second
        self._chat_interval = CHAT_SAFETY / per_chat_per_second
        self._group_count = max(1, int(per_group_per_minute))
        self._group_window = GROUP_SAFETY * 60.0 * self._group_count / per_group_per_minute
        self._clock = clock
        self.global_per_second = global_per_second
        self._global: deque[float] = deque()
        self._last_to_chat: dict[int, float] = {}
        self._recent: deque[tuple[float, int]] = deque()  # sends within one chat interval
        self._group: dict[int, deque[float]] = {}
        self._paused_until = 0.0
        self._chat_paused_until: dict[int, float] = {}
        self._limited: deque[tuple[float, int]] = deque()  # recent 429s: (when, chat)

    @property
    def group_window(self) -> float:
        """Seconds a send to a group counts against the group's limit."""
        return self._group_window

    @staticmethod
    def is_group(chat_id: int) -> bool:
        return chat_id < 0

    def global_wait(self) -> float:
        now = self._clock()
        wait = self._paused_until - now
        while self._global and self._global[0] <= now - self._global_window:
            self._global.popleft()
        if len(self._global) >= self._global_count:
            wait = max(wait, self._global[0] + self._global_window - now)
        if self._global:
            wait = max(wait, self._global[-1] + self._global_gap - now)
        return max(0.0, wait)

    def busy_chats(self) -> tuple[set[int], float]:
        """Chats that may not receive now (per-chat interval, pause, group window), and
        the seconds until the first of them may.

        Cheap whatever the number of chats: only recent sends, pauses and groups are
        looked at. The delivery worker leaves these chats out of its query, so a
        backlog of thousands never makes it fetch rows it cannot send.
        """
        now = self._clock()
        while self._recent and self._recent[0][0] <= now - self._chat_interval:
            self._recent.popleft()
        busy = {chat for _, chat in self._recent}
        frees = [self._recent[0][0] + self._chat_interval - now] if self._recent else []
        for chat, until in list(self._chat_paused_until.items()):
            if until > now:
                busy.add(chat)
                frees.append(until - now)
            else:
                del self._chat_paused_until[chat]
        for chat in self._group:
            wait = self.wait_for_group(chat, now)
            if wait > 0:
                busy.add(chat)
                frees.append(wait)
        return busy, max(0.0, min(frees, default=0.0))

    def wait_for_group(self, chat_id: int, now: float) -> float:
        sent = self._group.get(chat_id)
        if not sent:
            return 0.0
        while sent and sent[0] <= now - self._group_window:
            sent.popleft()
        if len(sent) >= self._group_count:
            return sent[0] + self._group_window - now
        return 0.0

    def group_room(self, chat_id: int) -> int:
        """Sends a group may still receive within its window (its sends recorded so far
        counted): 0 once the send just recorded was the last one of its minute."""
        sent = self._group.get(chat_id)
        if not sent:
            return self._group_count
        self.wait_for_group(chat_id, self._clock())  # forgets the sends out of the window
        return max(0, self._group_count - len(sent))

    def wait(self, chat_id: int) -> float:
        """Seconds until a message to `chat_id` may go; 0 means now."""
        now = self._clock()
        waits = [self.global_wait(), self._chat_paused_until.get(chat_id, 0.0) - now]
        last = self._last_to_chat.get(chat_id)
        if last is not None:
            waits.append(last + self._chat_interval - now)
        if self.is_group(chat_id):
            waits.append(self.wait_for_group(chat_id, now))
        return max(0.0, *waits)

    def record(self, chat_id: int) -> None:
        now = self._clock()
        self._global.append(now)
        self._last_to_chat[chat_id] = now
        self._recent.append((now, chat_id))
        if self.is_group(chat_id):
            self._group.setdefault(chat_id, deque()).append(now)
        if len(self._last_to_chat) > 50_000:
            self._forget_quiet_chats(now)

    def resend(self, chat_id: int) -> None:
        """The send recorded for `chat_id` really goes out now: move its record here.

        A task may start a little after it was recorded (the event loop was busy); its
        record must say when the request left, or the next ones could follow too closely.
        """
        last = self._last_to_chat.get(chat_id)
        if last is None:
            return
        for window in (self._global, self._group.get(chat_id)):
            if window is not None:
                try:
                    window.remove(last)
                except ValueError:
                    continue
                window.append(self._clock())
        self._last_to_chat[chat_id] = self._clock()
        self._recent.append((self._clock(), chat_id))


    def rate_limited(self, chat_id: int, seconds: float) -> bool:
        """Telegram answered 429 for `chat_id`: the chat waits `seconds`, and so does
        everyone when 429s came for several chats in a short while (the bot as a whole is
        limited then). Returns whether everyone waits."""
        now = self._clock()
        self._chat_paused_until[chat_id] = max(
            self._chat_paused_until.get(chat_id, 0.0), now + seconds)
        self._limited.append((now, chat_id))
        while self._limited and self._limited[0][0] < now - BOT_LIMITED_SECONDS:
            self._limited.popleft()
        if len({chat for _, chat in self._limited}) < BOT_LIMITED_CHATS:
            return False
        self._paused_until = max(self._paused_until, now + seconds)
        return True

    def group_history(self) -> list[tuple[int, float]]:
        """(group, seconds ago) of every send to a group still inside its window."""
        now = self._clock()
        return [(chat, now - at) for chat, sent in self._group.items() for at in sent
                if at > now - self._group_window]

    def remember(self, history: list[tuple[int, float]]) -> None:
        """Sends made elsewhere (by the previous leader): (chat, seconds ago), any order."""
        now = self._clock()
        for chat, ago in sorted(history, key=lambda item: -item[1]):
            at = now - ago
            if self.is_group(chat):
                window = self._group.setdefault(chat, deque())
                window.append(at)
                if len(window) > 1 and window[-2] > at:
                    self._group[chat] = deque(sorted(window))
            self._last_to_chat[chat] = max(self._last_to_chat.get(chat, at), at)

    def _forget_quiet_chats(self, now: float) -> None:
        horizon = now - max(self._chat_interval, self._group_window)
        self._last_to_chat = {c: t for c, t in self._last_to_chat.items() if t > horizon}
        self._chat_paused_until = {
            c: t for c, t in self._chat_paused_until.items() if t > now
        }
