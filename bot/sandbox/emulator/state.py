"""What the emulator remembers: users, chats (members, messages, forum topics), the
update queue, recorded calls, and the change notifications that every wait is woken by."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.sandbox.emulator.protocol import ApiError, Json, bad

if TYPE_CHECKING:
    from bot.sandbox.emulator.faults import FaultRule
    from bot.sandbox.emulator.limits import Limiter, Violation

BotMessageListener = Callable[[Json, str], Any]

# update types delivered when a bot never named allowed_updates (Telegram's default)
DEFAULT_UPDATE_TYPES_EXCLUDED = frozenset(
    {"chat_member", "message_reaction", "message_reaction_count"}
)


@dataclass
class CallRecord:
    """One HTTP call the bot made."""

    method: str
    params: Json  # decoded: ints, bools, parsed JSON fields; uploads as {"filename", "size"}
    time: float  # the emulator's monotonic clock at arrival
    wall: float  # time.time() at arrival
    chat_id: int | str | None
    ok: bool = True
    error_code: int | None = None
    description: str | None = None
    result: Any = None
    fault: str | None = None  # the injected fault kind that shaped the answer, if any


@dataclass
class ChatState:
    info: Json  # the Chat object as it appears in messages
    members: dict[int, str] = field(default_factory=dict)
    messages: dict[int, Json] = field(default_factory=dict)
    topics: dict[int, Json] = field(default_factory=dict)  # thread id → ForumTopic (+closed)
    next_id: int = 1
    migrated_to: int | None = None  # a group upgraded to this supergroup (sends refused)

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


class EmulatorState:
    """The state every part of the emulator shares, and the helpers they all use."""

    def __init__(
        self,
        token: str | None,
        bot_user: Json,
        *,
        strict_html: bool,
        monotonic: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.token = token
        # Telegram's sense of passing time: call times, limit windows, fault durations,
        # refused connections (a test may share a faster clock with the bot).
        self.monotonic = monotonic
        self.sleep = sleep
        self.bot_user = bot_user
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
        # Webhook requests in flight at once (see Updates._webhook_loop); 1: strictly in order.
        self.webhook_parallel = 1
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
        self._limiter: Limiter | None = None
        self._changed = asyncio.Event()
        self._activity = 0  # grows with every update queued or handed over, every call
        self._last_activity = time.monotonic()
        self._inflight = 0  # calls being answered (long polls not counted)
        self._poll_generation = 0
        self._polls_waiting = 0
        self._closing = False
        self._webhook_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def bot_id(self) -> int:
        return int(self.bot_user["id"])

    def _notify(self) -> None:
        ev = self._changed
        self._changed = asyncio.Event()
        ev.set()

    def _touch(self) -> None:
        self._activity += 1
        self._last_activity = time.monotonic()
        self._notify()

    def _emit(self, msg: Json, kind: str) -> None:
        for listener in list(self._listeners):
            result = listener(msg, kind)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _update_allowed(self, update: Json) -> bool:
        kind = next((k for k in update if k != "update_id"), "")
        if self._allowed_updates:
            return kind in self._allowed_updates
        return kind not in DEFAULT_UPDATE_TYPES_EXCLUDED

    def _has_pending(self) -> bool:
        return any(self._update_allowed(u) for u in self._updates)

    def _chat_state(self, chat_id: int) -> ChatState:
        try:
            return self.chats[chat_id]
        except KeyError:
            raise KeyError(f"unknown chat {chat_id}: add_user/add_group first") from None

    def _resolve_chat(self, value: Any, field_name: str = "chat_id") -> ChatState:
        if value is None or value == "":
            raise bad(f"{field_name} is empty")
        if isinstance(value, str):
            name = value.lstrip("@").lower()
            for candidate in self.chats.values():
                if str(candidate.info.get("username", "")).lower() == name:
                    return candidate
            raise bad("chat not found")
        found = self.chats.get(value)
        if found is None:
            raise bad("chat not found")
        return found

    def _writable_chat(self, params: Json) -> ChatState:
        chat = self._resolve_chat(params.get("chat_id"))
        if chat.migrated_to is not None:
            raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                           {"migrate_to_chat_id": chat.migrated_to})
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
        err: Callable[[str], Exception] = bad if from_bot else ValueError
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
