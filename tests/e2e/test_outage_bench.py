"""The outage bench runs end to end at a tiny scale (the real numbers: tests/bench/outage.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from outage import render, run


@pytest.mark.slow  # ~10-20 s: starts the bot process
async def test_outage_bench_smoke() -> None:
    report = await run(clients=40, seconds=2.0, global_limit=25.0)
    table = render(report)
    assert report.delivered == 40
    assert report.provoked_429 == 0
    assert "registration latency p99" in table and "peak RSS" in table
