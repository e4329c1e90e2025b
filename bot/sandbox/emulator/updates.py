"""Getting updates: long polling (`getUpdates`) and webhook delivery."""

from __future__ import annotations

import asyncio
import contextlib
import re
from functools import partial

from aiohttp import ClientSession, ClientTimeout, TCPConnector

from bot.sandbox.emulator.protocol import ApiError, Json, bad
from bot.sandbox.emulator.state import EmulatorState


class Updates(EmulatorState):
    """Hands the queued updates to the bot, polled or posted to its webhook."""

    @property
    def polls_waiting(self) -> int:
        """Long polls (getUpdates) waiting for an update right now."""
        return self._polls_waiting

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
            self._polls_waiting += 1
            self._notify()
            ev = self._changed  # taken after our own notice: nothing else changed meanwhile
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ev.wait(), remaining)
            finally:
                self._polls_waiting -= 1

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
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
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
