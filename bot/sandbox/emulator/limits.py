"""Telegram's rate limits: checked over recorded calls after the fact (`violations`) or
enforced while serving, a send beyond them answered 429 (`RateLimits.enforce_limits`)."""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.emulator.protocol import SEND_METHODS, ApiError
from bot.sandbox.emulator.state import CallRecord, EmulatorState


@dataclass(frozen=True)
class Violation:
    """A call beyond a rate limit (``kind``: "global", "chat" or "group")."""

    kind: str
    time: float
    method: str
    chat_id: int | str | None
    count: int  # calls in the window, this one included
    limit: int


def violations(
    calls: Iterable[CallRecord],
    *,
    global_per_second: int = 30,
    per_chat_per_second: int = 1,
    per_group_per_minute: int = 20,
    tolerance: float = 0.0,
    methods: Iterable[str] = SEND_METHODS,
) -> list[Violation]:
    """Check successful calls (of ``methods``) against Telegram's limits after the fact.

    Sliding windows: at most ``global_per_second`` in any 1 s, ``per_chat_per_second``
    per chat in any 1 s, ``per_group_per_minute`` per group (negative chat id) in any
    60 s. ``tolerance`` seconds shrink each window (to forgive timer jitter)."""
    wanted = set(methods)
    limiter = Limiter(global_per_second, per_chat_per_second, per_group_per_minute, tolerance)
    found: list[Violation] = []
    for call in sorted(calls, key=lambda c: c.time):
        if call.ok and call.method in wanted:
            found.extend(limiter.check(call.method, call.chat_id, call.time, record_anyway=True))
    return found


class Limiter:
    def __init__(self, per_sec: int, per_chat: int, per_group_min: int, tolerance: float) -> None:
        self.limits = (per_sec, per_chat, per_group_min)
        self.tolerance = tolerance
        self.all: deque[float] = deque()
        self.chats: dict[Any, deque[float]] = defaultdict(deque)
        self.groups: dict[Any, deque[float]] = defaultdict(deque)

    def check(
        self, method: str, chat_id: int | str | None, now: float, *, record_anyway: bool = False
    ) -> list[Violation]:
        per_sec, per_chat, per_group = self.limits
        windows: list[tuple[str, deque[float], float, int]] = [("global", self.all, 1.0, per_sec)]
        if chat_id is not None:
            windows.append(("chat", self.chats[chat_id], 1.0, per_chat))
            if isinstance(chat_id, int) and chat_id < 0:
                windows.append(("group", self.groups[chat_id], 60.0, per_group))
        found: list[Violation] = []
        for kind, q, window, limit in windows:
            span = max(window - self.tolerance, 0.0)
            while q and q[0] <= now - span:
                q.popleft()
            if len(q) >= limit:
                found.append(Violation(kind, now, method, chat_id, len(q) + 1, limit))
        if not found or record_anyway:
            for _, q, _, _ in windows:
                q.append(now)
        return found

    def retry_after(self, v: Violation) -> int:
        if v.kind == "global":
            q = self.all
            window = 1.0
        elif v.kind == "chat":
            q, window = self.chats[v.chat_id], 1.0
        else:
            q, window = self.groups[v.chat_id], 60.0
        wait = q[0] + max(window - self.tolerance, 0.0) - v.time if q else 1.0
        return max(1, math.ceil(wait))


class RateLimits(EmulatorState):
    """Telegram's limits enforced on the send methods."""

    def enforce_limits(
        self,
        global_per_second: int = 30,
        per_chat_per_second: int = 1,
        per_group_per_minute: int = 20,
        *,
        tolerance: float = 0.0,
    ) -> None:
        """Answer 429 (computed retry_after) to send calls beyond Telegram's limits and
        count them in ``limit_violations``/``limit_violation_log``. Windows as in
        :func:`violations`; rejected calls do not use up the budget."""
        self._limiter = Limiter(
            global_per_second, per_chat_per_second, per_group_per_minute, tolerance
        )

    @property
    def limits_tolerance(self) -> float:
        """Seconds the enforced windows are shrunk by (0 when none are enforced)."""
        return self._limiter.tolerance if self._limiter is not None else 0.0

    def disable_limits(self) -> None:
        """Stop enforcing rate limits."""
        self._limiter = None

    def _over_limit(
        self, method: str, chat_id: int | str | None, arrival: float
    ) -> ApiError | None:
        """The 429 answer to a send beyond the enforced limits (counted); None within them."""
        if self._limiter is None or method not in SEND_METHODS:
            return None
        found = self._limiter.check(method, chat_id, arrival)
        if not found:
            return None
        self.limit_violations += 1
        self.limit_violation_log.extend(found)
        retry = max(self._limiter.retry_after(v) for v in found)
        return ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
