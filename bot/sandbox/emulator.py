"""A local Telegram Bot API emulator: ``FakeTelegram``.

One component for both the end-to-end tests (the real bot, through aiogram's real
``AiohttpSession`` and ``TelegramAPIServer.from_base(base_url)``, talks to it over
loopback HTTP) and the interactive sandbox (``python -m bot sandbox``).

It keeps Telegram-like state (users, chats, members, messages with per-chat ids,
forum topics, the update queue), answers ``/bot{token}/{method}`` in Telegram's exact
response shape, validates requests the way Telegram does where it matters for a
bot's correctness, records every call, and injects faults (429, 5xx, 403, slow
responses, refused connections) and, optionally, enforces Telegram's rate limits.

Typical test use::

    async with FakeTelegram(token=TOKEN) as tg:
        tg.add_user(100, "Anna")
        tg.add_group(-1001, "Staff", is_forum=True, members={200: "administrator"})
        bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
        ...
        tg.send_message(100, "/start")
        [reply] = await tg.wait_sent(100, 1)
        assert "ticket" in reply["plain"]
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import math
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import BodyPartReader, ClientSession, ClientTimeout, TCPConnector, web

from .textparse import EntityParseError, parse_text, utf16_len

__all__ = [
    "SEND_METHODS",
    "ApiError",
    "CallRecord",
    "FakeTelegram",
    "Fault",
    "FaultRule",
    "Violation",
    "violations",
]

Json = dict[str, Any]
BotMessageListener = Callable[[Json, str], Any]

DEFAULT_BOT_ID = 7_000_000_001

#: Methods that post a new message; the default target of faults and rate limits.
SEND_METHODS: frozenset[str] = frozenset(
    {
        "sendMessage",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
        "sendPhoto",
        "sendDocument",
        "sendVideo",
        "sendVoice",
        "sendAudio",
        "sendAnimation",
        "sendSticker",
        "sendMediaGroup",
        "sendContact",
        "sendLocation",
        "sendVenue",
        "sendPoll",
        "sendDice",
        "sendVideoNote",
    }
)
EDIT_METHODS: frozenset[str] = frozenset(
    {"editMessageText", "editMessageCaption", "editMessageReplyMarkup", "editMessageMedia"}
)
MEDIA_KINDS = ("photo", "document", "video", "voice", "audio", "animation", "sticker", "video_note")
# update types delivered when a bot never named allowed_updates (Telegram's default)
DEFAULT_UPDATE_TYPES_EXCLUDED = frozenset(
    {"chat_member", "message_reaction", "message_reaction_count"}
)
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a previous content and reply markup of the message"
)
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "media",
        "commands",
        "scope",
        "allowed_updates",
        "menu_button",
        "message_ids",
        "results",
        "options",
        "permissions",
        "rights",
        "reaction",
    }
)
_INT_FIELDS = frozenset(
    {
        "message_id",
        "message_thread_id",
        "offset",
        "limit",
        "timeout",
        "user_id",
        "reply_to_message_id",
        "cache_time",
        "icon_color",
        "until_date",
        "duration",
        "width",
        "height",
        "max_connections",
        "length",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "show_alert",
        "disable_web_page_preview",
        "drop_pending_updates",
        "has_spoiler",
        "supports_streaming",
        "disable_content_type_detection",
        "show_caption_above_media",
        "only_if_banned",
        "revoke_messages",
        "is_big",
        "remove_caption",
    }
)
_CHAT_FIELDS = frozenset({"chat_id", "from_chat_id"})


class ApiError(Exception):
    """An error answer: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(self, code: int, description: str, parameters: Json | None = None) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> Json:
        body: Json = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


# --------------------------------------------------------------------------- faults


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


# --------------------------------------------------------------------------- call records


@dataclass
class CallRecord:
    """One HTTP call the bot made."""

    method: str
    params: Json  # decoded: ints, bools, parsed JSON fields; uploads as {"filename", "size"}
    time: float  # time.monotonic() at arrival
    wall: float  # time.time() at arrival
    chat_id: int | str | None
    ok: bool = True
    error_code: int | None = None
    description: str | None = None
    result: Any = None
    fault: str | None = None  # the injected fault kind that shaped the answer, if any


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
    limiter = _Limiter(global_per_second, per_chat_per_second, per_group_per_minute, tolerance)
    found: list[Violation] = []
    for call in sorted(calls, key=lambda c: c.time):
        if call.ok and call.method in wanted:
            found.extend(limiter.check(call.method, call.chat_id, call.time, record_anyway=True))
    return found


class _Limiter:
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


# --------------------------------------------------------------------------- state


@dataclass
class ChatState:
    info: Json  # the Chat object as it appears in messages
    members: dict[int, str] = field(default_factory=dict)
    messages: dict[int, Json] = field(default_factory=dict)
    topics: dict[int, Json] = field(default_factory=dict)  # thread id → ForumTopic (+closed)
    next_id: int = 1

    @property
    def id(self) -> int:
        return int(self.info["id"])

    @property
    def is_forum(self) -> bool:
        return bool(self.info.get("is_forum"))

    def new_id(self) -> int:
        mid = self.next_id
        self.next_id += 1
        return mid


_PRIVATE_KEYS = ("plain", "deleted", "service")


def _public(msg: Json) -> Json:
    """A message as Telegram would send it (without the emulator's bookkeeping keys)."""
    out = {k: v for k, v in msg.items() if k not in _PRIVATE_KEYS}
    reply = out.get("reply_to_message")
    if isinstance(reply, dict):
        out["reply_to_message"] = _public(reply)
    return out


