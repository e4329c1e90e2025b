"""No handler makes a button's answer (a Telegram round trip) inside the update's
transaction: it is queued in `after_commit` and made after the commit
(bot/messaging/after_commit.py)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AWAITED_ANSWER = re.compile(r"await\s+[\w.]*\.answer\(")


def test_no_handler_awaits_a_button_answer() -> None:
    found = [f"{path.relative_to(ROOT)}:{number}"
             for path in sorted((ROOT / "handlers").rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if AWAITED_ANSWER.search(line)]
    assert found == [], "queue it in after_commit instead: " + ", ".join(found)
