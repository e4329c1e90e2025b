"""The FAQ in the bot: articles from YAML files and from the database, one search index.

`FaqService` is long-lived (one per process): it owns the in-memory
`kb.index.SearchIndex` over every published article, built at start-up and
changed incrementally afterwards. Changes reach the index only after the
transaction that made them commits, so a rolled-back update never leaves the
index ahead of the database. Every change also bumps a revision counter in the
database; each update first compares it with the one this process has seen
(`refresh`), so a change made by another worker (or `kb import`) is picked up
by the next update here. Big indexes are searched in a worker thread so the
event loop is never blocked for long.

`FaqDesk` is its per-update face (made by the update's scope in
bot/app/container.py, like `Desk`): it suggests an article when an incident is
opened, records what the client said about it, and does what staff ask of the
FAQ. Incidents themselves still change only through `Desk`.

Articles written in chat live in `faq_articles`; articles from files stay in
the files (staff edit those in the files, or `kb import` them to manage them in
chat). Counters and freshness of both kinds are kept in `faq_stats`, and every
suggestion made to a client is a `faq_suggestions` row that its buttons are
checked against.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import KBConfig
from bot.domain.clock import Clock
from bot.domain.errors import UserError
from bot.messaging.callbacks import FaqAction, KbAction
from bot.messaging.notify import Content, Notifier
from bot.messaging.outbox import PRIORITY_REPLY, Keyboard, button
from kb.articles import Article, KBError, load_articles
from kb.index import Hit, SearchIndex
from kb.text import normalize
from storage.db import Database
from storage.hooks import after_commit
from storage.models import Client, FaqArticle, FaqStats, FaqSuggestion, Ticket
from storage.repos.counters import next_number, read_counter
from storage.repos.faq import FaqArticles, FaqSuggestions
from storage.repos.tickets import TicketMessages, Tickets

log = logging.getLogger(__name__)

# A counter bumped by every change of the KB in the database (FaqService.refresh below).
KB_REVISION = "kb"
TG_IMAGE = "tg:"  # an image sent in chat: "tg:<file_id>"
ID_LIMIT = 48  # keeps "fs:<id>" button data within Telegram's 64 bytes
PHRASING_LIMIT = 300  # longer client messages are stories, not phrasings
TOP_LIMIT = 5

_TRANSLIT = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p",
     "r", "s", "t", "u", "f", "h", "ts", "ch", "sh", "sch", "", "y", "", "e", "yu", "ya"],
    strict=True,
))


class FaqError(UserError):
    """An FAQ request that cannot be done (templates: `faq_error`, `kb_error`)."""


@dataclass(frozen=True)
class ArticleInfo:
    """An article with where it lives and how it is used (for staff lists)."""

    article: Article
    source: str  # file | db
    draft: bool
    suggested: int
    solved: int
    rejected: int
    updated_at: datetime | None


def content_hash(article: Article) -> str:
    data = [article.lang, article.question, list(article.alt), article.answer,
            list(article.tags), article.image]
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()


def article_of(row: FaqArticle) -> Article:
    return Article(id=row.id, lang=row.lang, question=row.question, alt=tuple(row.alt or ()),
                   answer=row.answer, tags=tuple(row.tags or ()), image=row.image)


def language_of(text: str) -> str:
    return "ru" if re.search(r"[а-яё]", text.lower()) else "en"


def slug_for(text: str) -> str:
    """A readable article id from a question: "Не работает VPN" -> "ne-rabotaet-vpn"."""
    latin = "".join(_TRANSLIT.get(ch, ch) for ch in normalize(text))
    words = re.sub(r"[^a-z0-9]+", " ", latin).split()[:5]
    slug = "-".join(words)[:ID_LIMIT - 4].strip("-")
    return slug or "article"


class FaqService:
    """Every article the bot knows and the search index over the published ones."""

    def __init__(self, config: KBConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.file_articles: dict[str, Article] = {}
        self.db_articles: dict[str, Article] = {}
        self.drafts: set[str] = set()
        self.extra_alt: dict[str, tuple[str, ...]] = {}
        self.index = SearchIndex(min_score=config.min_score)
        # Searches may run in a thread; the index must not change under them.
        self._lock = threading.Lock()

    # -- loading ------------------------------------------------------------------------

    @property
    def image_dir(self) -> Path | None:
        path = self.config.path
        if path is None:
            return None
        return path if path.is_dir() else path.parent

    def load_files(self) -> None:
        """Read the KB files named by `[kb] path`; a broken file raises KBError (file, article,
        field) so that start-up stops with a message the editor can act on."""
        path = self.config.path
        if path is None:
            return
        if not path.exists():
            raise KBError(f"{path}: no such file or folder (the [kb] path setting)")
        self.file_articles = {a.id: a for a in load_articles(path)}

    async def load(self, db: Database) -> None:
        """Read the database's articles and counters, notice changed file articles, build the
        index. Ids are unique across files and database: a clash is a KBError."""
        now = self.clock()
        async with db.transaction() as session:
            revision = await read_counter(session, KB_REVISION)
            repo = FaqArticles(session)
            rows = list(await repo.all())
            for row in rows:
                if row.id in self.file_articles:
                    raise KBError(
                        f"{self.config.path}: article {row.id!r}: field 'id': the id is also "
                        "used by an article written in chat (in the database); rename one, "
                        "or delete it with /kb del"
                    )
            stats = await repo.all_stats()
            for article in self.file_articles.values():
                digest = content_hash(article)
                row_stats = stats.get(article.id)
                if row_stats is None:
                    repo.add_stats(FaqStats(
                        article_id=article.id, suggested=0, solved=0, rejected=0,
                        updated_at=self._file_time(now), content_hash=digest, extra_alt=[]))
                elif row_stats.content_hash != digest:
                    row_stats.content_hash, row_stats.updated_at = digest, now
        self._install(rows, stats.values(), revision)

    async def refresh(self, session: AsyncSession) -> None:
        """Catch up with KB changes committed by another process (another worker, `kb
        import`): each change bumps the revision counter, so the check is one small query
        and a rebuild happens only after a change this process did not make itself."""
        revision = await read_counter(session, KB_REVISION)
        if revision == self.revision:
            return
        repo = FaqArticles(session)
        self._install(list(await repo.all()), (await repo.all_stats()).values(), revision)
        log.info("FAQ: reloaded at revision %d (changed elsewhere)", revision)

    def _install(self, rows: list[FaqArticle], stats: Iterable[FaqStats], revision: int) -> None:
        self.revision = revision
        self.db_articles = {row.id: article_of(row) for row in rows}
        self.drafts = {row.id for row in rows if row.draft}
        self.extra_alt = {s.article_id: tuple(s.extra_alt) for s in stats if s.extra_alt}
        published = [self.article(i) for i in self.published_ids()]
        index = SearchIndex([a for a in published if a], min_score=self.config.min_score)
        with self._lock:
            self.index = index

    def _file_time(self, default: datetime) -> datetime:
        path = self.config.path
        try:
            return datetime.fromtimestamp(path.stat().st_mtime, UTC) if path else default
        except OSError:
            return default

    # -- reading ------------------------------------------------------------------------

    def article(self, article_id: str) -> Article | None:
        """The article as searched and shown: its phrasings include those learned in chat."""
        found = self.db_articles.get(article_id) or self.file_articles.get(article_id)
        extra = self.extra_alt.get(article_id)
        if found is not None and extra:
            found = replace(found, alt=found.alt + tuple(a for a in extra if a not in found.alt))
        return found

    def source(self, article_id: str) -> str | None:
        if article_id in self.db_articles:
            return "db"
        return "file" if article_id in self.file_articles else None

    def all_ids(self) -> list[str]:
        return sorted({*self.file_articles, *self.db_articles})

    def published_ids(self) -> list[str]:
        return [i for i in self.all_ids() if i not in self.drafts]

    async def search(self, query: str, limit: int = 3) -> list[Hit]:
        if len(self.index) > self.config.thread_above:
            return await asyncio.to_thread(self._search, query, limit)
        return self._search(query, limit)

    def _search(self, query: str, limit: int) -> list[Hit]:
        with self._lock:
            return self.index.search(query, limit)

    # -- changes (called after the commit that made them) --------------------------------

    def _put(self, article: Article, *, draft: bool) -> None:
        self.db_articles[article.id] = article
        if draft:
            self.drafts.add(article.id)
        else:
            self.drafts.discard(article.id)
        self._reindex(article.id)

    def _drop(self, article_id: str) -> None:
        self.db_articles.pop(article_id, None)
        self.drafts.discard(article_id)
        self.extra_alt.pop(article_id, None)
        self._reindex(article_id)

    def _learn(self, article_id: str, phrasing: str) -> None:
        if article_id in self.db_articles:
            old = self.db_articles[article_id]
            self.db_articles[article_id] = replace(old, alt=(*old.alt, phrasing))
        else:
            self.extra_alt[article_id] = (*self.extra_alt.get(article_id, ()), phrasing)
        self._reindex(article_id)

    def _reindex(self, article_id: str) -> None:
        article = self.article(article_id)
        with self._lock:
            if article is None or article_id in self.drafts:
                if article_id in self.index:
                    self.index.remove(article_id)
            else:
                self.index.replace(article)

    def _advance(self, revision: int) -> None:
        """A change made here is applied here: the index is at `revision` unless another
        process's change came in between (then the next refresh reloads)."""
        if revision == self.revision + 1:
            self.revision = revision


