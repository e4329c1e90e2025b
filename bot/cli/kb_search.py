"""The ``kb search`` command: FAQ search over stdin, one JSON line per query.

Wired into ``python -m bot kb search --kb PATH --json`` by the bot CLI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from kb.articles import KBError, load_articles
from kb.index import SearchIndex


def search_command(kb_path: Path, stdin: TextIO, stdout: TextIO, limit: int = 3) -> int:
    """Read queries one per line from ``stdin`` and print
    ``{"q": ..., "results": [{"id": ..., "score": ...}, ...]}`` per query, best
    first, results empty when nothing is good enough. Every input line gets an
    output line (a blank one gets no results), so callers can pair them.
    Returns the exit code: 0, or 2 when the KB cannot be loaded."""
    try:
        index = SearchIndex(load_articles(kb_path))
    except KBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in stdin:
        query = line.rstrip("\r\n")
        results = [{"id": hit.id, "score": hit.score} for hit in index.search(query, limit)]
        stdout.write(json.dumps({"q": query, "results": results}, ensure_ascii=False) + "\n")
        stdout.flush()
    return 0
