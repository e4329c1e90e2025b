"""`classify --retrain`: refit the severity model and the FAQ's "no good answer" gate.

The severity model learns from the bundled corpus (bot/data/severity-dev.jsonl, our own
examples in bot/data/severity-examples.jsonl) plus, with `--config`, the severities staff
set by hand (`/sev`, the card's buttons: `classify --export-corrections`); the gate from
the bundled development KB and queries plus our own (bot/data/faq-*.jsonl), and our own KB
with its queries (bot/data/faq-kb-own.yaml, faq-own.jsonl). Both are
written as data (bot/data/severity-model.npz, kb/data/faq-gate.json, or into `--out`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bot.domain.enums import Severity
from bot.domain.severity import SeverityClassifier
from bot.domain.severity_model import (
    DATA,
    MODEL_FILE,
    Example,
    SeverityModel,
    fit_corpus,
    load_examples,
)
from kb.articles import load_articles
from kb.encoder import Encoder
from kb.semantic import (
    GATE_FEATURES,
    GATE_FILE,
    GATE_THRESHOLD,
    Gate,
    VectorCache,
    build_search,
    gate_examples,
)

FAQ_KB = DATA / "faq-kb-dev.yaml"
FAQ_QUERIES = (DATA / "faq-dev.jsonl", DATA / "faq-examples.jsonl")
OWN_KB, OWN_QUERIES = DATA / "faq-kb-own.yaml", (DATA / "faq-own.jsonl",)
# What the gate learns from: each KB with the queries written for it.
GATE_TRAINING = ((FAQ_KB, FAQ_QUERIES), (OWN_KB, OWN_QUERIES))


def load_queries(paths: Sequence[Path] = FAQ_QUERIES) -> list[tuple[str, str | None]]:
    queries = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                queries.append((record["q"], record["expect"]))
    return queries


# A level staff set by hand counts as this many bundled examples: it is the desk's own traffic,
# a handful against 300, and one correction alone rarely moves a neighbour's verdict.
CORRECTION_WEIGHT = 3


def fit_severity(encoder: Encoder, corrections: Sequence[Example] = ()) -> SeverityModel:
    rules = SeverityClassifier.from_files()
    cache = VectorCache(encoder)
    weighted = [example for example in corrections for _ in range(CORRECTION_WEIGHT)]
    return fit_corpus(rules, cache.vectors, [*load_examples(), *weighted])


def fit_gate(encoder: Encoder) -> Gate:
    cache = VectorCache(encoder)
    parts = [gate_examples(build_search(load_articles(kb), cache, _UNUSED_GATE),
                           load_queries(queries)) for kb, queries in GATE_TRAINING]
    x = np.vstack([features for features, _ in parts])
    right = np.concatenate([answered for _, answered in parts])
    return Gate.fit(x, right, GATE_THRESHOLD)


def gate_query_count() -> int:
    return sum(len(load_queries(queries)) for _, queries in GATE_TRAINING)


_UNUSED_GATE = Gate((0.0,) * len(GATE_FEATURES), (1.0,) * len(GATE_FEATURES),
                    (0.0,) * len(GATE_FEATURES), 0.0, 0.5)  # rank() ignores it


def retrain(encoder: Encoder, corrections: Sequence[dict[str, str]], out: Path | None) -> str:
    """Fit both models and write them; returns a line saying what was learnt from."""
    extra = [Example(r["text"], Severity(r["severity"])) for r in corrections]
    model = fit_severity(encoder, extra)
    gate = fit_gate(encoder)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    model.save(out / MODEL_FILE.name if out else MODEL_FILE)
    gate.save(out / GATE_FILE.name if out else GATE_FILE)
    return (f"severity: {len(load_examples()) + len(extra)} examples "
            f"({len(extra)} staff corrections); FAQ gate: {gate_query_count()} queries")
