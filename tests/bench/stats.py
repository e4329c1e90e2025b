"""/stats month over 100,000 incidents on SQLite: the time to answer.

    .venv/bin/python tests/bench/stats.py [--incidents 100000] [--runs 3]

Seeds a fresh SQLite file (WAL, migrated) with a bulk insert: 200 companies, 5,000
clients, N incidents with SLA verdicts, ratings with their agents, a quality check with
a delivery per client. Two spreads of the same N incidents:
  year   over the last 12 months (a desk's normal history: the month holds about 1/12)
  month  all of them in the current month (a mass outage: the worst case for `month`)
and times what /stats does after the handler's commit: the SQL aggregates (on a read
session), the text summary, the chart (matplotlib, off-screen, in a thread), the PNG file
and the outbox rows (a short transaction).
Target: < 1 s for `/stats month` (issue 15). The first run is cold (fresh connection, empty caches).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.app.container import Container
from bot.config import parse_config
from bot.domain.periods import parse_period
from bot.messaging.outbox import PRIORITY_REPLY
from bot.messaging.texts import Texts
from bot.services.reports.stats import compute_stats
from storage.db import Database
from storage.migrate import upgrade_async

TARGET_SECONDS = 1.0  # issue 15: `/stats month` over 100,000 incidents < 1 s
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
STAFF_CHAT = -100123
AGENTS = [(7000 + i, f"Агент {i}") for i in range(12)]
SEVERITIES = ("critical", "normal", "normal", "normal", "low", "low")


def stamp(moment: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite (naive text)."""
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def seed(path: Path, incidents: int, spread: str, rng: random.Random) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    created = stamp(NOW - timedelta(days=400))
    con.executemany(
        "INSERT INTO companies (id, name, invite_code, maintenance, source, created_at) "
        "VALUES (?, ?, ?, '[]', 'chat', ?)",
        [(i, f"Компания {i}", f"org-{i:06d}", created) for i in range(1, 201)])
    con.executemany(
        "INSERT INTO clients (id, user_id, chat_id, first_name, language, company, company_id,"
        " contact_asked, wants_new_ticket, created_at, last_seen_at)"
        " VALUES (?, ?, ?, ?, 'ru', ?, ?, 0, 0, ?, ?)",
        [(i, 100000 + i, 100000 + i, f"Клиент {i}", f"Компания {i % 200 + 1}",
          i % 200 + 1 if i % 10 else None, created, created) for i in range(1, 5001)])
    month_start = datetime(NOW.year, NOW.month, 1, tzinfo=UTC) - timedelta(hours=3)
    window = (NOW - month_start) if spread == "month" else timedelta(days=365)
    tickets: list[tuple[object, ...]] = []
    ratings: list[tuple[object, ...]] = []
    agents: list[tuple[object, ...]] = []
    for number in range(1, incidents + 1):
        opened = NOW - timedelta(seconds=rng.random() * window.total_seconds())
        severity = rng.choice(SEVERITIES)
        agent_id, agent_name = rng.choice(AGENTS)
        responded = opened + timedelta(minutes=rng.expovariate(1 / 90))
        resolved = responded + timedelta(hours=rng.expovariate(1 / 20))
        open_now = resolved > NOW or rng.random() < 0.03
        status = rng.choice(("new", "in_progress", "waiting")) if open_now else rng.choice(
            ("resolved", "closed", "closed"))
        faq = not open_now and rng.random() < 0.05
        tickets.append((
            number, number, rng.randint(1, 5000), status, severity, f"Инцидент {number}",
            agent_id, agent_name, 1 if rng.random() < 0.06 else 0,
            "faq" if faq else None, stamp(opened), stamp(opened),
            None if responded > NOW else stamp(responded),
            None if open_now else stamp(resolved), None if open_now else stamp(resolved),
            None if responded > NOW else rng.random() < 0.9,
            None if open_now else rng.random() < 0.8,
            None if open_now else int((resolved - opened).total_seconds() * 0.4),
        ))
        if not open_now and not faq and rng.random() < 0.4:
            ratings.append((len(ratings) + 1, number, tickets[-1][2],
                            rng.choice((5, 5, 5, 4, 4, 3, 2, 1)),
                            stamp(min(NOW, resolved + timedelta(hours=1)))))
            agents.append((len(ratings), agent_id, agent_name))
    con.executemany(
        "INSERT INTO tickets (id, number, client_id, status, severity, subject, assignee_id,"
        " assignee_name, reopen_count, resolution_kind, opened_at, updated_at,"
        " first_response_at, resolved_at, closed_at, first_response_met, resolution_met,"
        " resolution_seconds, severity_source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'auto')", tickets)
    con.executemany(
        "INSERT INTO ratings (id, ticket_id, client_id, state, score, counted, rated_at,"
        " question_open) VALUES (?, ?, ?, 'requested', ?, 1, ?, 0)", ratings)
    con.executemany("INSERT INTO rating_agents (rating_id, agent_id, agent_name) VALUES (?, ?, ?)",
                    agents)
    con.execute("INSERT INTO quality_campaigns (id, period, period_start, period_end, status,"
                " created_at) VALUES (1, '2025Q4', ?, ?, 'done', ?)",
                (stamp(NOW - timedelta(days=170)), stamp(NOW - timedelta(days=80)),
                 stamp(datetime(NOW.year, NOW.month, 2, 8, tzinfo=UTC))))
    con.executemany("INSERT INTO quality_deliveries (campaign_id, client_id, status, incidents,"
                    " closed, score) VALUES (1, ?, 'queued', 0, 0, ?)",
                    [(c, rng.choice((None, 5, 4, 3))) for c in range(1, 5001)])
    con.commit()
    con.execute("ANALYZE")
    con.close()


