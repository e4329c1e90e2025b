"""FAQ articles between YAML files and the database (`python -m bot kb import|export`)."""

from __future__ import annotations

from pathlib import Path

from bot.domain.clock import Clock
from bot.services.faq import (
    KB_REVISION,
    article_of,
    content_hash,
)
from kb.articles import Article, load_articles
from storage.db import Database
from storage.models import FaqArticle, FaqStats
from storage.repos.counters import next_number
from storage.repos.faq import FaqArticles


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
