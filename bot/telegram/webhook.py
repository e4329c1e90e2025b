"""Webhook mode: an aiohttp server that records updates in the inbox and answers at once.

Telegram retries a webhook request until it gets a 2xx answer, so the update is
written durably before the answer (a failed write answers 500 and Telegram
tries again); handling happens afterwards in the intake, which also makes a
retried delivery a harmless duplicate. Every request must carry the
`secret_token` given to setWebhook, compared in constant time.

Several worker processes listen on the same port (SO_REUSEPORT: the kernel
spreads the connections); each records and handles what it receives.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from bot.telegram.intake import Intake

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 4 * 1024 * 1024  # an update is a few kB; a caption or poll is still far below


RECORDED = web.AppKey("recorded", list)  # [updates recorded by this process]


def webhook_app(intake: Intake, *, path: str, secret_token: str) -> web.Application:
    if not secret_token:
        raise ValueError("a webhook needs a secret token")
    expected = secret_token.encode()
    recorded = [0]

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            log.warning("webhook request with a wrong secret from %s", request.remote)
            return web.Response(status=401)
        try:
            update = await request.json()
            update_id = int(update["update_id"])
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="not an update")
        await intake.accept([update])  # raises (500, retried by Telegram) if not recorded
        recorded[0] += 1
        log.debug("webhook update %s recorded", update_id)
        return web.Response(text="ok")

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=MAX_BODY)
    app[RECORDED] = recorded
    app.router.add_post(path, receive)
    app.router.add_get("/healthz", health)
    return app


class WebhookServer:
    """The webhook app on host:port, sharing the port with the other workers (`name`: what
    it serves, for the log; the monitoring endpoint in polling mode has one too)."""

    def __init__(self, app: web.Application, host: str, port: int,
                 name: str = "webhook") -> None:
        self.host = host
        self.port = port
        self.name = name
        self._app = app
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_port=True)
        await site.start()
        log.info("%s: listening on %s:%s", self.name, self.host, self.port)

    async def stop(self) -> None:
        """Stop accepting; requests under way finish first (their updates are recorded)."""
        await self._runner.cleanup()
        if RECORDED in self._app:
            log.info("webhook: stopped; %d updates received here", self._app[RECORDED][0])
