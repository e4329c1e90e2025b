"""Shared fixtures: a fixed clock for pure logic; e2e fixtures live in tests/e2e/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.services.reports.render import pdf_available

ROOT = Path(__file__).resolve().parents[1]
# The act's files as this machine makes them: the PDF first where WeasyPrint and Pango load
# (.ci/run installs Pango; without it the bot sends HTML and CSV, and so do these tests).
ACT_FORMATS = ("pdf", "html", "csv") if pdf_available() else ("html", "csv")
SHARED_EVAL = Path(os.environ.get("FRONTDESK_EVAL", ROOT.parent / "shared" / "eval"))


@pytest.fixture
def eval_dir() -> Path:
    if not SHARED_EVAL.is_dir():
        pytest.skip(f"no eval data at {SHARED_EVAL}")
    return SHARED_EVAL