class FaqDesk:
    """The FAQ within one update's transaction."""

    def __init__(self, service: FaqService, session: AsyncSession, notifier: Notifier) -> None:
        self.service = service
        self.session = session
        self.notify = notifier
        self.clock = service.clock
        self.texts = notifier.texts

    # -- clients ------------------------------------------------------------------------

    async def best(self, query: str, language: str, limit: int = 1) -> list[Article]:
        """The best articles for a query, those in the client's language first."""
        hits = await self.service.search(query, limit=max(limit, 5))
        articles = [a for a in (self.service.article(h.id) for h in hits) if a is not None]
        articles.sort(key=lambda a: a.lang != language)  # stable: score order kept within
        return articles[:limit]

    async def suggest(self, ticket: Ticket, client: Client, content: Content) -> None:
        """After an incident is registered: offer the best article, if one is good enough."""
        if not content.text.strip() or not len(self.service.index):
            return
        hits = await self.service.search(content.text, limit=5)
        if not hits:
            return
        preferred = [h for h in hits if (a := self.service.article(h.id)) and a.lang ==
                     client.language]
        hit = (preferred or hits)[0]
        article = self.service.article(hit.id)
        if article is None:
            return
        suggestion = await FaqSuggestions(self.session).add(FaqSuggestion(
            ticket_id=ticket.id, client_id=client.id, article_id=article.id, score=hit.score,
            query=content.text, created_at=self.clock(),
        ))
        (await self._stats(article.id)).suggested += 1
        label = self.texts.label
        keyboard: Keyboard = [[
            button(label(client.language, "faq_solved"),
                   FaqAction(action="ok", suggestion=suggestion.id).pack()),
            button(label(client.language, "faq_not_that"),
                   FaqAction(action="no", suggestion=suggestion.id).pack()),
        ]]
        await self.send_article(client, article, "faq_suggestion", ticket=ticket,
                                keyboard=keyboard)

    async def send_article(
        self, client: Client, article: Article, message: str, *, ticket: Ticket | None = None,
        keyboard: Keyboard | None = None, **context: Any,
    ) -> None:
        """An article to a client: its screenshot (if any), then the text with the buttons."""
        photo = self.photo_of(article)
        if photo is not None:
            await self.notify.out.call(
                client.chat_id, "sendPhoto", {"photo": photo}, priority=PRIORITY_REPLY,
            )
        await self.notify.to_client(ticket, client, message, article=article,
                                    priority=PRIORITY_REPLY, keyboard=keyboard, **context)

    def photo_of(self, article: Article) -> Any:
        image = article.image
        if not image:
            return None
        if image.startswith(TG_IMAGE):
            return image[len(TG_IMAGE):]
        if image.startswith(("http://", "https://")):
            return image
        folder = self.service.image_dir
        if folder is None or not (folder / image).is_file():
            return None
        return {"$file": str((folder / image).resolve())}

    async def top(self, language: str, limit: int = TOP_LIMIT) -> list[Article]:
        """The most useful published articles: most often solved, then most often offered."""
        stats = await FaqArticles(self.session).all_stats()
        articles = [a for a in map(self.service.article, self.service.published_ids()) if a]
        mine = [a for a in articles if a.lang == language] or articles

        def usefulness(article: Article) -> tuple[int, int, str]:
            s = stats.get(article.id)
            return (-(s.solved if s else 0), -(s.suggested if s else 0), article.id)

        return sorted(mine, key=usefulness)[:limit]

    async def client_answer(self, client: Client, suggestion_id: int, solved: bool
                            ) -> tuple[FaqSuggestion, Ticket]:
        """Record "This solved it" / "Not that" on a suggestion. Only the client it was made
        to may answer, and only once; the caller (the handler) resolves the incident through
        `Desk.resolve_by_faq` when it was solved."""
        suggestion = await FaqSuggestions(self.session).get(suggestion_id)
        if suggestion is None or suggestion.client_id != client.id:
            raise FaqError("button_invalid")
        if suggestion.outcome is not None:
            raise FaqError("already_answered")
        suggestion.outcome = "solved" if solved else "rejected"
        suggestion.answered_at = self.clock()
        stats = await self._stats(suggestion.article_id)
        if solved:
            stats.solved += 1
        else:
            stats.rejected += 1
        ticket = await Tickets(self.session).by_id(suggestion.ticket_id)
        return suggestion, ticket

    async def not_that(self, suggestion: FaqSuggestion, ticket: Ticket, client: Client) -> None:
        await self.notify.to_client(ticket, client, "faq_not_that", priority=PRIORITY_REPLY)
        await self.notify.staff_line(ticket, "kb_rejected_line",
                                     article_id=suggestion.article_id)

    async def offer_phrasing(self, suggestion: FaqSuggestion, ticket: Ticket) -> None:
        """Staff get the client's words as a new phrasing of the article that helped."""
        article = self.service.article(suggestion.article_id)
        words = suggestion.query.strip()
        if article is None or not words or len(words) > PHRASING_LIMIT:
            return
        known = {normalize(p) for p in (article.question, *article.alt)}
        if normalize(words) in known:
            return
        suggestion.phrasing = "offered"
        accept = button(self.texts.label(self.texts.default_language, "kb_accept_phrasing"),
                        KbAction(action="alt", ref=suggestion.id).pack())
        await self.notify.staff_line(ticket, "kb_phrasing_offer", article=article, text=words,
                                     keyboard=[[accept]])

    # -- staff --------------------------------------------------------------------------

    async def _stats(self, article_id: str) -> FaqStats:
        repo = FaqArticles(self.session)
        stats = await repo.stats_of(article_id)
        if stats is None:
            stats = repo.add_stats(FaqStats(article_id=article_id, suggested=0, solved=0,
                                            rejected=0, updated_at=self.clock(), extra_alt=[]))
        return stats

    async def infos(self, ids: Iterable[str] | None = None) -> list[ArticleInfo]:
        stats = await FaqArticles(self.session).all_stats()
        result = []
        for article_id in (self.service.all_ids() if ids is None else ids):
            article = self.service.article(article_id)
            if article is None:
                continue
            s = stats.get(article_id)
            result.append(ArticleInfo(
                article=article, source=self.service.source(article_id) or "db",
                draft=article_id in self.service.drafts,
                suggested=s.suggested if s else 0, solved=s.solved if s else 0,
                rejected=s.rejected if s else 0, updated_at=s.updated_at if s else None,
            ))
        return result

    async def stale(self) -> list[tuple[ArticleInfo, str]]:
        """Articles to fix or remove: not updated for `stale_days`, or often "Not that"."""
        config = self.service.config
        old = self.clock() - timedelta(days=config.stale_days)
        found = []
        for info in await self.infos():
            if info.suggested >= config.reject_min_suggested and (
                info.rejected / info.suggested >= config.reject_ratio
            ):
                found.append((info, "rejected"))
            elif info.updated_at is not None and info.updated_at < old:
                found.append((info, "old"))
        return found

    async def new_id(self, question: str) -> str:
        base = slug_for(question)
        candidate, n = base, 1
        repo = FaqArticles(self.session)
        while (self.service.source(candidate) is not None
               or await repo.get(candidate) is not None):
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    async def save(
        self, *, article_id: str | None, question: str, alt: Sequence[str], answer: str,
        image: str | None, author: int | None, draft: bool = False,
        source_ticket_id: int | None = None,
    ) -> Article:
        """Create (article_id None) or change an article written in chat."""
        now = self.clock()
        if article_id is None:
            row = FaqArticles(self.session).add(FaqArticle(
                id=await self.new_id(question), lang=language_of(question), question="",
                alt=[], answer="", tags=[], draft=draft, source_ticket_id=source_ticket_id,
                created_by=author, created_at=now,
            ))
        else:
            found = await self._db_row(article_id)
            row = found
        row.question, row.alt, row.answer = question.strip(), [a.strip() for a in alt], answer
        row.lang = language_of(question)
        row.image = image
        stats = await self._stats(row.id)
        stats.updated_at = now
        article = article_of(row)
        stats.content_hash = content_hash(article)
        is_draft = row.draft
        await self._changed(lambda: self.service._put(article, draft=is_draft))
        return article

    async def _changed(self, apply: Callable[[], None]) -> None:
        """Count a change of the KB (other processes reload on seeing the revision move) and
        apply it to this process's index once it is committed."""
        revision = await next_number(self.session, KB_REVISION)

        def applied() -> None:
            apply()
            self.service._advance(revision)

        after_commit(self.session, applied)

    async def _db_row(self, article_id: str) -> FaqArticle:
        row = await FaqArticles(self.session).get(article_id)
        if row is None:
            if self.service.source(article_id) == "file":
                raise FaqError("in_file", id=article_id, path=str(self.service.config.path))
            raise FaqError("no_article", id=article_id)
        return row

    async def editable(self, article_id: str) -> Article:
        """An article staff may change in chat (one written in chat)."""
        row = await self._db_row(article_id)
        return article_of(row)

    async def publish(self, article_id: str) -> Article:
        row = await self._db_row(article_id)
        if not row.draft:
            raise FaqError("not_draft", id=article_id)
        row.draft = False
        (await self._stats(article_id)).updated_at = self.clock()
        article = article_of(row)
        await self._changed(lambda: self.service._put(article, draft=False))
        return article

    async def delete(self, article_id: str) -> None:
        await self._db_row(article_id)
        await FaqArticles(self.session).delete(article_id)
        await self._changed(lambda: self.service._drop(article_id))

    async def draft_from_ticket(self, ticket: Ticket, author: int | None) -> Article:
        """`/close 42 faq`: the staff resolution as the answer, the client's first words as
        the question; a draft until staff publish it."""
        messages = TicketMessages(self.session)
        first = await messages.first_from_client(ticket.id, with_text=True)
        answer = ticket.resolution or await messages.last_staff_text(ticket.id)
        if first is None or not answer:
            raise FaqError("nothing_to_draft", number=ticket.number)
        return await self.save(article_id=None, question=first.text, alt=[], answer=answer,
                               image=None, author=author, draft=True, source_ticket_id=ticket.id)

    async def accept_phrasing(self, suggestion_id: int) -> tuple[Article, str]:
        suggestion = await FaqSuggestions(self.session).get(suggestion_id)
        if suggestion is None or suggestion.phrasing != "offered":
            raise FaqError("button_invalid")
        article_id, words = suggestion.article_id, suggestion.query.strip()
        if self.service.article(article_id) is None:
            raise FaqError("no_article", id=article_id)
        suggestion.phrasing = "accepted"
        row = await FaqArticles(self.session).get(article_id)
        if row is not None:
            row.alt = [*row.alt, words]
        else:
            stats = await self._stats(article_id)
            stats.extra_alt = [*stats.extra_alt, words]
        await self._changed(lambda: self.service._learn(article_id, words))
        article = self.service.article(article_id)
        assert article is not None
        return article, words


