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

`FaqDesk` (bot/services/faq_desk.py) is its per-update face, made by the
update's scope in bot/app/container.py like `Desk`: it suggests an article when
an incident is opened, records what the client said about it, and does what
staff ask of the FAQ. Incidents themselves still change only through `Desk`.
Import and export between files and the database: bot/services/faq_files.py.

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
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import KBConfig
from bot.domain.clock import Clock
from bot.domain.errors import UserError
from bot.services.semantic import Semantic
from kb.articles import Article, KBError, image_roots, read_kb
from kb.index import Hit, SearchIndex
from kb.semantic import Gate, HybridSearch, SemanticIndex
from kb.text import normalize
from storage.db import Database
from storage.models import FaqArticle, FaqStats
from storage.repos.counters import read_counter
from storage.repos.faq import FaqArticles

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

    def __init__(self, config: KBConfig, clock: Clock, semantic: Semantic | None = None) -> None:
        self.config = config
        self.clock = clock
        self.file_articles: dict[str, Article] = {}
        self.db_articles: dict[str, Article] = {}
        self.drafts: set[str] = set()
        self.extra_alt: dict[str, tuple[str, ...]] = {}
        self.index = SearchIndex(min_score=config.min_score)
        # With the sentence model: article vectors beside the lexical index, ranked together
        # (kb/semantic.py); their encoding runs in the encoder's thread (`encode_vectors`).
        self.semantic = semantic if semantic is not None and semantic.available else None
        self.gate = Gate.load() if self.semantic is not None else None
        self.vectors: SemanticIndex | None = None
        if self.semantic is not None and self.semantic.articles is not None:
            self.vectors = SemanticIndex(self.semantic.articles)
        self._encoding: set[asyncio.Task[None]] = set()
        # Searches may run in a thread; the index must not change under them.
        self._lock = threading.Lock()

    # -- loading ------------------------------------------------------------------------

    @property
    def image_roots(self) -> list[Path]:
        """The folders article images may be in: the KB folder and `[kb] media`."""
        return image_roots(self.config.path, self.config.media)

    def load_files(self) -> None:
        """Read the KB files named by `[kb] path`; a broken file raises KBError (file, article,
        field) so that start-up stops with a message the editor can act on."""
        self.file_articles = {a.id: a for a in read_kb(self.config.path, self.config.media)}

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
        await self.encode_vectors()

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
        published = [a for a in (self.article(i) for i in self.published_ids()) if a]
        index = SearchIndex(published, min_score=self.config.min_score)
        vectors = None
        if self.vectors is not None:
            vectors = SemanticIndex(self.vectors.cache)
            vectors.set_many(published)
        with self._lock:
            self.index = index
            if vectors is not None:
                self.vectors = vectors
        self._schedule_encoding()

    # -- article vectors ------------------------------------------------------------------

    async def encode_vectors(self) -> None:
        """Encode the texts of articles that have no vector yet, in the encoder's thread,
        and persist the cache ([kb] vector_cache) when anything was encoded."""
        if self.semantic is None or self.vectors is None:
            return
        vectors = self.vectors
        if not vectors.pending():
            return
        count = await self.semantic.run(vectors.encode_pending)
        if count:
            await self.semantic.run(lambda: vectors.cache.save(keep=vectors.all_texts()))
            log.info("FAQ: %d article text(s) encoded by the sentence model", count)

    def _schedule_encoding(self) -> None:
        """After a change: encode its vectors soon, off the loop (without a running loop,
        e.g. in a command, the next `encode_vectors` or search does it)."""
        if self.vectors is None or not self.vectors.pending():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.encode_vectors())
        self._encoding.add(task)
        task.add_done_callback(self._encoding.discard)

    async def prepare(self, query: str) -> None:
        """Before an update's transaction: the query's vector and pending article vectors."""
        if self.semantic is None:
            return
        # The model reads the query as repaired (wrong layout, transliteration): `_search`.
        await self.semantic.prepare([self.index.repaired(query)])
        await self.encode_vectors()

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

    def published(self, article_id: str) -> Article | None:
        """The article as a client may see it: None for drafts and unknown ids."""
        return None if article_id in self.drafts else self.article(article_id)

    def source(self, article_id: str) -> str | None:
        if article_id in self.db_articles:
            return "db"
        return "file" if article_id in self.file_articles else None

    def all_ids(self) -> list[str]:
        return sorted({*self.file_articles, *self.db_articles})

    def published_ids(self) -> list[str]:
        return [i for i in self.all_ids() if i not in self.drafts]

    async def search(self, query: str, limit: int = 3) -> list[Hit]:
        # Normally done before the update's transaction (`prepare`); here only what is left,
        # still in the encoder's thread.
        await self.prepare(query)
        if len(self.index) > self.config.thread_above:
            return await asyncio.to_thread(self._search, query, limit)
        return self._search(query, limit)

    def _search(self, query: str, limit: int) -> list[Hit]:
        with self._lock:
            if self.semantic is None or self.vectors is None or self.gate is None:
                return self.index.search(query, limit)
            search = HybridSearch(self.index, self.vectors, self.gate)
            vector = self.semantic.vectors([search.meaning(query)])[0]
            return search.search(query, vector, limit)

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
                if self.vectors is not None:
                    self.vectors.remove(article_id)
            else:
                self.index.replace(article)
                if self.vectors is not None:
                    self.vectors.set(article)
        self._schedule_encoding()

    def _advance(self, revision: int) -> None:
        """A change made here is applied here: the index is at `revision` unless another
        process's change came in between (then the next refresh reloads)."""
        if revision == self.revision + 1:
            self.revision = revision
