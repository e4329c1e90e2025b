"""FAQ articles written in chat, every article's counters, and the suggestions made."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import FaqArticle, FaqStats, FaqSuggestion


class FaqArticles:
    """Articles of the database and the counters of all articles (files' ones too).

    New rows are written with the session's next flush: `kb import` and the start-up add
    them by the hundred."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self) -> Sequence[FaqArticle]:
        """Every article of the database, by id."""
        return (await self.session.scalars(select(FaqArticle).order_by(FaqArticle.id))).all()

    async def get(self, article_id: str) -> FaqArticle | None:
        return await self.session.get(FaqArticle, article_id)

    def add(self, article: FaqArticle) -> FaqArticle:
        self.session.add(article)
        return article

    async def delete(self, article_id: str) -> None:
        """The article and its counters."""
        await self.session.execute(delete(FaqArticle).where(FaqArticle.id == article_id))
        await self.session.execute(delete(FaqStats).where(FaqStats.article_id == article_id))

    async def all_stats(self) -> dict[str, FaqStats]:
        """The counters of every article, by article id."""
        return {s.article_id: s for s in await self.session.scalars(select(FaqStats))}

    async def stats_of(self, article_id: str) -> FaqStats | None:
        return await self.session.get(FaqStats, article_id)

    def add_stats(self, stats: FaqStats) -> FaqStats:
        self.session.add(stats)
        return stats


class FaqSuggestions:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, suggestion_id: int) -> FaqSuggestion | None:
        return await self.session.get(FaqSuggestion, suggestion_id)

    async def add(self, suggestion: FaqSuggestion) -> FaqSuggestion:
        self.session.add(suggestion)
        await self.session.flush()
        return suggestion
