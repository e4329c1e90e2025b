"""Monitoring's way in: `POST /monitoring/alertmanager` (Prometheus Alertmanager's webhook,
version 4) and `POST /monitoring/alert` (the generic JSON of bot/domain/alerts.py).

Every request must carry `Authorization: Bearer <[monitoring] token>` (compared in constant
time; a wrong or missing one: 401, and the token is never logged). A payload that cannot
be read is refused with 400 and the reason before anything is written; a good one is
handled in one transaction (`handle`), so a failure writes nothing and Alertmanager's retry
starts afresh. The routes join the webhook server in webhook mode, else they get a server
of their own on `[monitoring] listen`.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.domain.alerts import Alert, AlertError, from_alertmanager, from_generic

log = logging.getLogger(__name__)

AlertHandler = Callable[[list[Alert]], Awaitable[list[str]]]
Parser = Callable[[object], list[Alert]]
MAX_BODY = 1024 * 1024


def add_monitoring_routes(app: web.Application, token: str, handle: AlertHandler) -> None:
    if not token:
        raise ValueError("monitoring needs a token")
    expected = f"Bearer {token}".encode()

    def route(parse: Parser) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def receive(request: web.Request) -> web.Response:
            given = request.headers.get("Authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, expected):
                log.warning("monitoring: a request without the right token from %s",
                            request.remote)
                return web.json_response({"error": "a wrong or missing bearer token"},
                                         status=401)
            try:
                payload = await request.json()
            except ValueError:
                return web.json_response({"error": "the body is not JSON"}, status=400)
            try:
                alerts = parse(payload)
            except AlertError as error:
                return web.json_response({"error": str(error)}, status=400)
            outcomes = await handle(alerts)  # raises (500, retried) if not written
            log.info("monitoring: %d alert(s): %s", len(alerts), ", ".join(outcomes))
            return web.json_response({"outcomes": outcomes})

        return receive

    app.router.add_post("/monitoring/alertmanager", route(from_alertmanager))
    app.router.add_post("/monitoring/alert", route(from_generic))


def monitoring_app(token: str, handle: AlertHandler) -> web.Application:
    """The routes on an app of their own (polling mode: nothing else listens)."""
    app = web.Application(client_max_size=MAX_BODY)
    add_monitoring_routes(app, token, handle)
    return app
