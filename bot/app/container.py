"""The wiring: what the process builds once, and what each transaction gets of it.

`Container` holds the long-lived services: the database, the texts, the severity
classifier, the SLA policy, the FAQ index, the Telegram session, the staff directory and
the delivery worker. `Scope` is one transaction's view of them: the outbox writer, the
Bot API calls to make after the commit, the notifier and the desks (incidents, FAQ,
ratings) bound to its session. A Scope is the only place those are built: the
unit-of-work middleware opens one per update, the scheduled jobs and the App's callbacks
one per transaction of theirs, and so do the tests.
"""

from __future__ import annotations

import asyncio
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder
from aiogram.types import Update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config, ConfigError, beside
from bot.domain.chatter import MODEL_FILE as CHATTER_MODEL
from bot.domain.chatter import ChatterModel, RequestClassifier
from bot.domain.clock import Clock, Monotonic, Sleep, utc_now
from bot.domain.redact import keep_secret
from bot.domain.severity import SeverityClassifier, SeverityVocabularyError
from bot.domain.severity_model import MODEL_FILE, SemanticSeverity, SeverityModel
from bot.domain.sla import SlaPolicy
from bot.messaging.after_commit import AfterCommit
from bot.messaging.notify import Notifier
from bot.messaging.outbox import OutboxWriter
from bot.messaging.texts import Texts
from bot.services.bell import Bell
from bot.services.desk import Classifier, Desk
from bot.services.faq import FaqService
from bot.services.faq_desk import FaqDesk
from bot.services.flood import FloodDesk
from bot.services.groups import GroupDesk
from bot.services.problems import OpenTitles, ProblemDesk, ProblemMatcher, close_linked
from bot.services.ratings import RatingDesk
from bot.services.reports.jobs import ReportDesk
from bot.services.semantic import EncodeBudget, Semantic
from bot.telegram.delivery import BlockedHandler, DeliveryWorker
from bot.telegram.dialogs import ExpiringMemoryStorage
from bot.telegram.middleware import ClientOfPrivateChat, StaffRequests, UnitOfWork
from bot.telegram.ratelimit import RateLimiter
from bot.telegram.staff import StaffDirectory
from handlers import STAFF_FLAG, routers
from storage.db import Database
from storage.repos.outbox import Outbox


def fsm_storage(config: Config) -> BaseStorage:
    """Dialog state: in Redis when `[redis] url` is set (shared by every worker), else here."""
    ttl = config.security.dialog_ttl_seconds
    if not config.redis.url:
        return ExpiringMemoryStorage(ttl)
    from aiogram.fsm.storage.redis import RedisStorage

    return RedisStorage.from_url(config.redis.url, state_ttl=ttl, data_ttl=ttl,
                                 key_builder=DefaultKeyBuilder(prefix=config.redis.prefix))


def configured_classifier(config: Config, semantic: Semantic | None = None) -> Classifier:
    """The classifier with the desk's `[severity] vocabulary` files (relative to the config
    file); a broken file stops start-up with a ConfigError naming the file and the key.
    With the sentence model: the model on the message's vector (bot/domain/severity_model.py)."""
    paths = [beside(config.source, path) for path in config.severity.vocabulary]
    try:
        rules = SeverityClassifier.from_files(*paths)
    except SeverityVocabularyError as error:
        where = config.source or "config"
        raise ConfigError(f"{where}: [severity.vocabulary] {error}") from None
    if semantic is None or not semantic.available:
        return rules.classify
    return SemanticSeverity(rules, desk_model(config), semantic.vectors,
                            trust_rules_critical=bool(paths)).classify


