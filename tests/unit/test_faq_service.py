"""FaqService: the index follows committed changes only, also those of another process,
big indexes are searched in a thread, ids are unique across files and database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app.container import Container
from bot.config import parse_config
from bot.services.faq import slug_for
from bot.services.faq_desk import FaqDesk
from bot.services.faq_files import import_articles
from kb.articles import KBError
from storage.db import Database
from storage.migrate import upgrade_async
from storage.models import FaqArticle

KB = Path(__file__).parents[1] / "data" / "kb"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> Database:
    url = f"sqlite+aiosqlite:///{tmp_path / 'faq.db'}"
    await upgrade_async(url)
    return Database(url)


async def worker(db: Database, **kb: object) -> Container:
    """A process of the bot, its FAQ loaded as at start-up."""
    config = parse_config({"telegram": {"token": "1:x", "staff_chat_id": -1},
                           "kb": {"path": str(KB), **kb}})
    container = Container.build(config, clock=lambda: NOW, db=db)
    await container.faq.load(db)
    return container


async def faq_desk(bot: Container, session: AsyncSession) -> FaqDesk:
    """The FAQ of an update (caught up with other workers' changes first)."""
    return (await bot.update_scope(session)).faq


async def test_changes_reach_the_index_after_commit_only(db: Database) -> None:
    bot = await worker(db)
    faq = bot.faq
    question = "Как заказать новый картридж для принтера"
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await (await faq_desk(bot, session)).save(
                article_id=None, question=question, alt=[], answer="Напишите завхозу.",
                image=None, author=1)
            raise RuntimeError("rolled back")
    assert await faq.search(question) == []
    async with db.transaction() as session:
        article = await (await faq_desk(bot, session)).save(
            article_id=None, question=question, alt=[], answer="Напишите завхозу.",
            image=None, author=1)
    assert [h.id for h in await faq.search(question)][:1] == [article.id]
    await db.dispose()


async def test_a_change_by_another_worker_is_seen_by_the_next_update(
    db: Database, tmp_path: Path
) -> None:
    here, there = await worker(db), await worker(db)
    question = "Как заказать новый картридж для принтера"
    async with db.transaction() as session:
        article = await (await faq_desk(there, session)).save(
            article_id=None, question=question, alt=[], answer="Напишите завхозу.",
            image=None, author=1)
    assert [h.id for h in await there.faq.search(question)][:1] == [article.id]
    assert article.id not in [h.id for h in await here.faq.search(question)]
    async with db.transaction() as session:
        await faq_desk(here, session)  # what the next update does first
    assert [h.id for h in await here.faq.search(question)][:1] == [article.id]
    revision = here.faq.revision
    async with db.transaction() as session:  # nothing changed since: no reload
        await faq_desk(here, session)
    assert here.faq.revision == revision == there.faq.revision

    # `kb import` from the command line, while the bot runs.
    imported = tmp_path / "more.yaml"
    imported.write_text(
        "- id: scanner-jam\n  lang: ru\n  question: Сканер зажевал бумагу\n"
        "  answer: Откройте крышку и выньте лист.\n", encoding="utf-8")
    await import_articles(db, imported, lambda: NOW)
    async with db.transaction() as session:
        await faq_desk(here, session)
    assert here.faq.article("scanner-jam") is not None
    await db.dispose()


async def test_big_indexes_are_searched_in_a_thread(db: Database) -> None:
    faq = (await worker(db, thread_above=1)).faq
    threads: list[str] = []
    search = faq.index.search

    def spy(query: str, limit: int = 3, *, min_score: float | None = None):
        threads.append(threading.current_thread().name)
        return search(query, limit, min_score=min_score)

    faq.index.search = spy  # type: ignore[method-assign]
    hits = await faq.search("принтер не печатает, висит очередь")
    assert hits and hits[0].id == "printer-queue"
    assert threads and threads[0] != threading.main_thread().name
    await db.dispose()


async def test_an_id_in_both_a_file_and_the_database_stops_start_up(db: Database) -> None:
    async with db.transaction() as session:
        session.add(FaqArticle(id="vpn-home", lang="ru", question="q", alt=[], answer="a",
                               tags=[], draft=False, created_at=NOW))
    with pytest.raises(KBError, match=r"vpn-home.*'id'"):
        await worker(db)
    await db.dispose()


def test_article_ids_are_readable_slugs() -> None:
    assert slug_for("Не работает VPN!") == "ne-rabotaet-vpn"
    assert slug_for("???") == "article"