class FakeTelegram:
    """The emulated Bot API server plus the test-side API to drive and inspect it."""

    def __init__(
        self,
        token: str | None = None,
        *,
        bot_id: int | None = None,
        username: str = "frontdesk_bot",
        first_name: str = "Frontdesk",
        strict_html: bool = True,
    ) -> None:
        """``token``: only this token is accepted (others get 401); None accepts any.
        ``strict_html``: reject a bare ``&`` in HTML (Telegram passes it through)."""
        self.token = token
        if bot_id is None:
            head = (token or "").split(":", 1)[0]
            bot_id = int(head) if head.isdigit() else DEFAULT_BOT_ID
        self.bot_user: Json = {
            "id": bot_id,
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.strict_html = strict_html
        self.users: dict[int, Json] = {}
        self.chats: dict[int, ChatState] = {}
        self.calls: list[CallRecord] = []
        self.callback_answers: list[Json] = []
        self.commands: dict[str, list[Json]] = {}
        self.menu_buttons: dict[str, Json] = {}
        self.reply_keyboards: dict[int, Json] = {}  # chat id → last ReplyKeyboardMarkup sent
        self.limit_violations = 0
        self.limit_violation_log: list[Violation] = []
        self.webhook: Json | None = None
        self._bot_messages: list[Json] = []
        self._updates: list[Json] = []
        self._update_ids = itertools.count(1)
        self._allowed_updates: list[str] | None = None
        self._callbacks: dict[str, Json] = {}
        self._callback_ids = itertools.count(1)
        self._files: dict[str, Json] = {}
        self._file_ids = itertools.count(1)
        self._listeners: list[BotMessageListener] = []
        self._rules: list[FaultRule] = []
        self._limiter: _Limiter | None = None
        self._changed = asyncio.Event()
        self._last_activity = time.monotonic()
        self._inflight = 0
        self._poll_generation = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._reopen_task: asyncio.Task[None] | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        # Webhook requests in flight at once (see _webhook_loop); 1: strictly in order.
        self.webhook_parallel = 1
        self._tasks: set[asyncio.Task[Any]] = set()
        self._methods: dict[str, Callable[[Json], Any]] = {
            name[3:].lower(): getattr(self, name) for name in dir(self) if name.startswith("_m_")
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening; returns the base URL, e.g. ``http://127.0.0.1:40123``."""
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        self._host = host
        self._site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await self._site.start()
        server = self._site._server
        sockets = getattr(server, "sockets", None) or []
        self._port = int(sockets[0].getsockname()[1]) if sockets else port
        self._closing = False
        return self.base_url

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server (for ``TelegramAPIServer.from_base``)."""
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    async def stop(self) -> None:
        """Stop the server; pending long polls and held responses end at once."""
        self._closing = True
        self._notify()
        for task in [self._reopen_task, self._webhook_task, *self._tasks]:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self._runner is not None:
            self._drop_connections()
            await self._runner.cleanup()
        self._runner = None
        self._site = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _drop_connections(self) -> None:
        server = self._runner.server if self._runner is not None else None
        if server is not None:
            for handler in list(server.connections):
                handler.force_close()
                transport = handler.transport
                if transport is not None:
                    transport.close()

    async def refuse_connections(self, seconds: float | None) -> None:
        """Close the listening socket and every open connection (clients see
        "connection refused"); listen again on the same port after ``seconds``
        (None: until :meth:`accept_connections`). Returns once connections are refused."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        self._drop_connections()
        if self._reopen_task is not None:
            self._reopen_task.cancel()
            self._reopen_task = None
        if seconds is not None:
            self._reopen_task = asyncio.create_task(self._reopen_later(seconds))
        self._notify()

    async def _reopen_later(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._reopen_task = None
        await self.accept_connections()

    async def accept_connections(self) -> None:
        """Listen again (on the same port) after :meth:`refuse_connections`."""
        if self._reopen_task is not None and self._reopen_task is not asyncio.current_task():
            self._reopen_task.cancel()
            self._reopen_task = None
        if self._site is None and self._runner is not None:
            self._site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
            await self._site.start()
            self._notify()

    @property
    def refusing(self) -> bool:
        """True while connections are refused."""
        return self._site is None

    # ------------------------------------------------------------------ notifications

    def _notify(self) -> None:
        ev = self._changed
        self._changed = asyncio.Event()
        ev.set()

    def _touch(self) -> None:
        self._last_activity = time.monotonic()
        self._notify()

    def on_bot_message(self, callback: BotMessageListener) -> Callable[[], None]:
        """Call ``callback(message, kind)`` for every message the bot sends
        (kind "sent"), edits ("edited") or deletes ("deleted"). A coroutine result is
        scheduled as a task. Returns a function that unsubscribes."""
        self._listeners.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return remove

    def _emit(self, msg: Json, kind: str) -> None:
        for listener in list(self._listeners):
            result = listener(msg, kind)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ waiting helpers

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

    async def wait_idle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until every queued update was fetched, no call is in flight and no call
        (other than an empty getUpdates) came for ``quiet`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ev = self._changed
            now = time.monotonic()
            busy = self._inflight > 0 or self._has_pending()
            left = quiet - (now - self._last_activity)
            if not busy and left <= 0:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"bot not idle within {timeout}s (pending updates: {len(self._updates)}, "
                    f"in flight: {self._inflight})"
                )
            wait = remaining if busy else min(remaining, left)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), wait)

    def _has_pending(self) -> bool:
        return any(self._update_allowed(u) for u in self._updates)

    # ------------------------------------------------------------------ test-side state API

    def add_user(
        self,
        user_id: int,
        first_name: str,
        username: str | None = None,
        language_code: str | None = "ru",
        last_name: str | None = None,
    ) -> Json:
        """Register a user (who has started the bot) and their private chat; returns the User."""
        user: Json = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self.users[user_id] = user
        info: Json = {"id": user_id, "type": "private", "first_name": first_name}
        if last_name:
            info["last_name"] = last_name
        if username:
            info["username"] = username
        if user_id in self.chats:
            self.chats[user_id].info = info
        else:
            self.chats[user_id] = ChatState(info=info, members={user_id: "member"})
        return user

    def add_group(
        self,
        chat_id: int,
        title: str,
        is_forum: bool = True,
        members: dict[int, str] | None = None,
        *,
        bot_status: str = "administrator",
    ) -> Json:
        """Register a supergroup (a forum by default); ``members`` maps user id → status
        (creator/administrator/member/restricted/left/kicked); the bot itself gets
        ``bot_status``. Members must be added with :meth:`add_user` first (or they are
        created with a generated name). Returns the Chat."""
        info: Json = {"id": chat_id, "type": "supergroup", "title": title}
        if is_forum:
            info["is_forum"] = True
        chat = ChatState(info=info)
        for uid, status in (members or {}).items():
            if uid not in self.users:
                self.add_user(uid, f"User{uid}")
            chat.members[uid] = status
        chat.members[self.bot_id] = bot_status
        self.chats[chat_id] = chat
        return info

    def set_member(self, chat_id: int, user_id: int, status: str) -> None:
        """Change a member's status in a group; queues a ``chat_member`` update (or
        ``my_chat_member`` for the bot itself)."""
        chat = self._chat_state(chat_id)
        old = chat.members.get(user_id, "left")
        chat.members[user_id] = status
        if old == status:
            return
        user = self.bot_user if user_id == self.bot_id else self.users[user_id]
        kind = "my_chat_member" if user_id == self.bot_id else "chat_member"
        self._queue(
            kind,
            {
                "chat": dict(chat.info),
                "from": user,
                "date": int(time.time()),
                "old_chat_member": self._member_obj(user, old),
                "new_chat_member": self._member_obj(user, status),
            },
        )

    def block_bot(self, user_id: int) -> FaultRule:
        """The user blocks the bot: a ``my_chat_member`` update (kicked) is queued and
        sends to the user answer 403 until :meth:`remove_fault` on the returned rule."""
        user = self.users[user_id]
        self._queue(
            "my_chat_member",
            {
                "chat": dict(self.chats[user_id].info),
                "from": user,
                "date": int(time.time()),
                "old_chat_member": self._member_obj(self.bot_user, "member"),
                "new_chat_member": self._member_obj(self.bot_user, "kicked"),
            },
        )
        return self.inject(Fault.forbidden_blocked(), chat_id=user_id, method="*")

    @property
    def bot_id(self) -> int:
        return int(self.bot_user["id"])

    def _chat_state(self, chat_id: int) -> ChatState:
        try:
            return self.chats[chat_id]
        except KeyError:
            raise KeyError(f"unknown chat {chat_id}: add_user/add_group first") from None

    # ------------------------------------------------------------------ injecting updates

    def _queue(self, kind: str, payload: Json) -> Json:
        update = {"update_id": next(self._update_ids), kind: payload}
        self._updates.append(update)
        self._touch()
        return update

    def raw_update(self, update: Json) -> Json:
        """Queue any update dict as is (an ``update_id`` is assigned if missing)."""
        update = dict(update)
        if "update_id" not in update:
            update["update_id"] = next(self._update_ids)
        self._updates.append(update)
        self._touch()
        return update

    def _new_file(self, kind: str, meta: Json | None = None, content: bytes | None = None) -> Json:
        n = next(self._file_ids)
        prefix = {
            "photo": "AgAC",
            "document": "BQAC",
            "voice": "AwAC",
            "video": "BAAC",
            "sticker": "CAAC",
            "audio": "CQAC",
            "animation": "CgAC",
        }.get(kind, "BQAC")
        obj: Json = {"file_id": f"{prefix}fake{n:06d}", "file_unique_id": f"AQAD{n:06d}"}
        if content is not None:
            obj["file_size"] = len(content)
        defaults: dict[str, Json] = {
            "photo": {"width": 1280, "height": 720},
            "video": {"width": 1280, "height": 720, "duration": 5},
            "animation": {"width": 320, "height": 240, "duration": 2},
            "voice": {"duration": 3, "mime_type": "audio/ogg"},
            "audio": {"duration": 60},
            "video_note": {"length": 240, "duration": 3},
            "sticker": {
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            },
        }
        obj.update(defaults.get(kind, {}))
        obj.update(meta or {})
        self._files[obj["file_id"]] = {"kind": kind, "obj": obj, "content": content or b""}
        return obj

    def _media_value(self, kind: str, obj: Json) -> Any:
        return [obj] if kind == "photo" else obj

    def send_message(
        self,
        user_id: int,
        text: str | None = None,
        *,
        chat_id: int | None = None,
        thread_id: int | None = None,
        reply_to: int | None = None,
        photo: bool = False,
        document: str | Json | None = None,
        voice: bool = False,
        video: bool = False,
        sticker: bool = False,
        contact: Json | None = None,
        caption: str | None = None,
        entities: list[Json] | None = None,
    ) -> Json:
        """A user writes: queues a ``message`` update and returns the Message.

        ``chat_id`` defaults to the user's private chat; ``thread_id`` is a forum topic;
        ``reply_to`` a message id in the same chat. Media: ``photo``/``voice``/``video``/
        ``sticker`` flags, ``document`` (a file name or a Document dict), ``contact`` (a
        Contact dict); ``caption`` goes with media. A leading ``/command`` gets a
        ``bot_command`` entity unless ``entities`` are given."""
        if user_id not in self.users:
            raise KeyError(f"unknown user {user_id}: add_user first")
        chat = self._chat_state(user_id if chat_id is None else chat_id)
        if chat.info["type"] != "private" and chat.members.get(user_id, "left") in {
            "left",
            "kicked",
        }:
            raise ValueError(f"user {user_id} is not a member of chat {chat.id}")
        msg = self._new_message(chat, self.users[user_id], thread_id=thread_id, reply_to=reply_to)
        if text is not None:
            msg["text"] = text
            ents = entities if entities is not None else _command_entities(text)
            if ents:
                msg["entities"] = ents
        if photo:
            msg["photo"] = [
                self._new_file("photo", {"width": 90, "height": 51}),
                self._new_file("photo"),
            ]
        if document is not None:
            meta = (
                document
                if isinstance(document, dict)
                else {"file_name": document, "mime_type": _guess_mime(document)}
            )
            msg["document"] = self._new_file("document", meta)
        if voice:
            msg["voice"] = self._new_file("voice")
        if video:
            msg["video"] = self._new_file("video")
        if sticker:
            msg["sticker"] = self._new_file("sticker", {"emoji": "👍"})
        if contact is not None:
            msg["contact"] = {"first_name": self.users[user_id]["first_name"], **contact}
        if caption is not None:
            msg["caption"] = caption
        if "text" not in msg and not any(k in msg for k in (*MEDIA_KINDS, "contact")):
            raise ValueError("send_message needs text or media")
        msg["plain"] = msg.get("text", msg.get("caption", ""))
        chat.messages[msg["message_id"]] = msg
        self._queue("message", _public(msg))
        return msg

    def edit_message(self, user_id: int, chat_id: int, message_id: int, new_text: str) -> Json:
        """A user edits their message: queues an ``edited_message`` update; returns it."""
        chat = self._chat_state(chat_id)
        msg = chat.messages.get(message_id)
        if msg is None or msg.get("from", {}).get("id") != user_id:
            raise KeyError(f"user {user_id} has no message {message_id} in chat {chat_id}")
        key = "text" if "text" in msg else "caption"
        msg[key] = new_text
        msg["plain"] = new_text
        msg["edit_date"] = int(time.time())
        if key == "text":
            ents = _command_entities(new_text)
            if ents:
                msg["entities"] = ents
            else:
                msg.pop("entities", None)
        self._queue("edited_message", _public(msg))
        return msg

    def press_button(
        self, user_id: int, chat_id: int, message_id: int, data: str, *, check: bool = True
    ) -> str:
        """A user presses an inline button: queues a ``callback_query`` update carrying the
        message; returns the callback query id. With ``check`` the message must carry a
        button with this callback_data; ``check=False`` forges any data (even for a
        missing message: the update then holds an inaccessible message)."""
        if user_id not in self.users:
            raise KeyError(f"unknown user {user_id}")
        chat = self._chat_state(chat_id)
        msg = chat.messages.get(message_id)
        if check:
            if msg is None or msg.get("deleted"):
                raise KeyError(f"no message {message_id} in chat {chat_id}")
            datas = [b.get("callback_data") for b in _buttons(msg)]
            if data not in datas:
                raise ValueError(f"message {message_id} has no button with data {data!r}: {datas}")
        qid = f"{self.bot_id % 100000}{next(self._callback_ids):012d}"
        if msg is not None and not msg.get("deleted"):
            message = _public(msg)
        else:
            message = {"chat": dict(chat.info), "message_id": message_id, "date": 0}
        query: Json = {
            "id": qid,
            "from": self.users[user_id],
            "message": message,
            "chat_instance": str(abs(chat_id) * 7 + 13),
            "data": data,
        }
        self._callbacks[qid] = {
            "user_id": user_id,
            "chat_id": chat_id,
            "message_id": message_id,
            "data": data,
            "answered": False,
        }
        self._queue("callback_query", query)
        return qid

    def find_button(
        self, chat_id: int, label: str, *, thread_id: int | None = None
    ) -> tuple[int, str] | None:
        """The (message_id, callback_data) of the most recent bot message in the chat
        (thread) with an inline button whose text is ``label`` (case-insensitive,
        surrounding whitespace ignored)."""
        want = label.strip().casefold()
        for msg in reversed(self.sent(chat_id, thread_id)):
            for b in _buttons(msg):
                if b.get("text", "").strip().casefold() == want and "callback_data" in b:
                    return int(msg["message_id"]), str(b["callback_data"])
        return None

    # ------------------------------------------------------------------ reading state

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

    # ------------------------------------------------------------------ faults and limits

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
            until=time.monotonic() + duration if duration is not None else None,
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
        now = time.monotonic()
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
        self._limiter = _Limiter(
            global_per_second, per_chat_per_second, per_group_per_minute, tolerance
        )

    def disable_limits(self) -> None:
        """Stop enforcing rate limits."""
        self._limiter = None

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrival = time.monotonic()
        wall = time.time()
        name = request.match_info["method"]
        token = request.match_info["token"]
        if self.token is not None and token != self.token:
            return _json_response(ApiError(401, "Unauthorized").body(), 401)
        handler = self._methods.get(name.lower())
        if handler is None:
            return _json_response(ApiError(404, "Not Found").body(), 404)
        method = handler.__name__[3:]
        is_poll = method == "getUpdates"
        if not is_poll:
            self._inflight += 1
            self._touch()
        try:
            try:
                params = await _read_params(request)
            except ApiError as exc:
                self._record(method, {}, arrival, wall, None, exc, None)
                return _json_response(exc.body(), exc.code)
            return await self._serve(request, method, handler, params, arrival, wall)
        finally:
            if not is_poll:
                self._inflight -= 1
                self._touch()

    async def _serve(
        self,
        request: web.Request,
        method: str,
        handler: Callable[[Json], Any],
        params: Json,
        arrival: float,
        wall: float,
    ) -> web.StreamResponse:
        chat_id = params.get("chat_id")
        fault = self._pick_fault(method, chat_id)
        error: ApiError | None = None
        result: Any = None
        if fault is not None and fault.kind not in {"timeout", "disconnect"}:
            error = fault.api_error()
        elif fault is not None and not fault.deliver:
            pass
        else:
            if self._limiter is not None and method in SEND_METHODS:
                found = self._limiter.check(method, chat_id, arrival)
                if found:
                    self.limit_violations += 1
                    self.limit_violation_log.extend(found)
                    retry = max(self._limiter.retry_after(v) for v in found)
                    error = ApiError(
                        429, f"Too Many Requests: retry after {retry}", {"retry_after": retry}
                    )
            if error is None:
                try:
                    result = handler(params)
                    if inspect.isawaitable(result):
                        result = await result
                except ApiError as exc:
                    error = exc
        self._record(
            method, params, arrival, wall, chat_id, error, result, fault.kind if fault else None
        )
        if method == "getUpdates" and error is None and not result:
            pass  # an empty poll is not activity
        else:
            self._touch()
        if fault is not None and fault.kind == "timeout":
            await self._sleep_unless_closing(fault.seconds)
            if not fault.deliver:
                error = Fault.server_error(504).api_error()
        if fault is not None and fault.kind == "disconnect":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        if error is not None:
            return _json_response(error.body(), error.code)
        return _json_response({"ok": True, "result": _public_result(result)}, 200)

    async def _sleep_unless_closing(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            ev = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), remaining)

    def _record(
        self,
        method: str,
        params: Json,
        arrival: float,
        wall: float,
        chat_id: Any,
        error: ApiError | None,
        result: Any,
        fault: str | None = None,
    ) -> CallRecord:
        if "_files" in params:
            params = dict(params)
            params["_files"] = {
                k: {"filename": f["filename"], "size": len(f["content"])}
                for k, f in params["_files"].items()
            }
        record = CallRecord(
            method=method,
            params=params,
            time=arrival,
            wall=wall,
            chat_id=chat_id if isinstance(chat_id, int | str) else None,
            ok=error is None,
            error_code=error.code if error else None,
            description=error.description if error else None,
            result=result,
            fault=fault,
        )
        self.calls.append(record)
        return record

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if self.token is not None and token != self.token:
            return _json_response(ApiError(401, "Unauthorized").body(), 401)
        path = request.match_info["path"]
        for entry in self._files.values():
            if entry.get("path") == path:
                return web.Response(body=entry["content"] or b"\0" * 16)
        return _json_response(ApiError(404, "Not Found").body(), 404)

    # ------------------------------------------------------------------ helpers for methods

    def _resolve_chat(self, value: Any, field_name: str = "chat_id") -> ChatState:
        if value is None or value == "":
            raise _bad(f"{field_name} is empty")
        if isinstance(value, str):
            name = value.lstrip("@").lower()
            for candidate in self.chats.values():
                if str(candidate.info.get("username", "")).lower() == name:
                    return candidate
            raise _bad("chat not found")
        found = self.chats.get(value)
        if found is None:
            raise _bad("chat not found")
        return found

    def _writable_chat(self, params: Json) -> ChatState:
        chat = self._resolve_chat(params.get("chat_id"))
        if chat.info["type"] != "private":
            status = chat.members.get(self.bot_id, "left")
            if status == "kicked":
                raise ApiError(403, "Forbidden: bot was kicked from the supergroup chat")
            if status == "left":
                raise ApiError(403, "Forbidden: bot is not a member of the supergroup chat")
        return chat

    def _new_message(
        self,
        chat: ChatState,
        sender: Json,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
        allow_missing_reply: bool = False,
        from_bot: bool = False,
    ) -> Json:
        """A fresh Message dict with id, sender, chat, thread and reply fields."""
        err: Callable[[str], Exception] = _bad if from_bot else ValueError
        thread_msg: Json | None = None
        if thread_id:
            thread_msg = chat.messages.get(thread_id)
            if chat.is_forum:
                if thread_id not in chat.topics:
                    raise err("message thread not found")
            elif thread_msg is None:
                raise err("message thread not found")
        reply_msg: Json | None = None
        if reply_to:
            reply_msg = chat.messages.get(reply_to)
            if reply_msg is None or reply_msg.get("deleted"):
                if not allow_missing_reply:
                    raise err("message to be replied not found")
                reply_msg = None
            elif chat.is_forum and thread_id is None and reply_msg.get("message_thread_id"):
                thread_id = int(reply_msg["message_thread_id"])
        msg: Json = {
            "message_id": chat.new_id(),
            "from": sender,
            "chat": dict(chat.info),
            "date": int(time.time()),
        }
        if thread_id and chat.is_forum:
            msg["message_thread_id"] = thread_id
            msg["is_topic_message"] = True
            if reply_msg is None:
                reply_msg = thread_msg  # Telegram: a topic message replies to the topic start
        elif thread_id:
            msg["message_thread_id"] = thread_id
        if reply_msg is not None:
            msg["reply_to_message"] = {
                k: v for k, v in reply_msg.items() if k != "reply_to_message"
            }
        return msg

    def _reply_target(self, params: Json) -> tuple[int | None, bool]:
        rp = params.get("reply_parameters")
        allow = bool(params.get("allow_sending_without_reply"))
        mid = params.get("reply_to_message_id")
        if isinstance(rp, dict):
            mid = rp.get("message_id", mid)
            allow = allow or bool(rp.get("allow_sending_without_reply"))
        return (int(mid) if mid else None), allow

    def _text(
        self, text: Any, parse_mode: Any, entities: Any, *, caption: bool = False
    ) -> tuple[str, list[Json]]:
        if text is None:
            text = ""
        try:
            plain, ents = parse_text(
                str(text),
                parse_mode or None,
                entities if isinstance(entities, list) else None,
                strict_html=self.strict_html,
            )
        except EntityParseError as exc:
            raise _bad(f"can't parse entities: {exc}") from None
        if caption:
            if utf16_len(plain) > 1024:
                raise _bad("message caption is too long")
        else:
            if not plain:
                raise _bad("message text is empty")
            if utf16_len(plain) > 4096:
                raise _bad("message is too long")
        return plain, ents

    def _markup(self, params: Json) -> Json | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad(
                    "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
                )
            for row in rows:
                for b in row:
                    if not isinstance(b, dict) or not b.get("text"):
                        raise _bad(
                            "can't parse inline keyboard button: "
                            "Text buttons are unallowed in the inline keyboard"
                        )
                    if "callback_data" in b:
                        data = b["callback_data"]
                        if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
                            raise _bad("BUTTON_DATA_INVALID")
                    if "url" in b and not re.match(r"(https?|tg)://", str(b["url"])):
                        raise _bad("BUTTON_URL_INVALID")
                    actions = {
                        "callback_data",
                        "url",
                        "login_url",
                        "switch_inline_query",
                        "switch_inline_query_current_chat",
                        "callback_game",
                        "pay",
                        "web_app",
                        "copy_text",
                        "switch_inline_query_chosen_chat",
                    }
                    if not actions & set(b):
                        raise _bad(
                            "can't parse inline keyboard button: "
                            "Text buttons are unallowed in the inline keyboard"
                        )
        return markup

    def _store_bot_message(self, chat: ChatState, msg: Json, markup: Json | None) -> Json:
        if markup is not None:
            if "inline_keyboard" in markup:
                msg["reply_markup"] = markup
            elif "keyboard" in markup:
                self.reply_keyboards[chat.id] = markup
            elif markup.get("remove_keyboard"):
                self.reply_keyboards.pop(chat.id, None)
        chat.messages[msg["message_id"]] = msg
        self._bot_messages.append(msg)
        self._emit(msg, "sent")
        return msg

    def _file_from_param(
        self, kind: str, value: Any, files: Json, meta: Json | None = None
    ) -> Json:
        """Resolve an InputFile-ish parameter: upload, attach://name, URL or file_id."""
        if isinstance(value, dict) and "content" in value:  # an uploaded part
            m = (
                {"file_name": value["filename"]}
                if kind in {"document", "audio", "video", "animation"}
                else {}
            )
            if kind == "document":
                m["mime_type"] = value.get("content_type") or _guess_mime(value["filename"])
            return self._new_file(kind, {**m, **(meta or {})}, value["content"])
        if not isinstance(value, str) or not value:
            raise _bad(f"there is no {kind} in the request")
        if value.startswith("attach://"):
            part = files.get(value[len("attach://") :])
            if part is None:
                raise _bad(f"wrong file identifier/HTTP URL specified ({value} not attached)")
            return self._file_from_param(kind, part, files, meta)
        if re.match(r"https?://", value):
            name = value.rsplit("/", 1)[-1] or "file"
            m = {"file_name": name} if kind == "document" else {}
            return self._new_file(kind, {**m, **(meta or {})})
        entry = self._files.get(value)
        if entry is None:
            raise _bad("wrong file identifier/HTTP URL specified")
        if entry["kind"] != kind and {entry["kind"], kind} != {"document", "animation"}:
            raise _bad(f"can't use file of type {entry['kind'].title()} as {kind.title()}")
        return dict(entry["obj"])

    # ------------------------------------------------------------------ getting updates

    def _update_allowed(self, update: Json) -> bool:
        kind = next((k for k in update if k != "update_id"), "")
        if self._allowed_updates:
            return kind in self._allowed_updates
        return kind not in DEFAULT_UPDATE_TYPES_EXCLUDED

    async def _m_getUpdates(self, p: Json) -> list[Json]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        if "allowed_updates" in p and p["allowed_updates"] is not None:
            self._allowed_updates = list(p["allowed_updates"])
        offset = int(p.get("offset") or 0)
        limit = max(1, min(int(p.get("limit") or 100), 100))
        timeout = max(0, int(p.get("timeout") or 0))
        self._poll_generation += 1
        generation = self._poll_generation
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ev = self._changed
            queued = len(self._updates)
            if offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif offset < 0:
                self._updates = self._updates[offset:]
            self._updates = [u for u in self._updates if self._update_allowed(u)]
            if len(self._updates) != queued:
                self._notify()  # confirmed updates: wait_idle may be waiting for exactly this
            if self._updates:
                self._touch()
                return [dict(u) for u in self._updates[:limit]]
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make "
                    "sure that only one bot instance is running",
                )
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), remaining)

    def _m_deleteWebhook(self, p: Json) -> bool:
        self.webhook = None
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            self._webhook_task = None
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_setWebhook(self, p: Json) -> bool:
        url = str(p.get("url") or "")
        if not url:
            return self._m_deleteWebhook(p)
        if not re.match(r"https?://", url):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = {
            "url": url,
            "secret_token": p.get("secret_token"),
            "allowed_updates": p.get("allowed_updates"),
            "max_connections": p.get("max_connections") or 40,
        }
        if p.get("allowed_updates") is not None:
            self._allowed_updates = list(p["allowed_updates"])
        if p.get("drop_pending_updates"):
            self._updates.clear()
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._webhook_loop())
        return True

    def _m_getWebhookInfo(self, p: Json) -> Json:
        info: Json = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook is not None:
            info["url"] = self.webhook["url"]
            info["max_connections"] = self.webhook["max_connections"]
            if self.webhook.get("allowed_updates"):
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    async def _webhook_loop(self) -> None:
        """Webhook delivery: POST each queued update, in order, to the webhook URL with
        the ``X-Telegram-Bot-Api-Secret-Token`` header; a non-2xx answer or a network
        error is retried after a pause (like Telegram, one update at a time).

        With ``webhook_parallel`` > 1, up to that many updates are posted at once, each
        over a connection of its own (Telegram spreads a busy bot's updates over up to
        ``max_connections`` connections, so several workers behind one port each get
        some). As in the Bot API server (WebhookActor: one queue per chat, the next
        update of a queue is sent once the previous one was answered), one chat has one
        update in flight at a time; different chats' updates arrive in any order."""
        if self.webhook_parallel > 1:
            await self._webhook_parallel_loop()
            return
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            while self.webhook is not None and not self._closing:
                ev = self._changed
                self._updates = [u for u in self._updates if self._update_allowed(u)]
                if not self._updates:
                    await ev.wait()
                    continue
                update = self._updates[0]
                headers = {}
                if self.webhook.get("secret_token"):
                    headers["X-Telegram-Bot-Api-Secret-Token"] = str(self.webhook["secret_token"])
                try:
                    async with session.post(
                        self.webhook["url"], json=update, headers=headers
                    ) as resp:
                        delivered = 200 <= resp.status < 300
                except (TimeoutError, OSError, Exception):
                    delivered = False
                if delivered:
                    if self._updates and self._updates[0] is update:
                        self._updates.pop(0)
                    self._touch()
                else:
                    await asyncio.sleep(0.5)

    async def _webhook_parallel_loop(self) -> None:
        posting: dict[int, asyncio.Task[None]] = {}
        chats_posting: set[int] = set()

        async def post(session: ClientSession, update: Json) -> None:
            assert self.webhook is not None
            headers = {}
            if self.webhook.get("secret_token"):
                headers["X-Telegram-Bot-Api-Secret-Token"] = str(self.webhook["secret_token"])
            try:
                async with session.post(self.webhook["url"], json=update, headers=headers) as r:
                    delivered = 200 <= r.status < 300
            except Exception:
                delivered = False
            if delivered:
                self._updates = [u for u in self._updates if u is not update]
                self._touch()
            else:
                await asyncio.sleep(0.5)

        def done(key: int, chat: int, _task: asyncio.Task[None]) -> None:
            posting.pop(key, None)
            chats_posting.discard(chat)
            self._notify()

        connector = TCPConnector(force_close=True)  # a new connection per update
        async with ClientSession(timeout=ClientTimeout(total=10), connector=connector) as session:
            try:
                while self.webhook is not None and not self._closing:
                    ev = self._changed
                    self._updates = [u for u in self._updates if self._update_allowed(u)]
                    waiting = (u for u in self._updates if u["update_id"] not in posting)
                    # A chat's next update waits while an earlier one is in flight.
                    heads: dict[int, Json] = {}
                    for queued in waiting:
                        heads.setdefault(_queue_of(queued), queued)
                    ready = [u for chat, u in heads.items() if chat not in chats_posting]
                    if not ready or len(posting) >= self.webhook_parallel:
                        await ev.wait()
                        continue
                    update = ready[0]
                    chat = _queue_of(update)
                    task = asyncio.create_task(post(session, update))
                    posting[update["update_id"]] = task
                    chats_posting.add(chat)
                    task.add_done_callback(partial(done, update["update_id"], chat))
            finally:
                for task in posting.values():
                    task.cancel()

    # ------------------------------------------------------------------ bot info, commands

    def _m_getMe(self, p: Json) -> Json:
        return dict(self.bot_user)

    def _m_logOut(self, p: Json) -> bool:
        return True

    def _m_close(self, p: Json) -> bool:
        return True

    @staticmethod
    def _scope_key(p: Json) -> str:
        scope = p.get("scope") or {"type": "default"}
        key = str(scope.get("type", "default"))
        if "chat_id" in scope:
            key += f":{scope['chat_id']}"
        if "user_id" in scope:
            key += f":{scope['user_id']}"
        if p.get("language_code"):
            key += f"@{p['language_code']}"
        return key

    def _m_setMyCommands(self, p: Json) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise _bad('parameter "commands" is required')
        if len(commands) > 100:
            raise _bad("too many commands")
        for c in commands:
            if not isinstance(c, dict) or not re.fullmatch(
                r"[a-z0-9_]{1,32}", str(c.get("command", ""))
            ):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", ""))) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._scope_key(p)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def _m_getMyCommands(self, p: Json) -> list[Json]:
        return list(self.commands.get(self._scope_key(p), []))

    def _m_deleteMyCommands(self, p: Json) -> bool:
        self.commands.pop(self._scope_key(p), None)
        return True

    def _m_setChatMenuButton(self, p: Json) -> bool:
        key = str(p.get("chat_id") or "default")
        self.menu_buttons[key] = p.get("menu_button") or {"type": "default"}
        return True

    def _m_getChatMenuButton(self, p: Json) -> Json:
        return self.menu_buttons.get(str(p.get("chat_id") or "default"), {"type": "default"})

    def _trivial(self, p: Json) -> bool:
        return True

    _m_setMyDescription = _trivial
    _m_setMyShortDescription = _trivial
    _m_setMyName = _trivial
    _m_setMyDefaultAdministratorRights = _trivial
    _m_setMessageReaction = _trivial
    _m_pinChatMessage = _trivial
    _m_unpinChatMessage = _trivial
    _m_unpinAllChatMessages = _trivial
    _m_unpinAllForumTopicMessages = _trivial

    def _m_getMyName(self, p: Json) -> Json:
        return {"name": self.bot_user["first_name"]}

    def _m_getMyDescription(self, p: Json) -> Json:
        return {"description": ""}

    def _m_getMyShortDescription(self, p: Json) -> Json:
        return {"short_description": ""}

    def _m_sendChatAction(self, p: Json) -> bool:
        chat = self._writable_chat(p)
        if not p.get("action"):
            raise _bad("wrong parameter action in request")
        self._check_thread(chat, p)
        return True

    def _check_thread(self, chat: ChatState, p: Json) -> int | None:
        thread_id = p.get("message_thread_id")
        if thread_id and chat.is_forum and thread_id not in chat.topics:
            raise _bad("message thread not found")
        return int(thread_id) if thread_id else None

    # ------------------------------------------------------------------ sending

    def _m_sendMessage(self, p: Json) -> Json:
        chat = self._writable_chat(p)
        markup = self._markup(p)
        plain, entities = self._text(p.get("text"), p.get("parse_mode"), p.get("entities"))
        reply_to, allow = self._reply_target(p)
        msg = self._new_message(
            chat,
            self.bot_user,
            thread_id=p.get("message_thread_id"),
            reply_to=reply_to,
            allow_missing_reply=allow,
            from_bot=True,
        )
        msg["text"] = plain
        if entities:
            msg["entities"] = entities
        lpo = p.get("link_preview_options")
        if isinstance(lpo, dict):
            msg["link_preview_options"] = lpo
        msg["plain"] = plain
        return self._store_bot_message(chat, msg, markup)

    def _send_media(self, kind: str, p: Json, meta: Json | None = None) -> Json:
        chat = self._writable_chat(p)
        markup = self._markup(p)
        files: Json = p.get("_files", {})
        value = p.get(kind)
        if value is None and kind in files:
            value = files[kind]
        obj = self._file_from_param(kind, value, files, meta)
        caption = p.get("caption")
        plain: str = ""
        entities: list[Json] = []
        if caption:
            plain, entities = self._text(
                caption, p.get("parse_mode"), p.get("caption_entities"), caption=True
            )
        reply_to, allow = self._reply_target(p)
        msg = self._new_message(
            chat,
            self.bot_user,
            thread_id=p.get("message_thread_id"),
            reply_to=reply_to,
            allow_missing_reply=allow,
            from_bot=True,
        )
        if kind == "photo":
            small = dict(obj, width=90, height=51)
            msg["photo"] = [small, obj]
        else:
            msg[kind] = obj
            if kind == "animation":
                msg["document"] = obj
        if plain:
            msg["caption"] = plain
            if entities:
                msg["caption_entities"] = entities
        msg["plain"] = plain
        return self._store_bot_message(chat, msg, markup)

    def _m_sendPhoto(self, p: Json) -> Json:
        return self._send_media("photo", p)

    def _m_sendDocument(self, p: Json) -> Json:
        return self._send_media("document", p)

    def _m_sendVideo(self, p: Json) -> Json:
        return self._send_media("video", p)

    def _m_sendVoice(self, p: Json) -> Json:
        return self._send_media("voice", p)

    def _m_sendAudio(self, p: Json) -> Json:
        return self._send_media("audio", p)

    def _m_sendAnimation(self, p: Json) -> Json:
        return self._send_media("animation", p)

    def _m_sendVideoNote(self, p: Json) -> Json:
        return self._send_media("video_note", p)

    def _m_sendSticker(self, p: Json) -> Json:
        return self._send_media("sticker", p)

    def _m_sendContact(self, p: Json) -> Json:
        chat = self._writable_chat(p)
        markup = self._markup(p)
        if not p.get("phone_number") or not p.get("first_name"):
            raise _bad("phone number and first name must be non-empty")
        reply_to, allow = self._reply_target(p)
        msg = self._new_message(
            chat,
            self.bot_user,
            thread_id=p.get("message_thread_id"),
            reply_to=reply_to,
            allow_missing_reply=allow,
            from_bot=True,
        )
        msg["contact"] = {
            k: p[k] for k in ("phone_number", "first_name", "last_name", "vcard") if p.get(k)
        }
        msg["plain"] = ""
        return self._store_bot_message(chat, msg, markup)

    def _m_sendLocation(self, p: Json) -> Json:
        chat = self._writable_chat(p)
        markup = self._markup(p)
        msg = self._new_message(
            chat, self.bot_user, thread_id=p.get("message_thread_id"), from_bot=True
        )
        msg["location"] = {
            "latitude": float(p.get("latitude") or 0),
            "longitude": float(p.get("longitude") or 0),
        }
        msg["plain"] = ""
        return self._store_bot_message(chat, msg, markup)

    def _m_sendMediaGroup(self, p: Json) -> list[Json]:
        chat = self._writable_chat(p)
        media = p.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise _bad("wrong number of media in the album: must be 2-10")
        files: Json = p.get("_files", {})
        prepared: list[tuple[str, Json, str, list[Json]]] = []
        for item in media:
            if not isinstance(item, dict) or item.get("type") not in {
                "photo",
                "video",
                "document",
                "audio",
            }:
                raise _bad("wrong type of media in the album")
            obj = self._file_from_param(str(item["type"]), item.get("media"), files)
            plain = ""
            ents: list[Json] = []
            if item.get("caption"):
                plain, ents = self._text(
                    item["caption"],
                    item.get("parse_mode"),
                    item.get("caption_entities"),
                    caption=True,
                )
            prepared.append((str(item["type"]), obj, plain, ents))
        reply_to, allow = self._reply_target(p)
        group_id = str(10**12 + next(self._file_ids))
        out = []
        for kind, obj, plain, ents in prepared:
            msg = self._new_message(
                chat,
                self.bot_user,
                thread_id=p.get("message_thread_id"),
                reply_to=reply_to,
                allow_missing_reply=allow,
                from_bot=True,
            )
            msg["media_group_id"] = group_id
            msg[kind] = [obj] if kind == "photo" else obj
            if plain:
                msg["caption"] = plain
                if ents:
                    msg["caption_entities"] = ents
            msg["plain"] = plain
            out.append(self._store_bot_message(chat, msg, None))
        return out

    def _source_message(self, p: Json, what: str) -> tuple[ChatState, Json]:
        src_chat = self._resolve_chat(p.get("from_chat_id"), "from_chat_id")
        src = src_chat.messages.get(int(p.get("message_id") or 0))
        if src is None or src.get("deleted"):
            raise _bad(f"message to {what} not found")
        return src_chat, src

    def _m_copyMessage(self, p: Json) -> Json:
        src_chat, src = self._source_message(p, "copy")
        chat = self._writable_chat(p)
        markup = self._markup(p)
        if src.get("service"):
            raise _bad("message can't be copied")
        reply_to, allow = self._reply_target(p)
        msg = self._new_message(
            chat,
            self.bot_user,
            thread_id=p.get("message_thread_id"),
            reply_to=reply_to,
            allow_missing_reply=allow,
            from_bot=True,
        )
        content_keys = (
            *MEDIA_KINDS,
            "text",
            "entities",
            "contact",
            "location",
            "caption",
            "caption_entities",
            "has_media_spoiler",
        )
        for key in content_keys:
            if key in src:
                msg[key] = src[key]
        if "caption" in p or p.get("remove_caption"):
            msg.pop("caption", None)
            msg.pop("caption_entities", None)
            if p.get("caption") and not p.get("remove_caption"):
                plain, ents = self._text(
                    p["caption"], p.get("parse_mode"), p.get("caption_entities"), caption=True
                )
                msg["caption"] = plain
                if ents:
                    msg["caption_entities"] = ents
        msg["plain"] = msg.get("text", msg.get("caption", ""))
        msg["copied_from"] = {"chat_id": src_chat.id, "message_id": src["message_id"]}
        self._store_bot_message(chat, msg, markup)
        return {"message_id": msg["message_id"]}

    def _m_forwardMessage(self, p: Json) -> Json:
        _src_chat, src = self._source_message(p, "forward")
        chat = self._writable_chat(p)
        if src.get("service"):
            raise _bad("message can't be forwarded")
        msg = self._new_message(
            chat, self.bot_user, thread_id=p.get("message_thread_id"), from_bot=True
        )
        msg["forward_origin"] = {"type": "user", "date": src["date"], "sender_user": src["from"]}
        for key in (*MEDIA_KINDS, "text", "entities", "contact", "caption", "caption_entities"):
            if key in src:
                msg[key] = src[key]
        msg["plain"] = msg.get("text", msg.get("caption", ""))
        return self._store_bot_message(chat, msg, None)

    # ------------------------------------------------------------------ editing, deleting

    def _editable(self, p: Json) -> tuple[ChatState, Json]:
        if p.get("inline_message_id"):
            raise _bad("inline messages are not emulated")
        chat = self._resolve_chat(p.get("chat_id"))
        msg = chat.messages.get(int(p.get("message_id") or 0))
        if msg is None or msg.get("deleted"):
            raise _bad("message to edit not found")
        if msg.get("from", {}).get("id") != self.bot_id or msg.get("service"):
            raise _bad("message can't be edited")
        return chat, msg

    def _apply_edit(self, msg: Json, changes: Json, markup: Json | None) -> Json:
        """Apply an edit; an inline keyboard not passed again is removed, as in Telegram."""
        new_markup = markup if markup is not None and "inline_keyboard" in markup else None
        same_content = all(msg.get(k) == (v or None) for k, v in changes.items())
        if same_content and _norm_markup(msg.get("reply_markup")) == _norm_markup(new_markup):
            raise ApiError(400, NOT_MODIFIED)
        for k, v in changes.items():
            if v:
                msg[k] = v
            else:
                msg.pop(k, None)
        if new_markup is None:
            msg.pop("reply_markup", None)
        else:
            msg["reply_markup"] = new_markup
        msg["edit_date"] = int(time.time())
        msg["plain"] = msg.get("text", msg.get("caption", ""))
        self._emit(msg, "edited")
        return msg

    def _m_editMessageText(self, p: Json) -> Json:
        _chat, msg = self._editable(p)
        markup = self._markup(p)
        if "text" not in msg:
            raise _bad("there is no text in the message to edit")
        plain, entities = self._text(p.get("text"), p.get("parse_mode"), p.get("entities"))
        return self._apply_edit(msg, {"text": plain, "entities": entities}, markup)

    def _m_editMessageCaption(self, p: Json) -> Json:
        _chat, msg = self._editable(p)
        markup = self._markup(p)
        if not any(k in msg for k in MEDIA_KINDS):
            raise _bad("there is no caption in the message to edit")
        plain, entities = self._text(
            p.get("caption"), p.get("parse_mode"), p.get("caption_entities"), caption=True
        )
        return self._apply_edit(msg, {"caption": plain, "caption_entities": entities}, markup)

    def _m_editMessageReplyMarkup(self, p: Json) -> Json:
        _chat, msg = self._editable(p)
        markup = self._markup(p)
        return self._apply_edit(msg, {}, markup)

    def _m_deleteMessage(self, p: Json) -> bool:
        chat = self._resolve_chat(p.get("chat_id"))
        msg = chat.messages.get(int(p.get("message_id") or 0))
        if msg is None or msg.get("deleted"):
            raise _bad("message to delete not found")
        mine = msg.get("from", {}).get("id") == self.bot_id
        if (
            not mine
            and chat.info["type"] != "private"
            and chat.members.get(self.bot_id) not in {"administrator", "creator"}
        ):
            raise _bad("message can't be deleted")
        msg["deleted"] = True
        del chat.messages[msg["message_id"]]
        if mine:
            self._emit(msg, "deleted")
        return True

    def _m_deleteMessages(self, p: Json) -> bool:
        for mid in p.get("message_ids") or []:
            with contextlib.suppress(ApiError):
                self._m_deleteMessage({"chat_id": p.get("chat_id"), "message_id": mid})
        return True

    def _m_answerCallbackQuery(self, p: Json) -> bool:
        qid = str(p.get("callback_query_id") or "")
        query = self._callbacks.get(qid)
        if query is None or query["answered"]:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        if len(str(p.get("text") or "")) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        query["answered"] = True
        self.callback_answers.append(
            {
                "callback_query_id": qid,
                "text": p.get("text"),
                "show_alert": bool(p.get("show_alert")),
                "url": p.get("url"),
                "cache_time": p.get("cache_time"),
                "user_id": query["user_id"],
                "chat_id": query["chat_id"],
                "message_id": query["message_id"],
                "data": query["data"],
            }
        )
        return True

    # ------------------------------------------------------------------ chats and members

    def _member_obj(self, user: Json, status: str) -> Json:
        obj: Json = {"status": status, "user": user}
        if status == "creator":
            obj["is_anonymous"] = False
        elif status == "administrator":
            obj.update(
                can_be_edited=False,
                is_anonymous=False,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=True,
                can_restrict_members=True,
                can_promote_members=False,
                can_change_info=True,
                can_invite_users=True,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
                can_send_welcome_messages=False,
                can_pin_messages=True,
                can_manage_topics=True,
            )
        elif status == "kicked":
            obj["until_date"] = 0
        elif status == "restricted":
            obj.update(
                {
                    k: False
                    for k in (
                        "can_send_messages",
                        "can_send_audios",
                        "can_send_documents",
                        "can_send_photos",
                        "can_send_videos",
                        "can_send_video_notes",
                        "can_send_voice_notes",
                        "can_send_polls",
                        "can_send_other_messages",
                        "can_add_web_page_previews",
                        "can_react_to_messages",
                        "can_edit_tag",
                        "can_change_info",
                        "can_invite_users",
                        "can_pin_messages",
                        "can_manage_topics",
                    )
                }
            )
            obj.update(is_member=True, until_date=0)
        return obj

    def _m_getChat(self, p: Json) -> Json:
        chat = self._resolve_chat(p.get("chat_id"))
        info = dict(chat.info)
        info.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        return info

    def _m_getChatMember(self, p: Json) -> Json:
        chat = self._resolve_chat(p.get("chat_id"))
        uid = p.get("user_id")
        if uid == self.bot_id:
            return self._member_obj(self.bot_user, chat.members.get(self.bot_id, "member"))
        if uid not in self.users:
            raise _bad("user not found")
        if chat.info["type"] == "private":
            return self._member_obj(self.users[uid], "member" if uid == chat.id else "left")
        return self._member_obj(self.users[uid], chat.members.get(uid, "left"))

    def _m_getChatAdministrators(self, p: Json) -> list[Json]:
        chat = self._resolve_chat(p.get("chat_id"))
        if chat.info["type"] == "private":
            raise _bad("there are no administrators in the private chat")
        out = []
        for uid, status in chat.members.items():
            if status in {"creator", "administrator"}:
                user = self.bot_user if uid == self.bot_id else self.users[uid]
                out.append(self._member_obj(user, status))
        return out

    def _m_getChatMemberCount(self, p: Json) -> int:
        chat = self._resolve_chat(p.get("chat_id"))
        return sum(1 for s in chat.members.values() if s not in {"left", "kicked"})

    def _m_leaveChat(self, p: Json) -> bool:
        chat = self._resolve_chat(p.get("chat_id"))
        chat.members[self.bot_id] = "left"
        return True

    def _m_getFile(self, p: Json) -> Json:
        entry = self._files.get(str(p.get("file_id") or ""))
        if entry is None:
            raise _bad("invalid file_id")
        entry.setdefault(
            "path", f"{entry['kind']}s/file_{len(self._files)}_{entry['obj']['file_unique_id']}"
        )
        obj = {
            k: entry["obj"][k]
            for k in ("file_id", "file_unique_id", "file_size")
            if k in entry["obj"]
        }
        obj["file_path"] = entry["path"]
        return obj

    def _m_getUserProfilePhotos(self, p: Json) -> Json:
        return {"total_count": 0, "photos": []}

    # ------------------------------------------------------------------ forum topics

    def _forum(self, p: Json) -> ChatState:
        chat = self._writable_chat(p)
        if not chat.is_forum:
            raise _bad("the chat is not a forum")
        if chat.members.get(self.bot_id) not in {"administrator", "creator"}:
            raise _bad("not enough rights to manage topics")
        return chat

    def _topic(self, chat: ChatState, p: Json) -> Json:
        tid = p.get("message_thread_id")
        if not tid or tid not in chat.topics:
            raise _bad("TOPIC_ID_INVALID")
        return chat.topics[tid]

    def _m_createForumTopic(self, p: Json) -> Json:
        chat = self._forum(p)
        name = str(p.get("name") or "")
        if not name:
            raise _bad("TOPIC_TITLE_EMPTY")
        if len(name) > 128:
            raise _bad("TOPIC_TITLE_INVALID")
        color = int(p.get("icon_color") or 7322096)
        allowed = {7322096, 16766590, 13338331, 9367192, 16749490, 16478047}
        if color not in allowed:
            raise _bad("TOPIC_ICON_COLOR_INVALID")
        msg = self._new_message(chat, self.bot_user, from_bot=True)
        tid = msg["message_id"]
        created: Json = {"name": name, "icon_color": color}
        if p.get("icon_custom_emoji_id"):
            created["icon_custom_emoji_id"] = p["icon_custom_emoji_id"]
        msg.update(
            message_thread_id=tid,
            is_topic_message=True,
            forum_topic_created=created,
            service=True,
            plain="",
        )
        chat.messages[tid] = msg
        topic: Json = {"message_thread_id": tid, **created}
        chat.topics[tid] = {**topic, "closed": False}
        return topic

    def _topic_service(self, chat: ChatState, tid: int, payload: Json) -> None:
        msg = self._new_message(chat, self.bot_user, thread_id=tid, from_bot=True)
        msg.update(payload, service=True, plain="")
        msg.pop("reply_to_message", None)
        chat.messages[msg["message_id"]] = msg

    def _m_editForumTopic(self, p: Json) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p)
        changes: Json = {}
        if p.get("name") and p["name"] != topic["name"]:
            if len(str(p["name"])) > 128:
                raise _bad("TOPIC_TITLE_INVALID")
            changes["name"] = p["name"]
        if "icon_custom_emoji_id" in p and p["icon_custom_emoji_id"] != topic.get(
            "icon_custom_emoji_id"
        ):
            changes["icon_custom_emoji_id"] = p["icon_custom_emoji_id"]
        if not changes:
            raise _bad("TOPIC_NOT_MODIFIED")
        topic.update(changes)
        self._topic_service(chat, topic["message_thread_id"], {"forum_topic_edited": changes})
        return True

    def _m_closeForumTopic(self, p: Json) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p)
        if topic["closed"]:
            raise _bad("TOPIC_NOT_MODIFIED")
        topic["closed"] = True
        self._topic_service(chat, topic["message_thread_id"], {"forum_topic_closed": {}})
        return True

    def _m_reopenForumTopic(self, p: Json) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p)
        if not topic["closed"]:
            raise _bad("TOPIC_NOT_MODIFIED")
        topic["closed"] = False
        self._topic_service(chat, topic["message_thread_id"], {"forum_topic_reopened": {}})
        return True

    def _m_deleteForumTopic(self, p: Json) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p)
        tid = topic["message_thread_id"]
        del chat.topics[tid]
        for mid, msg in list(chat.messages.items()):
            if msg.get("message_thread_id") == tid:
                msg["deleted"] = True
                del chat.messages[mid]
        return True

    def _m_getForumTopicIconStickers(self, p: Json) -> list[Json]:
        return []


# --------------------------------------------------------------------------- module helpers


def _queue_of(update: Json) -> int:
    """The webhook queue of an update: its chat (a callback's message's chat, else its user).
    Like bot.telegram.intake.chat_of on purpose, not imported from it: the emulator plays Telegram
    and takes nothing from the bot it tests, so a mistake there cannot hide here."""
    for key in ("message", "edited_message", "my_chat_member", "chat_member"):
        if key in update:
            return int(update[key]["chat"]["id"])
    callback = update.get("callback_query")
    if callback:
        message = callback.get("message")
        return int(message["chat"]["id"] if message else callback["from"]["id"])
    return -int(update["update_id"])  # no chat: a queue of its own


def _norm_markup(markup: Json | None) -> Any:
    if not markup or not markup.get("inline_keyboard"):
        return None
    return json.dumps(markup, sort_keys=True)


def _buttons(msg: Json) -> list[Json]:
    markup = msg.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row if isinstance(b, dict)]


def _command_entities(text: str) -> list[Json]:
    m = re.match(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,})?", text)
    if not m:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(m.group(0))}]


def _guess_mime(name: str) -> str:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {
        "pdf": "application/pdf",
        "txt": "text/plain",
        "log": "text/plain",
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "zip": "application/zip",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    }.get(ext, "application/octet-stream")


def _public_result(result: Any) -> Any:
    if isinstance(result, dict) and "message_id" in result and "chat" in result:
        return _public(result)
    if isinstance(result, list):
        return [_public_result(r) for r in result]
    return result


def _json_response(body: Json, status: int) -> web.Response:
    return web.Response(
        text=json.dumps(body, ensure_ascii=False),
        status=status,
        content_type="application/json",
    )


def _coerce(key: str, value: Any) -> Any:
    """Decode one form field the way the Bot API does."""
    if not isinstance(value, str):
        return value
    if key in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            if key == "reply_markup":
                raise _bad("can't parse reply keyboard markup JSON object") from None
            raise _bad(f"can't parse {key} JSON object") from None
    if key in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            raise _bad(f"invalid {key} specified") from None
    if key in _BOOL_FIELDS:
        return value.strip().lower() in {"true", "1"}
    if key in _CHAT_FIELDS:
        v = value.strip()
        return int(v) if re.fullmatch(r"-?\d+", v) else v
    return value


async def _read_params(request: web.Request) -> Json:
    """Read query string + urlencoded/multipart/JSON body into decoded parameters.
    Uploaded file parts go to ``params["_files"][name] = {filename, content_type, content}``."""
    raw: Json = dict(request.query)
    files: Json = {}
    ctype = request.content_type
    if request.method == "POST" and request.can_read_body:
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _bad("can't parse JSON") from None
            if isinstance(body, dict):
                raw.update(body)
        elif ctype.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    content = await part.read()
                    files[part.name] = {
                        "filename": part.filename,
                        "content_type": part.headers.get("Content-Type"),
                        "content": bytes(content),
                    }
                else:
                    raw[part.name] = await part.text()
        else:
            post = await request.post()
            for k, v in post.items():
                raw[k] = v if isinstance(v, str) else str(v)
    params = {k: _coerce(k, v) for k, v in raw.items()}
    if files:
        params["_files"] = files
    return params
