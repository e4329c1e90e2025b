"""`classify --json`: one message per input line -> one JSON line with its severity.

`classify --export-corrections`: the severities staff set by hand (`/sev`, the card's
buttons), as labelled examples in the eval format `{"text": ..., "severity": ...}` —
the first message of the incident and the level staff chose last — so a desk can
measure the classifier on its own traffic (tests/bench/severity_eval.py FILE).
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import ConfigError, DatabaseConfig, SeverityConfig
from bot.domain.severity import SeverityClassifier, SeverityVocabularyError
from storage.repos.events import TicketEvents
from storage.repos.tickets import TicketMessages


def _config_sections(path: Path) -> dict[str, Any]:
    """The parts of a config file these commands need (no token required)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return data


def _section(path: Path, data: dict[str, Any], name: str, model: type[Any]) -> Any:
    try:
        return model.model_validate(data.get(name, {}))
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in (name, *error["loc"]))
        raise ConfigError(f"{path}: [{key}] {error['msg']}") from None


def vocabulary_paths(config_path: Path | None) -> list[Path]:
    """`[severity] vocabulary` of a config file, relative to the file."""
    if config_path is None:
        return []
    severity: SeverityConfig = _section(
        config_path, _config_sections(config_path), "severity", SeverityConfig
    )
    return [p if p.is_absolute() else config_path.parent / p for p in severity.vocabulary]


def classify_command(
    stdin: TextIO, stdout: TextIO, extra_vocab: list[Path], config_path: Path | None = None
) -> int:
    """Print `{"text": ..., "severity": ...}` per non-empty line; returns the exit code."""
    paths = [*vocabulary_paths(config_path), *extra_vocab]
    try:
        classifier = SeverityClassifier.from_files(*paths)
    except SeverityVocabularyError as error:
        raise ConfigError(f"[severity.vocabulary] {error}") from None
    for line in stdin:
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        record = {"text": text, "severity": str(classifier.classify(text))}
        stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        stdout.flush()
    return 0


async def staff_corrections(session: AsyncSession) -> list[dict[str, str]]:
    """Per incident whose severity staff changed: its first client text and the last level."""
    levels = await TicketEvents(session).severities_set_by_staff()
    if not levels:
        return []
    first = await TicketMessages(session).first_texts_from_client(levels)
    return [
        {"text": first[ticket_id], "severity": levels[ticket_id]}
        for ticket_id in sorted(levels)
        if first.get(ticket_id, "").strip()
    ]


async def _export(url: str) -> list[dict[str, str]]:
    from storage.db import Database

    db = Database(url)
    try:
        async with db.transaction() as session:
            return await staff_corrections(session)
    finally:
        await db.dispose()


def write_jsonl(records: Iterable[dict[str, str]], out: TextIO) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def export_corrections_command(config_path: Path, out_path: Path | None, stdout: TextIO) -> int:
    database: DatabaseConfig = _section(
        config_path, _config_sections(config_path), "database", DatabaseConfig
    )
    records = asyncio.run(_export(database.url))
    if out_path is None:
        write_jsonl(records, stdout)
        return 0
    with out_path.open("w", encoding="utf-8") as out:
        write_jsonl(records, out)
    return 0
