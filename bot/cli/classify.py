"""`classify --json`: one message per input line -> one JSON line with its severity.

`classify --explain`: the same with why -- the rule that fired or the model's shares of
critical / normal / low, the cues seen, and the nearest labelled examples of the corpus.
`classify --retrain`: refit the models (bot/cli/retrain.py), staff's overrides included
when `--config` names the desk's database.

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

import numpy as np
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli.retrain import retrain
from bot.config import ConfigError, DatabaseConfig, SeverityConfig, beside
from bot.domain.severity import SeverityClassifier, SeverityVocabularyError
from bot.domain.severity_model import SemanticSeverity, SeverityModel, load_examples
from kb.encoder import DIMENSION, encoder, unavailable_reason
from kb.semantic import VectorCache
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
    return [beside(config_path, path) for path in severity.vocabulary]


def classify_command(
    stdin: TextIO, stdout: TextIO, extra_vocab: list[Path], config_path: Path | None = None,
    *, explain: bool = False,
) -> int:
    """Print `{"text": ..., "severity": ...}` per non-empty line; returns the exit code."""
    paths = [*vocabulary_paths(config_path), *extra_vocab]
    try:
        rules = SeverityClassifier.from_files(*paths)
    except SeverityVocabularyError as error:
        raise ConfigError(f"[severity.vocabulary] {error}") from None
    model = encoder()
    cache = VectorCache(model) if model is not None else None
    classifier = SemanticSeverity(rules, SeverityModel.load(),
                                  cache.vectors if cache is not None else None)
    examples = load_examples() if explain else []
    example_vectors = (cache.vectors([e.text for e in examples]) if cache is not None
                       else np.zeros((0, DIMENSION), dtype=np.float32))
    for line in stdin:
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        record: dict[str, Any] = {"text": text, "severity": str(classifier.classify(text))}
        if explain:
            why = classifier.explain_fully(text, examples, example_vectors)
            record.update(
                rule=why.verdict.rule,
                cues=[{"kind": c.kind, "words": c.words} for c in why.verdict.cues],
                model="on" if cache is not None else f"off: {unavailable_reason()}",
                shares={str(k): round(v, 3) for k, v in why.probabilities.items()},
                nearest=[{"text": n.text, "severity": str(n.severity),
                          "similarity": round(n.similarity, 3)} for n in why.neighbours],
            )
        stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        stdout.flush()
    return 0


def retrain_command(config_path: Path | None, out: Path | None, stdout: TextIO) -> int:
    model = encoder()
    if model is None:
        raise ConfigError(f"the sentence model is needed to retrain: {unavailable_reason()}")
    corrections: list[dict[str, str]] = []
    if config_path is not None:
        sections = _config_sections(config_path)
        database: DatabaseConfig = _section(config_path, sections, "database", DatabaseConfig)
        corrections = asyncio.run(_export(database.url))
        severity: SeverityConfig = _section(config_path, sections, "severity", SeverityConfig)
        if out is None and severity.models is not None:  # where the bot will load it from
            out = beside(config_path, severity.models)
    stdout.write(retrain(model, corrections, out) + "\n")
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
