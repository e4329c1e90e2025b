"""The composition root: the only module that knows every part and wires them."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from typing import Any

from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app.container import Container
from bot.app.leader import Leadership
from bot.app.scheduler import Scheduler, job_table
from bot.config import Config
from bot.domain.alerts import Alert
from bot.domain.clock import Clock, Monotonic, Sleep, utc_now
from bot.messaging.outbox import PRIORITY_REPLY
from bot.services.companies import sync_from_config as sync_companies
from bot.services.desk import Classifier
from bot.telegram.intake import ALLOWED_UPDATES, Intake, chat_of
from bot.telegram.lease import Lease, new_worker_id
from bot.telegram.monitoring import add_monitoring_routes, monitoring_app
from bot.telegram.webhook import WebhookServer, webhook_app
from storage.migrate import upgrade_async
from storage.repos.clients import Clients

log = logging.getLogger(__name__)

COMMANDS = {
    "ru": {
        "client": [("new", "Новое обращение"), ("my", "Мои обращения"),
                   ("status", "Состояние обращения: /status 42"),
                   ("faq", "Частые вопросы: /faq принтер"), ("help", "Как пользоваться")],
        "staff": [("tickets", "Открытые обращения"), ("take", "Взять: /take 42"),
                  ("status", "Статус: /status 42 waiting"), ("close", "Закрыть: /close 42"),
                  ("reopen", "Открыть снова"), ("sev", "Важность: /sev 42 critical"),
                  ("problem", "Проблема: /problem 42 описание"),
                  ("link", "Привязать к проблеме: /link 43 42"),
                  ("kb", "База знаний: /kb, /kb add, /kb stale"), ("help", "Справка")],
    },
    "en": {
        "client": [("new", "New incident"), ("my", "My incidents"),
                   ("status", "Incident status: /status 42"),
                   ("faq", "Common questions: /faq printer"), ("help", "How to use")],
        "staff": [("tickets", "Open incidents"), ("take", "Take: /take 42"),
                  ("status", "Status: /status 42 waiting"), ("close", "Close: /close 42"),
                  ("reopen", "Reopen"), ("sev", "Severity: /sev 42 critical"),
                  ("problem", "Problem: /problem 42 description"),
                  ("link", "Link to a problem: /link 43 42"),
                  ("kb", "Knowledge base: /kb, /kb add, /kb stale"), ("help", "Help")],
    },
}


class App:
    """The running bot: the container's services, the dispatcher, intake, scheduler, leadership."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock = utc_now,
        classify: Classifier | None = None,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.config = config
        self.clock = clock
        self.container = Container.build(config, clock=clock, classify=classify,
                                         on_blocked=self._client_blocked, monotonic=monotonic,
                                         sleep=sleep)
        self.db = self.container.db
        self.bot = self.container.bot
        self.delivery = self.container.delivery
        self.dispatcher = self.container.dispatcher()
        several = not self.db.is_sqlite  # PostgreSQL: maybe several workers
        worker_id = new_worker_id() if several else None
        self.intake = Intake(
            self.db, self.dispatcher, self.bot, clock,
            concurrency=config.delivery.concurrency, on_failure=self._update_failed,
            ordered_across_processes=several, worker_id=worker_id, sleep=sleep,
        )
        # Heartbeat, and the updates of workers that died (bot/telegram/lease.py).
        self.lease = (Lease(self.db.url, self.intake, worker_id)
                      if worker_id is not None else None)
        self.scheduler = Scheduler(job_table(self.container), clock, on_wrote=self.delivery.wake)
        self._tasks: list[asyncio.Task[Any]] = []
        # One process of all the workers delivers, ticks the scheduler and polls: the leader.
        self.leadership = Leadership(self.db, on_elected=self._lead, on_deposed=self._step_down)
        self.webhook: WebhookServer | None = None
        self.monitoring: WebhookServer | None = None  # polling mode's own server for alerts

    async def prepare(self) -> None:
        """Migrate the database, load the FAQ, learn what the staff group is."""
        await upgrade_async(self.config.database.url)
        self.container.texts.warm_up()
        await self.container.faq.load(self.db)
        await self.container.staff.follow_moves(self.db)  # the supergroup it became, if so
        await self.container.staff.learn_forum(self.db)
        # Companies of [[companies]] (bot/services/companies.py); the bot's @username for
        # their invite links, asked once now (aiogram keeps it) rather than inside an update.
        await sync_companies(self.db, self.config.companies, self.clock(),
                             self.config.desk.timezone)
        with suppress(TelegramAPIError):
            await self.bot.me()
        await self._set_commands()

    async def _set_commands(self) -> None:
        lang = self.config.desk.language
        scopes: list[tuple[str, Any]] = [
            ("client", BotCommandScopeAllPrivateChats()),
            ("staff", BotCommandScopeChat(chat_id=self.container.staff.staff_chat_id)),
        ]
        for audience, scope in scopes:
            for language in ("ru", "en"):
                commands = [BotCommand(command=c, description=d)
                            for c, d in COMMANDS[language][audience]]
                # Menus in the desk's language by default, in English for English clients.
                code = None if language == lang else language
                with suppress(TelegramAPIError):
                    await self.bot.set_my_commands(commands, scope=scope, language_code=code)

    async def start(self) -> None:
        await self.prepare()
        if self.lease is None:
            await self.intake.resume()
        else:  # what this desk's dead workers left, whichever process recorded it
            await self.lease.start()
        self._tasks = []
        self.scheduler.start()
        if self.config.telegram.mode == "webhook":
            await self._start_webhook()
        elif self.config.monitoring.enabled:
            m = self.config.monitoring
            host, port = m.address
            self.monitoring = WebhookServer(
                monitoring_app(m.token.get_secret_value(), self.alerts), host, port,
                name="monitoring")
            await self.monitoring.start()
        await self.leadership.start()

    async def _start_webhook(self) -> None:
        """Listen (every worker, on the same port), then point Telegram at us. Every worker
        sets the same webhook: harmless, and no worker depends on another having done it."""
        t = self.config.telegram
        secret = t.secret_token.get_secret_value()
        app = webhook_app(self.intake, path=t.path, secret_token=secret)
        if self.config.monitoring.enabled:
            add_monitoring_routes(app, self.config.monitoring.token.get_secret_value(),
                                  self.alerts)
        self.webhook = WebhookServer(app, t.host, t.port)
        await self.webhook.start()
        await self.bot.set_webhook(t.webhook_url, secret_token=secret,
                                   allowed_updates=ALLOWED_UPDATES)

    async def _lead(self) -> None:
        """Elected (bot/app/leader.py): deliver the outbox, tick the scheduler, poll."""
        self.delivery.reset()
        self._tasks.append(asyncio.create_task(self.delivery.run(), name="delivery"))
        self.scheduler.resume()
        if self.config.telegram.mode == "polling":
            with suppress(TelegramAPIError):
                await self.bot.delete_webhook()
            self._tasks.append(asyncio.create_task(
                self.intake.poll(self.config.telegram.poll_timeout), name="polling"))

    async def _step_down(self) -> None:
        """Deposed: stop everything only the leader does; updates received are still handled."""
        self.scheduler.pause()
        duties = [task for task in self._tasks if task.get_name() in ("delivery", "polling")]
        self._tasks = [task for task in self._tasks if task not in duties]
        for task in duties:
            if task.get_name() == "polling":
                task.cancel()
        await self.delivery.stop()
        for task in duties:
            with suppress(asyncio.CancelledError):
                await task
        await self.scheduler.wait_idle()  # a tick under way finishes first

    async def run_job(self, job_id: str) -> None:
        """One tick of a scheduled job now (as the scheduler would run it)."""
        await self.scheduler.tick(job_id)

    def idle(self) -> bool:
        """Nothing under way in this process: no update queued or being handled, no send in
        flight or due, no scheduled job due or running (what tests and the sandbox wait for:
        bot/sandbox/settle.py)."""
        return self.intake.activity.idle and self.delivery.activity.idle and self.scheduler.idle()

    async def stop(self) -> None:
        await self.leadership.halt()  # no election from now on; the lock is released last
        for server in (self.webhook, self.monitoring):
            if server is not None:
                await server.stop()
        await self.scheduler.shutdown()
        for task in self._tasks:
            if task.get_name() != "delivery":
                task.cancel()
        await self.intake.wait_idle()
        if self.lease is not None:
            await self.lease.stop()
        await self.delivery.stop()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        await self.leadership.stop()
        await self.dispatcher.storage.close()
        await self.container.close()

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        await self.start()
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await self.stop()

    # -- callbacks from the intake, the delivery worker and monitoring --------------

    async def alerts(self, alerts: list[Alert]) -> list[str]:
        """Alerts from monitoring (bot/telegram/monitoring.py), in one transaction."""
        async with self.db.transaction() as session:
            outcomes = await self.container.scope(session).problems.alerts(alerts)
        self.delivery.wake()
        return outcomes

    async def _client_blocked(
        self, session: AsyncSession, client_id: int, ticket_id: int | None
    ) -> None:
        if ticket_id is None:
            return
        scope = self.container.scope(session)
        ticket = await scope.desk.ticket_by_id(ticket_id)
        client = await Clients(session).by_id(client_id)
        await scope.notifier.staff_line(ticket, "client_blocked", client=client)

    async def _update_failed(self, update: dict[str, Any]) -> None:
        """Tell a client their message was not processed, rather than dropping it silently."""
        chat_id = chat_of(update)
        if chat_id is None or chat_id < 0:
            return
        texts = self.container.texts
        async with self.db.transaction() as session:
            scope = self.container.scope(session)
            client = await Clients(session).by_chat(chat_id)
            language = client.language if client else texts.default_language
            await scope.out.send_text(chat_id, texts.client(language, "error", code="sorry"),
                                      priority=PRIORITY_REPLY)
        self.delivery.wake()