async def measure(url: str, runs: int, directory: Path) -> list[dict[str, float]]:
    """Each run: a fresh connection and the /stats path after the handler's commit
    (`ReportDesk.send_stats`: figures on a read session, chart in a thread, outbox rows), then,
    for the breakdown, the figures alone (`compute_stats`) once more."""
    config = parse_config({"telegram": {"token": "1:A", "staff_chat_id": STAFF_CHAT},
                           "database": {"url": url},
                           "reports": {"directory": str(directory)}})
    texts = Texts(config.desk.language, config.desk.timezone)
    period = parse_period("month", NOW, texts.zone)
    timings = []
    for _ in range(runs):
        db = Database(url)  # a fresh connection each run: the first query pays for it
        started = time.perf_counter()
        bot = Container.build(config, clock=lambda: NOW, db=db)
        async with db.transaction() as session:
            reports = bot.scope(session).reports
        stats = await reports.send_stats(period, NOW, chat_id=STAFF_CHAT, thread_id=None,
                                         priority=PRIORITY_REPLY)
        assert stats is not None, "/stats failed (the log says why)"
        total = time.perf_counter() - started
        async with db.transaction() as session:
            started = time.perf_counter()
            await compute_stats(session, period, NOW)
            figures = time.perf_counter() - started
        await db.dispose()
        timings.append({"total": total, "sql": figures, "opened": stats.opened_total,
                        "closed": stats.closed_total, "ratings": stats.ratings.total})
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"/stats month on SQLite, {args.incidents:,} incidents; target < {TARGET_SECONDS:.0f} s")
    worst = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for spread in ("year", "month"):
            path = Path(folder) / f"stats-{spread}.db"
            url = f"sqlite+aiosqlite:///{path}"
            asyncio.run(upgrade_async(url))
            started = time.perf_counter()
            seed(path, args.incidents, spread, random.Random(7))
            seeded = time.perf_counter() - started
            timings = asyncio.run(measure(url, args.runs, Path(folder) / "reports"))
            first, rest = timings[0], timings[1:] or timings
            median = statistics.median(t["total"] for t in rest)
            worst = max(worst, first["total"], median)
            print(f"  spread over {spread:<5}  seeded in {seeded:5.1f} s; the month has "
                  f"{first['opened']:,.0f} opened, {first['closed']:,.0f} closed, "
                  f"{first['ratings']:,.0f} ratings")
            print(f"    /stats month: cold {first['total']:.2f} s, warm median {median:.2f} s "
                  f"(of which the figures {statistics.median(t['sql'] for t in timings):.2f} s,"
                  f" the rest chart, text, file, outbox)   "
                  f"ratio to target {max(first['total'], median) / TARGET_SECONDS:.2f}")
    verdict = "OK" if worst < TARGET_SECONDS else "TOO SLOW"
    print(f"worst {worst:.2f} s = {worst / TARGET_SECONDS:.2f} of the {TARGET_SECONDS:.0f} s "
          f"target: {verdict}")
    return 0 if worst < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
