"""Severity: the shipped classifier (sentence model + safe rules) next to the rules alone.

.venv/bin/python tests/bench/severity_eval.py [path] [--verbose]

Prints, side by side:
  development  10-fold cross-validation on the training corpus (bot/data/severity-*.jsonl:
               the development messages and our own examples), the model refitted on
               nine folds and scored on the tenth; also split into its two parts
  path         the shipped model (bot/data/severity-model.npz) on a labelled JSONL file
               (default: the development set beside the checkout), and the rule classifier
               alone on it (the lexical baseline), with both confusion matrices
and the time per message (single and batched by 32).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.domain.enums import Severity
from bot.domain.severity import SeverityClassifier
from bot.domain.severity_model import (
    CORPUS,
    LABELS,
    SemanticSeverity,
    SeverityModel,
    cue_kinds,
    features,
    fit,
    load_examples,
    security_rule_fires,
)
from kb.encoder import encoder
from kb.semantic import VectorCache

EVAL_RELATIVE = Path("shared/eval/severity-dev.jsonl")
FOLDS = 10


def default_path() -> Path:
    beside_checkout = Path(__file__).resolve().parents[3] / EVAL_RELATIVE
    return beside_checkout if beside_checkout.exists() else Path("..") / EVAL_RELATIVE


Confusion = dict[tuple[Severity, Severity], int]


def confusion_of(gold: Sequence[Severity], got: Sequence[Severity]) -> Confusion:
    table = {(g, p): 0 for g in LABELS for p in LABELS}
    for g, p in zip(gold, got, strict=True):
        table[g, p] += 1
    return table


def summary(name: str, table: Confusion) -> str:
    total = sum(table.values())
    right = sum(table[label, label] for label in LABELS)
    c = Severity.CRITICAL
    actual = sum(table[c, p] for p in LABELS)
    predicted = sum(table[g, c] for g in LABELS)
    recall = table[c, c] / actual if actual else 0.0
    precision = table[c, c] / predicted if predicted else 0.0
    return (f"{name:<56} {total:>4} {right / total:>8.3f} {recall:>9.3f} {precision:>10.3f}")


def print_confusion(name: str, table: Confusion) -> None:
    print(f"\n{name}: confusion (rows: gold, columns: predicted)")
    print("          " + "".join(f"{label:>10}" for label in LABELS))
    for gold in LABELS:
        print(f"{gold:<10}" + "".join(f"{table[gold, got]:>10}" for got in LABELS))


def cross_validated(rules: SeverityClassifier, cache: VectorCache) -> list[Severity]:
    """The model refitted on nine folds, the tenth decided as shipped (safe rules first)."""
    examples = load_examples()
    verdicts = [rules.explain(e.text) for e in examples]
    kinds = [cue_kinds(rules, e.text, v) for e, v in zip(examples, verdicts, strict=True)]
    x = features(cache.vectors([e.text for e in examples]), kinds, 1.0)
    labels = [e.severity for e in examples]
    order = np.random.default_rng(0).permutation(len(examples))
    got: list[Severity] = [Severity.NORMAL] * len(examples)
    for fold in np.array_split(order, FOLDS):
        train = np.setdiff1d(order, fold)
        model = fit(x[train], [labels[i] for i in train])
        for i, severity in zip(fold, model.decide(model.probabilities(x[fold])), strict=True):
            got[i] = Severity.CRITICAL if security_rule_fires(verdicts[i], kinds[i]) else severity
    return got


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true", help="print the misclassified lines")
    args = parser.parse_args(argv)
    path: Path = args.path or default_path()
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    texts = [row["text"] for row in rows]
    gold = [Severity(row["severity"]) for row in rows]

    model_encoder = encoder()
    if model_encoder is None:
        print("the sentence model is not available: only the rules are measured")
    rules = SeverityClassifier.from_files()
    print(f"{'':<56} {'n':>4} {'accuracy':>8} {'crit.rec':>9} {'crit.prec':>10}")
    if model_encoder is not None:
        cache = VectorCache(model_encoder)
        examples = load_examples()
        corpus_gold = [e.severity for e in examples]
        cv = cross_validated(rules, cache)
        ends = np.cumsum([len(load_examples([p])) for p in CORPUS]).tolist()
        parts = [slice(start, end) for start, end in zip([0, *ends], ends, strict=False)]
        print(summary(f"development, {FOLDS}-fold CV, whole corpus",
                      confusion_of(corpus_gold, cv)))
        for part, corpus_path in zip(parts, CORPUS, strict=True):
            print(summary(f"  of which {corpus_path.name}",
                          confusion_of(corpus_gold[part], cv[part])))
        classifier = SemanticSeverity(rules, SeverityModel.load(), cache.vectors)
        got = classifier.classify_many(texts)
        shipped = confusion_of(gold, got)
        print(summary(f"{path.name}: shipped model + safe rules", shipped))
    baseline = confusion_of(gold, [rules.classify(text) for text in texts])
    print(summary(f"{path.name}: rules alone (lexical baseline)", baseline))
    if model_encoder is not None:
        print_confusion(f"{path.name}, shipped model", shipped)
    print_confusion(f"{path.name}, rules alone", baseline)

    if model_encoder is not None:
        fresh = SemanticSeverity(rules, SeverityModel.load(), model_encoder.encode)
        timings = []
        for text in texts[:100]:
            started = time.perf_counter()
            fresh.classify(text)
            timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        for start in range(0, len(texts), 32):
            fresh.classify_many(texts[start : start + 32])
        batched = (time.perf_counter() - started) / len(texts)
        print(f"\ntime per message, model: single {statistics.median(timings) * 1e3:.2f} ms "
              f"(median), batched by 32 {batched * 1e3:.2f} ms")
        if args.verbose:
            for text, g, p in zip(texts, gold, got, strict=True):
                if g != p:
                    print(f"gold {g:<8} got {p:<8} {text}\n    {classifier.explain(text).rule}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
