"""Telegram's flood limits, kept on our side so the bot never provokes a 429.

Three limits, all configurable: messages per second for the whole bot, per
second to one chat, and per minute to one group. Windows are sliding and a
little wider than nominal, so that jitter between our clock and the moment the
request reaches Telegram never turns into a burst over the limit.
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

    def quiet(self, chat_id: int, seconds: float) -> bool:
        """Nothing was sent to the chat in the last `seconds`."""
        last = self._last_to_chat.get(chat_id)
        return last is None or self._clock() - last > seconds

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


    def pause_chat(self, chat_id: int, seconds: float) -> None:
        self._chat_paused_until[chat_id] = max(
            self._chat_paused_until.get(chat_id, 0.0), self._clock() + seconds
        )

    def pause_all(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _forget_quiet_chats(self, now: float) -> None:
        horizon = now - max(self._chat_interval, self._group_window)
        self._last_to_chat = {c: t for c, t in self._last_to_chat.items() if t > horizon}
        self._chat_paused_until = {
            c: t for c, t in self._chat_paused_until.items() if t > now
        }
