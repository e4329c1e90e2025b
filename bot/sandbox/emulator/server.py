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
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web

from bot.sandbox.emulator.chats import Chats
from bot.sandbox.emulator.commands import Commands
from bot.sandbox.emulator.editing import Editing
from bot.sandbox.emulator.faults import Fault
from bot.sandbox.emulator.groups import GroupActions
from bot.sandbox.emulator.limits import RateLimits
from bot.sandbox.emulator.messages import MEDIA_METHODS
from bot.sandbox.emulator.protocol import ApiError, Json, json_response, public_result, read_params
from bot.sandbox.emulator.state import CallRecord
from bot.sandbox.emulator.updates import Updates

DEFAULT_BOT_ID = 7_000_000_001


class FakeTelegram(GroupActions, Editing, Chats, Commands, Updates, RateLimits):
    """The emulated Bot API server plus the test-side API to drive and inspect it."""

    def __init__(
        self,
        token: str | None = None,
        *,
        bot_id: int | None = None,
        username: str = "frontdesk_bot",
        first_name: str = "Frontdesk",
        strict_html: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``token``: only this token is accepted (others get 401); None accepts any.
        ``strict_html``: reject a bare ``&`` in HTML (Telegram passes it through).
        ``monotonic``, ``sleep``: the clock of call times, limits, fault durations and
        refused connections (a test may make time pass faster for Telegram and the bot)."""
        if bot_id is None:
            head = (token or "").split(":", 1)[0]
            bot_id = int(head) if head.isdigit() else DEFAULT_BOT_ID
        super().__init__(
            token,
            {
                "id": bot_id,
                "is_bot": True,
                "first_name": first_name,
                "username": username,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            },
            strict_html=strict_html,
            monotonic=monotonic,
            sleep=sleep,
        )
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._reopen_task: asyncio.Task[None] | None = None
        # Bot API method names are case-insensitive: lower-cased -> (its name, its handler).
        self._methods: dict[str, tuple[str, Callable[[Json], Any]]] = {
            name[3:].lower(): (name[3:], getattr(self, name))
            for name in dir(self) if name.startswith("_m_")
        }
        for method, kind in MEDIA_METHODS.items():
            self._methods[method.lower()] = (method, partial(self._send_media, kind))

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
        await self.sleep(seconds)
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

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrival = self.monotonic()
        wall = time.time()
        name = request.match_info["method"]
        token = request.match_info["token"]
        if self.token is not None and token != self.token:
            return json_response(ApiError(401, "Unauthorized").body(), 401)
        known = self._methods.get(name.lower())
        if known is None:
            return json_response(ApiError(404, "Not Found").body(), 404)
        method, handler = known
        is_poll = method == "getUpdates"
        if not is_poll:
            self._inflight += 1
            self._touch()
        try:
            try:
                params = await read_params(request)
            except ApiError as exc:
                self._record(method, {}, arrival, wall, None, exc, None)
                return json_response(exc.body(), exc.code)
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
            error = self._over_limit(method, chat_id, arrival)
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
            return json_response(error.body(), error.code)
        return json_response({"ok": True, "result": public_result(result)}, 200)

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