def desk_model(config: Config) -> SeverityModel:
    """The desk's refitted severity model (`[severity] models`) if there is one, else the
    bundled one; an unreadable file stops start-up naming it."""
    folder = config.severity.models
    path = beside(config.source, folder) / MODEL_FILE.name if folder is not None else None
    if path is None or not path.exists():
        return SeverityModel.load()
    try:
        return SeverityModel.load(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise ConfigError(f"{path}: not a severity model ({error}); refit it with "
                          "`python -m bot classify --retrain --config ...` or remove it") from None


def request_classifier(semantic: Semantic) -> RequestClassifier:
    """A client group's request-or-chatter model (bot/domain/chatter.py) on the message's
    vector; the words alone without the sentence model."""
    if not semantic.available or not CHATTER_MODEL.exists():
        return RequestClassifier(None, None)
    return RequestClassifier(ChatterModel.load(), semantic.vectors)


@dataclass(frozen=True)
class Container:
    config: Config
    clock: Clock
    db: Database
    texts: Texts
    classify: Classifier
    sla: SlaPolicy
    faq: FaqService
    semantic: Semantic
    encode_budget: EncodeBudget
    chatter: RequestClassifier
    bot: Bot
    staff: StaffDirectory
    delivery: DeliveryWorker
    problem_titles: OpenTitles

    @classmethod
    def build(
        cls,
        config: Config,
        *,
        clock: Clock = utc_now,
        classify: Classifier | None = None,
        on_blocked: BlockedHandler | None = None,
        db: Database | None = None,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        semantic: Semantic | None = None,
    ) -> Container:
        """Everything that needs no network. The FAQ files are read now: a broken file (or
        vocabulary) stops start-up before anything runs. `on_blocked`: what the delivery
        worker does when a client turns out to have blocked the bot; `db`: a database
        already open (tests share one), else `[database] url`'s; `monotonic`: the rate
        limiter's sense of elapsed time and `sleep` the delivery worker's waits for it (tests
        run both faster); `semantic`: the sentence model, else the process's (loaded once;
        without it FAQ and severity work on words only)."""
        keep_secret(config.token)  # out of every stored error and log line (bot/domain/redact.py)
        keep_secret(config.telegram.secret_token.get_secret_value())
        keep_secret(config.monitoring.token.get_secret_value())
        shared = semantic or Semantic.shared(config.kb.vector_cache)
        faq = FaqService(config.kb, clock, shared)
        faq.load_files()
        c = config.database
        db = db or Database(c.url, echo=c.echo, pool_size=c.pool_size,
                            max_overflow=c.max_overflow)
        t, d = config.telegram, config.delivery
        bot = Bot(config.token, session=AiohttpSession(
            api=TelegramAPIServer.from_base(t.api_base), timeout=t.request_timeout))
        limiter = RateLimiter(d.global_per_second, d.per_chat_per_second, d.per_group_per_minute,
                              monotonic)
        staff = StaffDirectory(bot, t.staff_chat_id, t.admins, forum=t.staff_forum,
                               cache_seconds=config.security.staff_cache_seconds)
        return cls(
            config=config, clock=clock, db=db,
            texts=Texts.shared(config.desk.language, config.desk.timezone),
            classify=classify or configured_classifier(config, shared),
            sla=SlaPolicy(config.desk, config.sla), faq=faq, semantic=shared,
            encode_budget=EncodeBudget(config.limits.messages_per_minute,
                                       config.limits.burst, clock),
            chatter=request_classifier(shared), bot=bot, staff=staff,
            delivery=DeliveryWorker(db, bot, limiter, clock, on_blocked=on_blocked,
                                    on_migrated=staff.chat_migrated,
                                    max_backoff=d.max_backoff_seconds,
                                    group_history=not db.is_sqlite, sleep=sleep),
            problem_titles=OpenTitles(db, shared, monotonic),
        )

    def scope(self, session: AsyncSession, clock: Clock | None = None) -> Scope:
        """The services of one transaction; `clock`: a job's fixed moment, else the
        process's clock."""
        return Scope(self, session, clock or self.clock)

    async def update_scope(self, session: AsyncSession) -> Scope:
        """An update's scope, its FAQ caught up with the changes of every worker."""
        await self.faq.refresh(session)
        return self.scope(session)

    def notifier_for(self, session: AsyncSession) -> Notifier:
        """What most jobs take (bot.services.sla_jobs.NotifierFactory)."""
        return self.scope(session).notifier

    def desk_for(self, session: AsyncSession, now: datetime) -> Desk:
        """What the "solved -> closed" sweep takes (bot.services.sla_jobs.DeskFactory)."""
        return self.scope(session, lambda: now).desk

    def ratings_for(self, session: AsyncSession, now: datetime) -> RatingDesk:
        """What the ratings sweep takes (bot.services.ratings.RatingDeskFactory)."""
        return self.scope(session, lambda: now).ratings

    def problems_for(self, session: AsyncSession, now: datetime) -> ProblemDesk:
        """What the closing of a problem's linked incidents takes
        (bot.services.problems.ProblemDeskFactory)."""
        return self.scope(session, lambda: now).problems

    async def close_linked(self) -> int:
        """A closed problem's linked incidents, closed in batches (after the closing's
        commit; the scheduler's sweep runs the same)."""
        return await close_linked(self.db, self.problems_for, self.clock, self.delivery.wake)

    def dispatcher(self) -> Dispatcher:
        """A dispatcher with fresh routers (handlers/__init__.py), the unit of work, and the
        staff requests collected from those routers' flags."""
        dispatcher = Dispatcher(config=self.config, storage=fsm_storage(self.config))
        included = routers()
        dispatcher.include_routers(*included)
        requests = StaffRequests.of(included, STAFF_FLAG)
        dispatcher.update.outer_middleware(UnitOfWork(
            self.db, self.clock, self.update_scope, self.staff, requests, self.delivery.wake,
            prepare=self.prepare,
        ))
        for observer in (dispatcher.message, dispatcher.edited_message,
                         dispatcher.callback_query):
            observer.middleware(ClientOfPrivateChat())
        return dispatcher

    async def prepare(self, update: Update) -> None:
        """Before an update's transaction: a client message's vector for the classifier
        and the FAQ, made in the encoder's thread (bot/services/semantic.py)."""
        message = update.message
        if message is None or message.chat.id == self.staff.staff_chat_id:
            return  # staff's words are neither classified nor searched
        text = message.text or message.caption
        sender = message.from_user.id if message.from_user is not None else message.chat.id
        if text and not text.startswith("/") and self.encode_budget.admit(sender):
            await self.faq.prepare(text)
            if message.chat.type == "private":
                self.problem_titles.refresh()  # what a new report is compared with

    async def close(self) -> None:
        await self.problem_titles.close()
        self.semantic.close()
        await self.bot.session.close()
        await self.db.dispose()


@dataclass(frozen=True)
class Scope:
    """One transaction's services, each built when first asked for."""

    container: Container
    session: AsyncSession
    clock: Clock

    @cached_property
    def now(self) -> datetime:
        """The moment the transaction began (outbox rows are dated by it)."""
        return self.clock()

    @cached_property
    def out(self) -> OutboxWriter:
        return OutboxWriter(Outbox(self.session), self.now)

    @cached_property
    def after_commit(self) -> AfterCommit:
        """Bot API calls the unit of work makes once this transaction has committed."""
        return AfterCommit()

    @cached_property
    def notifier(self) -> Notifier:
        c = self.container
        return Notifier(self.out, c.texts, staff_chat_id=c.staff.staff_chat_id,
                        forum=c.staff.forum, signature=c.config.desk.signature)

    @cached_property
    def faq(self) -> FaqDesk:
        return FaqDesk(self.container.faq, self.session, self.notifier)

    @cached_property
    def bell(self) -> Bell:
        return Bell(self.container.config.ratings, self.session, self.notifier, self.clock)

    @cached_property
    def ratings(self) -> RatingDesk:
        return RatingDesk(self.container.config.ratings, self.session, self.notifier,
                          self.clock, self.bell)

    @cached_property
    def desk(self) -> Desk:
        c = self.container
        return Desk(self.session, self.notifier, self.clock, c.config.desk, c.classify,
                    c.texts.language_for, sla=c.sla, on_opened=self.faq.suggest,
                    on_closed=self.ratings.on_closed, limits=c.config.limits,
                    known_problem=ProblemMatcher(self.session, c.semantic))

    @cached_property
    def problems(self) -> ProblemDesk:
        return ProblemDesk(self.session, self.notifier, self.desk, self.clock,
                           close_later=lambda: self.after_commit.later(
                               self.container.close_linked))

    @cached_property
    def groups(self) -> GroupDesk:
        c = self.container
        return GroupDesk(self.session, self.desk, self.notifier, self.clock, c.config.groups,
                         c.chatter.is_request)

    @cached_property
    def reports(self) -> ReportDesk:
        """/stats and /report: queued in `after_commit`, run after the commit."""
        c = self.container
        return ReportDesk(c.db, c.notifier_for, c.config, c.texts, c.delivery.wake)

    @cached_property
    def flood(self) -> FloodDesk:
        return FloodDesk(self.session)

    def handler_data(self) -> dict[str, Any]:
        """What handlers may take (by these names)."""
        return {"session": self.session, "now": self.now, "texts": self.container.texts,
                "notifier": self.notifier, "desk": self.desk, "faq": self.faq,
                "ratings": self.ratings, "bell": self.bell, "flood": self.flood,
                "problems": self.problems,
                "groups": self.groups,
                "semantic": self.container.semantic, "after_commit": self.after_commit,
                "reports": self.reports}

    @property
    def wrote(self) -> bool:
        """Whether anything went to the outbox (the delivery worker is woken then)."""
        return bool(self.out.wrote)
