"""Injected faults: what goes wrong (`Fault`), where it applies (`FaultRule`), and picking
the fault that shapes an answer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from bot.sandbox.emulator.protocol import SEND_METHODS, ApiError, Json
from bot.sandbox.emulator.state import EmulatorState


@dataclass(frozen=True)
class Fault:
    """What goes wrong. Build with the class methods:

    - ``Fault.too_many_requests(retry_after=3)`` → 429 with ``parameters.retry_after``
    - ``Fault.server_error(status=500)`` (or 502, 503, 504) → that status, Telegram body
    - ``Fault.forbidden_blocked()`` → 403 "Forbidden: bot was blocked by the user"
    - ``Fault.timeout(seconds=2, deliver=True)`` → the call is performed (the message IS
      delivered when ``deliver``) but the response is held for ``seconds``, longer than
      the client waits, so a retrying client produces a duplicate
    - ``Fault.disconnect(deliver=False)`` → the connection is dropped without an answer
    - ``Fault.error(status, description, parameters=None)`` → any other error answer
    """

    kind: str
    status: int = 0
    description: str = ""
    retry_after: int = 0
    seconds: float = 0.0
    deliver: bool = False
    parameters: Json | None = None

    @classmethod
    def too_many_requests(cls, retry_after: int = 5) -> Fault:
        """429 "Too Many Requests: retry after N" with parameters.retry_after = N."""
        return cls(
            "too_many_requests",
            429,
            f"Too Many Requests: retry after {retry_after}",
            retry_after=retry_after,
            parameters={"retry_after": retry_after},
        )

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """A 5xx answer with a Telegram-like JSON body."""
        texts = {
            500: "Internal Server Error",
            502: "Bad Gateway",
            503: "Service Unavailable",
            504: "Gateway Timeout",
        }
        return cls("server_error", status, texts.get(status, "Internal Server Error"))

    @classmethod
    def forbidden_blocked(cls) -> Fault:
        """403 "Forbidden: bot was blocked by the user"."""
        return cls("forbidden_blocked", 403, "Forbidden: bot was blocked by the user")

    @classmethod
    def timeout(cls, seconds: float = 5.0, *, deliver: bool = True) -> Fault:
        """Hold the response ``seconds`` (after performing the call when ``deliver``)."""
        return cls("timeout", seconds=seconds, deliver=deliver)

    @classmethod
    def disconnect(cls, *, deliver: bool = False) -> Fault:
        """Close the connection without answering (after performing it when ``deliver``)."""
        return cls("disconnect", deliver=deliver)

    @classmethod
    def error(cls, status: int, description: str, parameters: Json | None = None) -> Fault:
        """Any error answer, e.g. ``Fault.error(400, "Bad Request: chat not found")``."""
        return cls("error", status, description, parameters=parameters)

    def api_error(self) -> ApiError:
        return ApiError(self.status, self.description, self.parameters)


@dataclass
class FaultRule:
    """An injected fault and where it applies; see :meth:`FakeTelegram.inject`."""

    fault: Fault
    methods: frozenset[str] | None  # None: SEND_METHODS; {"*"}: every method
    chat_id: int | None
    on_calls: frozenset[int] | None
    count: int | None
    until: float | None  # monotonic deadline
    seen: int = 0  # matching calls since injection
    fired: int = 0

    def matches(self, method: str, chat_id: int | None) -> bool:
        if self.methods is None:
            if method not in SEND_METHODS:
                return False
        elif "*" not in self.methods and method not in self.methods:
            return False
        return self.chat_id is None or chat_id == self.chat_id


class FaultInjection(EmulatorState):
    """Calls made to fail: `inject`, `remove_fault`, `clear_faults`."""

    def inject(
        self,
        fault: Fault,
        *,
        method: str | Iterable[str] | None = None,
        chat_id: int | None = None,
        on_calls: Iterable[int] | None = None,
        count: int | None = None,
        duration: float | None = None,
    ) -> FaultRule:
        """Make matching calls fail with ``fault``.

        A call matches when its method is ``method`` (a name or several; "*" = every
        method; default: the send methods of :data:`SEND_METHODS`) and, if ``chat_id``
        is given, it targets that chat. Matching calls are numbered 1, 2, ... from the
        injection; ``on_calls`` picks which of them fail (default: all). ``count`` stops
        the rule after that many failures; ``duration`` after that many seconds.
        Without count/duration the rule stays until :meth:`remove_fault`/:meth:`clear_faults`.
        The first rule (in injection order) that fires wins."""
        methods: frozenset[str] | None
        if method is None:
            methods = None
        elif isinstance(method, str):
            methods = frozenset({method})
        else:
            methods = frozenset(method)
        rule = FaultRule(
            fault=fault,
            methods=methods,
            chat_id=chat_id,
            on_calls=frozenset(on_calls) if on_calls is not None else None,
            count=count,
            until=self.monotonic() + duration if duration is not None else None,
        )
        self._rules.append(rule)
        return rule

    def remove_fault(self, rule: FaultRule) -> None:
        """Remove one injected rule."""
        with contextlib.suppress(ValueError):
            self._rules.remove(rule)

    def clear_faults(self) -> None:
        """Remove every injected rule (refused connections are not affected)."""
        self._rules.clear()

    def _pick_fault(self, method: str, chat_id: int | str | None) -> Fault | None:
        now = self.monotonic()
        chosen: FaultRule | None = None
        for rule in list(self._rules):
            if rule.until is not None and now >= rule.until:
                self._rules.remove(rule)
                continue
            if not rule.matches(method, chat_id if isinstance(chat_id, int) else None):
                continue
            rule.seen += 1
            if chosen is None and (rule.on_calls is None or rule.seen in rule.on_calls):
                chosen = rule
        if chosen is None:
            return None
        chosen.fired += 1
        if chosen.count is not None and chosen.fired >= chosen.count:
            self.remove_fault(chosen)
        return chosen.fault