# -- moving articles between files and the database (the `kb import|export` commands) --


async def import_articles(db: Database, path: Path, clock: Clock) -> tuple[int, int]:
    """Articles of a KB file or folder into the database: new ids added, known ones
    updated (counters kept). Returns (added, updated)."""
    articles = load_articles(path)
    added = updated = 0
    now = clock()
    async with db.transaction() as session:
        repo = FaqArticles(session)
        for article in articles:
            row = await repo.get(article.id)
            if row is None:
                row = repo.add(FaqArticle(id=article.id, draft=False, created_at=now))
                added += 1
            else:
                updated += 1
            row.lang, row.question, row.answer = article.lang, article.question, article.answer
            row.alt, row.tags, row.image = list(article.alt), list(article.tags), article.image
            stats = await repo.stats_of(article.id)
            digest = content_hash(article)
            if stats is None:
                repo.add_stats(FaqStats(article_id=article.id, suggested=0, solved=0, rejected=0,
                                        updated_at=now, content_hash=digest, extra_alt=[]))
            elif stats.content_hash != digest:
                stats.updated_at, stats.content_hash = now, digest
        await next_number(session, KB_REVISION)  # running workers reload
    return added, updated


async def export_articles(db: Database, *, drafts: bool = False) -> list[Article]:
    """The database's articles (published ones unless `drafts`), in id order."""
    async with db.transaction() as session:
        rows = await FaqArticles(session).all()
        return [article_of(row) for row in rows if drafts or not row.draft]

