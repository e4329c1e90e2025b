"""The bot under test as one process, or as several webhook workers on one database.

`FRONTDESK_TEST_WORKERS=N` (N > 1, with FRONTDESK_TEST_POSTGRES) runs every
end-to-end test against N `App`s in webhook mode, listening on one port
(SO_REUSEPORT: the kernel spreads the emulator's connections over them), sharing
one PostgreSQL database and, with FRONTDESK_TEST_REDIS, one Redis: the set-up of
README "Scaling out", with the workers as tasks of this process instead of
processes of their own (tests/e2e/test_workers.py runs real processes, and kills
the leader). Each worker has its own database pool, Telegram session, intake,
delivery worker, scheduler and rate limiter, and takes part in the leadership
election, so what is shared between them is shared the way it is in production.

`new_app` is what a test calls instead of `App(...)`; a `Cluster` answers the
attributes tests use with the leader's (the delivery worker, the scheduler, the
database); `workers_of` gives every worker, for `settle` to wait for all of them.
"""

from __future__ import annotations

import os
from typing import Any, cast

from bot.app.runtime import App
from bot.config import Config

WORKERS = int(os.environ.get("FRONTDESK_TEST_WORKERS", "1"))
WEBHOOK_SECRET = "frontdesk-test-secret"

if WORKERS > 1 and not os.environ.get("FRONTDESK_TEST_POSTGRES"):
    raise RuntimeError("FRONTDESK_TEST_WORKERS needs FRONTDESK_TEST_POSTGRES: several workers "
                       "share one PostgreSQL database (SQLite is one process)")


def webhook_settings(port: int) -> dict[str, Any]:
    """The `[telegram]` keys of a webhook worker listening on `port` of this machine."""
    return {"mode": "webhook", "webhook_url": f"http://127.0.0.1:{port}/telegram",
            "host": "127.0.0.1", "port": port, "path": "/telegram",
            "secret_token": WEBHOOK_SECRET}


class Cluster:
    """N workers of one configuration, started in turn (the first one leads)."""

    def __init__(self, config: Config, count: int, **options: Any) -> None:
        self.apps = [App(config, **options) for _ in range(count)]

    async def start(self) -> None:
        for app in self.apps:
            await app.start()

    async def stop(self) -> None:
        # Followers first: the leader's lock is released last, so nobody takes over.
        for app in reversed(self.apps):
            await app.stop()

    @property
    def leader(self) -> App:
        return next((app for app in self.apps if app.leadership.is_leader), self.apps[0])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.leader, name)


def workers_of(app: App) -> list[App]:
    """The workers behind what `new_app` returned."""
    return app.apps if isinstance(app, Cluster) else [app]


def new_app(config: Config, **options: Any) -> App:
    """The bot of `config`: one App, or a Cluster of WORKERS webhook workers (which answers
    everything the tests ask of an App)."""
    if WORKERS == 1:
        return App(config, **options)
    return cast(App, Cluster(config, WORKERS, **options))
