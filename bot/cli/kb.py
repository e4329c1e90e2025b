"""`python -m bot kb import PATH` / `kb export PATH`: articles between files and the database.

Import adds new articles and updates those with the same id (their counters are
kept); export writes the database's articles to one YAML file in the format the
KB loader reads, so an import of an export changes nothing.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bot.config import Config
from bot.domain.clock import utc_now
from bot.services.faq import FaqService
from bot.services.faq_files import export_articles, import_articles
from kb.articles import dump_articles, load_articles
from storage.db import Database
from storage.migrate import upgrade_async


async def _with_db(config: Config) -> Database:
    await upgrade_async(config.database.url)
    return Database(config.database.url)


async def _import(config: Config, path: Path) -> tuple[int, int]:
    db = await _with_db(config)
    try:
        return await import_articles(db, path, utc_now)
    finally:
        await db.dispose()


def _clash_note(config: Config, path: Path) -> str | None:
    """Ids must be unique across files and database: say so when the import made a clash."""
    if config.kb.path is None or not config.kb.path.exists():
        return None
    clash = sorted({a.id for a in load_articles(path)}
                   & {a.id for a in load_articles(config.kb.path)})
    if not clash:
        return None
    if config.kb.path.resolve() == path.resolve():
        return (f"note: the articles are now in the database; take {path} out of [kb] path "
                "(ids must be unique across files and database)")
    return (f"note: {len(clash)} of these ids are also in {config.kb.path} ([kb] path): "
            f"{', '.join(clash[:5])}; ids must be unique, remove them from the files "
            "before the bot starts")


async def _export(config: Config, path: Path, *, drafts: bool, with_files: bool) -> int:
    db = await _with_db(config)
    try:
        articles = await export_articles(db, drafts=drafts)
        if with_files:
            faq = FaqService(config.kb, utc_now)
            faq.load_files()
            await faq.load(db)  # file articles with the phrasings learned in chat
            files = [faq.article(i) for i in sorted(faq.file_articles)]
            articles = sorted([*articles, *(a for a in files if a)], key=lambda a: a.id)
    finally:
        await db.dispose()
    dump_articles(articles, path)
    print(f"exported {len(articles)} articles to {path}")
    return 0


def import_command(config: Config, path: Path) -> int:
    # A broken file (or an image outside the KB folders) fails (KBError) before the
    # database is touched. Without [kb] path the file's own folder is the bound.
    roots = FaqService(config.kb, utc_now).image_roots or [path if path.is_dir() else path.parent]
    load_articles(path, roots)
    added, updated = asyncio.run(_import(config, path))
    print(f"imported {added + updated} articles from {path}: {added} new, {updated} updated")
    note = _clash_note(config, path)
    if note:
        print(note, file=sys.stderr)
    return 0


def export_command(config: Config, path: Path, *, drafts: bool = False,
                   with_files: bool = False) -> int:
    return asyncio.run(_export(config, path, drafts=drafts, with_files=with_files))
