"""`classify --json`: one message per input line -> one JSON line with its severity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from bot.severity import SeverityClassifier


def classify_command(stdin: TextIO, stdout: TextIO, extra_vocab: list[Path]) -> int:
    """Print `{"text": ..., "severity": ...}` per non-empty line; returns the exit code."""
    classifier = SeverityClassifier.from_files(*extra_vocab)
    for line in stdin:
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        record = {"text": text, "severity": str(classifier.classify(text))}
        stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        stdout.flush()
    return 0
