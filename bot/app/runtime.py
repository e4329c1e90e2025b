"""The composition root: the only module that knows every part and wires them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app.leader import Leadership
from bot.config import Config, ConfigError
from bot.domain.clock import Clock, utc_now
from bot.domain.enums import Severity
from bot.domain.sla import SlaPolicy
from bot.messaging.notify import Notifier
from bot.messaging.outbox import PRIORITY_REPLY, OutboxWriter
from bot.messaging.texts import Texts
from bot.services import sla_jobs as jobs
from bot.services.companies import sync_from_config as sync_companies
from bot.services.desk import Classifier
from bot.services.faq import FaqService
from bot.services.quality import quality_tick
from bot.services.ratings import rating_sweep
from bot.services.reports.jobs import monthly_acts
from bot.services.surge import post_surge_digest
from bot.telegram.delivery import DeliveryWorker
from bot.telegram.intake import ALLOWED_UPDATES, Intake, chat_of
from bot.telegram.middleware import Services, UnitOfWork
from bot.telegram.ratelimit import RateLimiter
from bot.telegram.staff import StaffDirectory
from bot.telegram.webhook import WebhookServer, webhook_app
from handlers import get_routers
from storage.db import Database
from storage.migrate import upgrade_async
from storage.repos.clients import Clients
from storage.repos.outbox import Outbox
from storage.repos.tickets import Tickets

log = logging.getLogger(__name__)

SURGE_DIGEST_SECONDS = 60

# On PostgreSQL (several workers), how often the leader handles updates that were recorded
# but not handled for this long: those of a worker that died (bot/intake.py).
ORPHAN_SWEEP_SECONDS = 30

COMMANDS = {
    "ru": {
        "client": [("new", "Новое обращение"), ("my", "Мои обращения"),
                   ("status", "Состояние обращения: /status 42"),
                   ("faq", "Частые вопросы: /faq принтер"), ("help", "Как пользоваться")],
        "staff": [("tickets", "Открытые обращения"), ("take", "Взять: /take 42"),
                  ("status", "Статус: /status 42 waiting"), ("close", "Закрыть: /close 42"),
                  ("reopen", "Открыть снова"), ("sev", "Важность: /sev 42 critical"),
                  ("kb", "База знаний: /kb, /kb add, /kb stale"), ("help", "Справка")],
    },
    "en": {
        "client": [("new", "New incident"), ("my", "My incidents"),
                   ("status", "Incident status: /status 42"),
                   ("faq", "Common questions: /faq printer"), ("help", "How to use")],
        "staff": [("tickets", "Open incidents"), ("take", "Take: /take 42"),
                  ("status", "Status: /status 42 waiting"), ("close", "Close: /close 42"),
                  ("reopen", "Reopen"), ("sev", "Severity: /sev 42 critical"),
                  ("kb", "Knowledge base: /kb, /kb add, /kb stale"), ("help", "Help")],
    },
}


def fsm_storage(config: Config) -> BaseStorage:
    """Dialog state: in Redis when `[redis] url` is set (shared by every worker), else here."""
    if not config.redis.url:
        return MemoryStorage()
    from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage

    return RedisStorage.from_url(config.redis.url,
                                 key_builder=DefaultKeyBuilder(prefix=config.redis.prefix))


def default_classifier() -> Classifier:
    try:
        from bot.domain.severity import SeverityClassifier
    except ImportError:  # pragma: no cover - the classifier ships with the bot
        return lambda _text: Severity.NORMAL
    return SeverityClassifier.from_files().classify


def configured_classifier(config: Config) -> Classifier:
    """The classifier with the desk's `[severity] vocabulary` files (relative to the config
    file); a broken file stops start-up with a ConfigError naming the file and the key."""
    if not config.severity.vocabulary:
        return default_classifier()
    from bot.domain.severity import SeverityClassifier, SeverityVocabularyError

    base = config.source.parent if config.source is not None else Path.cwd()
    paths = [path if path.is_absolute() else base / path for path in config.severity.vocabulary]
    try:
        return SeverityClassifier.from_files(*paths).classify
    except SeverityVocabularyError as error:
        where = config.source or "config"
        raise ConfigError(f"{where}: [severity.vocabulary] {error}") from None


class App:
    """The running bot: database, Telegram session, dispatcher, intake and delivery."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock = utc_now,
        classify: Classifier | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        # The FAQ files are read now: a broken file stops start-up before anything runs.
        self.faq = FaqService(config.kb, clock)
        self.faq.load_files()
        self.db = Database(config.database.url, echo=config.database.echo)
        self.texts = Texts(config.desk.language, config.desk.timezone)
        self.bot = Bot(
            config.token,
            session=AiohttpSession(
                api=TelegramAPIServer.from_base(config.telegram.api_base),
                timeout=config.telegram.request_timeout,
            ),
        )
        d = config.delivery
        self.delivery = DeliveryWorker(
            self.db, self.bot,
            RateLimiter(d.global_per_second, d.per_chat_per_second, d.per_group_per_minute),
            clock, on_blocked=self._client_blocked, max_backoff=d.max_backoff_seconds,
        )
        self.services = Services(
            config=config, db=self.db, texts=self.texts, clock=clock,
            classify=classify or configured_classifier(config),
            staff=StaffDirectory(self.bot, config.telegram.staff_chat_id, config.telegram.admins),
            wake_delivery=self.delivery.wake, faq=self.faq,
        )
        self.services.sla = SlaPolicy(config.desk, config.sla)
        # The scheduler only ticks; the jobs' state is in the database (bot/jobs.py). It runs
        # paused but on the leader (bot/leader.py); a tick missed meanwhile runs on resuming.
        self.scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={"misfire_grace_time": None})
        self._jobs_running = asyncio.Lock()
        self.dispatcher = Dispatcher(config=config, storage=fsm_storage(config))
        self.dispatcher.update.outer_middleware(UnitOfWork(self.services))
        self.dispatcher.include_routers(*get_routers(config))
        self.intake = Intake(
            self.db, self.dispatcher, self.bot, clock,
            concurrency=d.concurrency, on_failure=self._update_failed,
            ordered_across_processes=not self.db.is_sqlite,
        )
        self._tasks: list[asyncio.Task[Any]] = []
        # One process of all the workers delivers, ticks the scheduler and polls: the leader.
        self.leadership = Leadership(self.db, on_elected=self._lead, on_deposed=self._step_down)
        self.webhook: WebhookServer | None = None

    async def prepare(self) -> None:
        """Migrate the database and learn what the staff group is."""
        await upgrade_async(self.config.database.url)
        self.texts.warm_up()
        await self.faq.load(self.db)
        forum = self.config.telegram.staff_forum
        if forum is None:
            try:
                chat = await self.bot.get_chat(self.config.telegram.staff_chat_id)
                forum = bool(chat.is_forum)
            except TelegramAPIError as exc:
                log.warning("cannot read the staff group (%s); assuming it has no topics", exc)
                forum = False
        self.services.forum = forum
        # Companies of [[companies]] (bot/companies.py); the bot's @username for their
        # invite links, asked once now (aiogram keeps it) rather than inside an update.
        await sync_companies(self.db, self.config.companies, self.clock())
        with suppress(TelegramAPIError):
            await self.bot.me()
        await self._set_commands()

    async def _set_commands(self) -> None:
        lang = self.config.desk.language
        scopes: list[tuple[str, Any]] = [
            ("client", BotCommandScopeAllPrivateChats()),
            ("staff", BotCommandScopeChat(chat_id=self.config.telegram.staff_chat_id)),
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
        await self.intake.resume()
        self._tasks = []
        self.scheduler.add_job(
            self.run_jobs, "interval", seconds=self.config.sla.sweep_seconds, id="sla",
            max_instances=1, coalesce=True, next_run_time=datetime.now(UTC),
        )
        # Rating requests and reminders, the quarterly quality check: bot/ratings.py, quality.py.
        self.scheduler.add_job(
            self.run_rating_jobs, "interval", seconds=self.config.ratings.sweep_seconds,
            id="ratings", max_instances=1, coalesce=True, next_run_time=datetime.now(UTC),
        )
        if self.config.quality.enabled:
            self.scheduler.add_job(
                self.run_quality_jobs, "interval", seconds=self.config.quality.sweep_seconds,
                id="quality", max_instances=1, coalesce=True, next_run_time=datetime.now(UTC),
            )
        if self.config.desk.surge_threshold:  # one digest a minute in a surge (bot/surge.py)
            self.scheduler.add_job(
                self.run_surge_digest, "interval", seconds=SURGE_DIGEST_SECONDS, id="surge",
                max_instances=1, coalesce=True,
            )
        if self.config.reports.monthly_acts:  # last month's acts of work (bot/reports.py)
            self.scheduler.add_job(
                self.run_report_jobs, "interval", minutes=5, id="monthly_acts",
                max_instances=1, coalesce=True, next_run_time=datetime.now(UTC),
            )
        if not self.db.is_sqlite:  # updates left behind by a worker that died
            self.scheduler.add_job(
                self.intake.resume, "interval", seconds=ORPHAN_SWEEP_SECONDS, id="inbox",
                kwargs={"older_than": timedelta(seconds=ORPHAN_SWEEP_SECONDS)},
                max_instances=1, coalesce=True)
        self.scheduler.start(paused=True)
        if self.config.telegram.mode == "webhook":
            await self._start_webhook()
        await self.leadership.start()

    async def _start_webhook(self) -> None:
        """Listen (every worker, on the same port), then point Telegram at us. Every worker
        sets the same webhook: harmless, and no worker depends on another having done it."""
        t = self.config.telegram
        secret = t.secret_token.get_secret_value()
        self.webhook = WebhookServer(webhook_app(self.intake, path=t.path, secret_token=secret),
                                     t.host, t.port)
        await self.webhook.start()
        await self.bot.set_webhook(t.webhook_url, secret_token=secret,
                                   allowed_updates=ALLOWED_UPDATES)

    async def _lead(self) -> None:
        """Elected (bot/leader.py): deliver the outbox, tick the scheduler, poll."""
        self.delivery.reset()
        self._tasks.append(asyncio.create_task(self.delivery.run(), name="delivery"))
        if self.scheduler.running:
            self.scheduler.resume()
        if self.config.telegram.mode == "polling":
            with suppress(TelegramAPIError):
                await self.bot.delete_webhook()
            self._tasks.append(asyncio.create_task(
                self.intake.poll(self.config.telegram.poll_timeout), name="polling"))

    async def _step_down(self) -> None:
        """Deposed: stop everything only the leader does; updates received are still handled."""
        if self.scheduler.running:
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
        async with self._jobs_running:  # a tick under way finishes first
            pass

    async def run_jobs(self) -> None:
        """One tick of the scheduled jobs: SLA warnings and breaches, status reminders."""
        try:
            async with self._jobs_running:
                wrote = await jobs.run_all(self.db, self.notifier_for, self.config, self.clock())
        except Exception:  # the next tick tries again; the state is in the database
            log.exception("scheduled jobs failed")
            return
        if wrote:
            self.delivery.wake()

    async def run_rating_jobs(self) -> None:
        """Delayed rating requests and the one reminder (bot/ratings.py)."""
        await self._tick("ratings", lambda: rating_sweep(self.db, self.notifier_for,
                                                         self.config.ratings, self.clock()))

    async def run_quality_jobs(self) -> None:
        """Start the quarter's quality check when due; resume writing a campaign under way."""
        await self._tick("quality", lambda: quality_tick(self.db, self.notifier_for, self.config,
                                                         self.clock()))

    async def run_surge_digest(self) -> None:
        """The incidents registered in a surge that have no card yet, in one message."""
        await self._tick("surge", lambda: post_surge_digest(self.db, self.notifier_for,
                                                           self.clock()))

    async def run_report_jobs(self) -> None:
        """The monthly acts of performed work, on the first working day of the month."""
        await self._tick("report", lambda: monthly_acts(self.db, self.notifier_for, self.config,
                                                        self.clock()))

    async def _tick(self, name: str, job: Callable[[], Coroutine[Any, Any, int]]) -> None:
        # The job is started under the lock (stop() may hold it for good meanwhile), and its
        # clock read there: a tick that waited sees the time it runs at.
        try:
            async with self._jobs_running:
                wrote = await job()
        except Exception:  # the next tick tries again; the state is in the database
            log.exception("%s jobs failed", name)
            return
        if wrote:
            self.delivery.wake()

    def notifier_for(self, session: AsyncSession) -> Notifier:
        return self._writer(session)[1]

    async def stop(self) -> None:
        await self.leadership.halt()  # no election from now on; the lock is released last
        if self.webhook is not None:
            await self.webhook.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        # A tick under way finishes first; none starts after (the lock stays held: the
        # database is about to close).
        await self._jobs_running.acquire()
        for task in self._tasks:
            if task.get_name() != "delivery":
                task.cancel()
        await self.intake.wait_idle()
        await self.delivery.stop()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        await self.leadership.stop()
        await self.dispatcher.storage.close()
        await self.bot.session.close()
        await self.db.dispose()

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        await self.start()
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await self.stop()

    # -- callbacks from the intake and the delivery worker --------------------------

    def _writer(self, session: AsyncSession) -> tuple[OutboxWriter, Notifier]:
        out = OutboxWriter(Outbox(session), self.clock())
        return out, Notifier(
            out, self.texts, staff_chat_id=self.config.telegram.staff_chat_id,
            forum=self.services.forum, signature=self.config.desk.signature,
        )

    async def _client_blocked(
        self, session: AsyncSession, client_id: int, ticket_id: int | None
    ) -> None:
        if ticket_id is None:
            return
        _, notifier = self._writer(session)
        client = await Clients(session).by_id(client_id)
        await notifier.staff_line(await Tickets(session).by_id(ticket_id), "client_blocked",
                                  client=client)

    async def _update_failed(self, update: dict[str, Any]) -> None:
        """Tell a client their message was not processed, rather than dropping it silently."""
        chat_id = chat_of(update)
        if chat_id is None or chat_id < 0:
            return
        async with self.db.transaction() as session:
            client = await Clients(session).by_chat(chat_id)
            language = client.language if client else self.texts.default_language
            out, _ = self._writer(session)
            await out.send_text(chat_id, self.texts.client(language, "error", code="sorry"),
                                priority=PRIORITY_REPLY)
        self.delivery.wake()

