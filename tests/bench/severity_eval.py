"""Severity classifier on a labelled JSONL set: accuracy, per-class numbers, timing.

.venv/bin/python tests/bench/severity_eval.py [path] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.domain.enums import Severity
from bot.domain.severity import SeverityClassifier

EVAL_RELATIVE = Path("shared/eval/severity-dev.jsonl")


def default_path() -> Path:
    beside_checkout = Path(__file__).resolve().parents[3] / EVAL_RELATIVE
    return beside_checkout if beside_checkout.exists() else Path("..") / EVAL_RELATIVE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true", help="print the misclassified lines")
    args = parser.parse_args(argv)
    path: Path = args.path or default_path()

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    classifier = SeverityClassifier.from_files()
    classifier.classify("прогрев")  # load lazily built parts before timing
    labels = list(Severity)
    confusion = {(gold, got): 0 for gold in labels for got in labels}
    timings, misses = [], []
    for row in rows:
        started = time.perf_counter()
        got = classifier.classify(row["text"])
        timings.append(time.perf_counter() - started)
        gold = Severity(row["severity"])
        confusion[gold, got] += 1
        if got != gold:
            misses.append((gold, got, row["text"]))

    correct = sum(confusion[label, label] for label in labels)
    print(f"{path}: {len(rows)} messages")
    print(f"accuracy {correct / len(rows):.3f}")
    for label in labels:
        predicted = sum(confusion[gold, label] for gold in labels)
        actual = sum(confusion[label, got] for got in labels)
        precision = confusion[label, label] / predicted if predicted else 0.0
        recall = confusion[label, label] / actual if actual else 0.0
        print(f"  {label:<9} precision {precision:.3f}  recall {recall:.3f}  (n={actual})")
    critical = Severity.CRITICAL
    actual_critical = sum(confusion[critical, got] for got in labels)
    if actual_critical:
        print(f"critical recall {confusion[critical, critical] / actual_critical:.3f}")
    print("confusion (rows: gold, columns: predicted)")
    print("          " + "".join(f"{label:>10}" for label in labels))
    for gold in labels:
        print(f"{gold:<10}" + "".join(f"{confusion[gold, got]:>10}" for got in labels))
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    print(
        f"time per message: median {statistics.median(timings) * 1e3:.3f} ms, "
        f"p95 {p95 * 1e3:.3f} ms (first pass, cold caches)"
    )
    if args.verbose:
        for gold, got, text in misses:
            print(f"gold {gold:<8} got {got:<8} {text}")
            print(f"    {classifier.explain(text)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
