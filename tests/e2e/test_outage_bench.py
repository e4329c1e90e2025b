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


def test_a_run_cut_short_still_prints_its_figures() -> None:
    """A slow machine: 70 of 1,000 updates handled when the bench stopped waiting. The
    figures of those 70 are printed, marked as cut short, and the run is not good."""
    from outage import Report, _good

    report = Report(
        load="5.9 2.6 1.0", clients=1000, seconds=2.0, global_limit=25.0, register_all=3.7,
        latency_p50=2.3, latency_p99=3.6, latency_max=3.6, peak_rss_mb=250.0,
        deliver_all=2.6, delivered=33, backlog_rate=16.5, provoked_429=0, staff_pending=59,
        registered=70, missing="not every update was handled in time",
    )
    table = render(report)
    assert "CUT SHORT: not every update was handled in time" in table
    assert "70/1000" in table and "3600 ms" in table and "250 MB" in table
    assert not _good(report)
