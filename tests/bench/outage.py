"""Mass outage: thousands of clients write within a minute. Does every one get a number, fast?

    .venv/bin/python tests/bench/outage.py                       # 5,000 clients in 60 s
    .venv/bin/python tests/bench/outage.py --clients 1000 --seconds 20
    .venv/bin/python tests/bench/outage.py --quick               # a smoke run
    .venv/bin/python tests/bench/outage.py --postgres --workers 3  # SQLite and PostgreSQL
    .venv/bin/python tests/bench/outage.py --noise               # quiet, then a busy core

With --noise the outage runs twice, quiet and then with a co-tenant: a process that keeps
one core busy (a Python busy loop) from before the bot starts to the end of the run; the
two columns are printed side by side, with the load average at the end of each run.

With --postgres the same outage runs twice, first as above, then on PostgreSQL
(FRONTDESK_TEST_POSTGRES or --postgres-url; a fresh database each time) with
`python -m bot run --workers N` in webhook mode, the emulator posting updates to
the workers' shared port over several connections at once; the figures are printed
side by side. Peak RSS is then the largest of the workers'.

The real bot runs as a subprocess (`python -m bot run --config <tmp>`, SQLite in a
temporary folder) against the Telegram emulator in this process. Clients' first
messages are queued at a steady rate over `--seconds`; the emulator enforces
Telegram's limits on sends (30/s, 1/s per chat, 20/min per group) and answers 429
beyond them, while the bot keeps its configured limits (defaults: 25/s, 1/s, 20/min).

Measured:
  registration   per update, from the moment it was queued at the emulator to the
                 moment the bot committed its handling (inbox.handled_at: the incident,
                 its number and the confirmation row exist; since the inbox's claim the
                 stamp is taken as that transaction begins its handling, a few ms before
                 its commit). Target p99 < 1 s.
  peak RSS       the bot process's high-water mark (VmHWM). Target < 300 MB.
  delivery       all confirmations: time from the first to the last, and the send rate
                 while there was a backlog, against the configured global limit.
                 Target >= 95 % of it, and zero 429s provoked.
Also reported: what is left for the staff group (topic + card per incident at 20/min).

A run whose updates are not all handled (or confirmations not all delivered) in time is
cut short, not aborted: the figures of what was done by then are printed, marked as such,
and the bench exits non-zero, so a slow or busy machine still says where it stands.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bot.sandbox.emulator import SEND_METHODS, FakeTelegram  # noqa: E402

TOKEN = "123456:BENCH-TOKEN"
STAFF_CHAT = -1001000
STAFF = 7001
FIRST_CLIENT = 1_000_000
TELEGRAM = {"global_per_second": 30, "per_chat_per_second": 1, "per_group_per_minute": 20}
MESSAGES = [
    "Не работает интернет",
    "Нет связи с утра, весь офис без интернета",
    "Интернет пропал, роутер мигает красным",
    "No internet since 9am, please help",
    "Очень медленно грузятся страницы, потом совсем пропало",
]


@dataclass
class Report:
    load: str  # the load average (1, 5, 15 min) at the end of the run
    clients: int
    seconds: float
    global_limit: float
    register_all: float  # first queued -> last handled
    latency_p50: float
    latency_p99: float
    latency_max: float
    peak_rss_mb: float
    deliver_all: float  # first confirmation -> last confirmation
    delivered: int
    backlog_rate: float  # sends per second while confirmations were queued
    provoked_429: int
    staff_pending: int
    registered: int = -1  # updates handled; -1: all of them (the run finished)
    missing: str = ""  # what did not happen in time, when the run was cut short

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def arrival_rate(self) -> float:
        return self.clients / self.seconds if self.seconds else float("inf")


def _config(folder: Path, tg: FakeTelegram, global_limit: float,
            postgres: str | None = None) -> Path:
    path = folder / "config.toml"
    webhook = ""
    if postgres:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        webhook = f"""mode = "webhook"
webhook_url = "http://127.0.0.1:{port}/telegram"
port = {port}
secret_token = "bench-secret-0123456789"
"""
    url = postgres or f"sqlite+aiosqlite:///{folder / 'frontdesk.db'}"
    path.write_text(
        f"""
[telegram]
token = "{TOKEN}"
api_base = "{tg.base_url}"
staff_chat_id = {STAFF_CHAT}
staff_forum = true
poll_timeout = 1
request_timeout = 10
{webhook}
[database]
url = "{url}"

[delivery]
global_per_second = {global_limit}
""",
        encoding="utf-8",
    )
    return path


class _Store:
    """The bench's view of the bot's database: the SQLite file, or a PostgreSQL database
    of its own (created here, dropped at the end)."""

    def __init__(self, folder: Path, server: str | None) -> None:
        self.file = folder / "frontdesk.db"
        self.server = server
        self.url: str | None = None
        self._engine: Any = None

    async def __aenter__(self) -> _Store:
        if self.server:
            from sqlalchemy import text
            from sqlalchemy.engine import make_url
            from sqlalchemy.ext.asyncio import create_async_engine

            self.name = f"frontdesk_bench_{os.getpid()}_{int(time.time())}"
            admin = create_async_engine(self.server, isolation_level="AUTOCOMMIT")
            async with admin.connect() as connection:
                await connection.execute(text(f'CREATE DATABASE "{self.name}"'))
            await admin.dispose()
            self.url = make_url(self.server).set(database=self.name).render_as_string(
                hide_password=False)
            self._engine = create_async_engine(self.url)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._engine is not None:
            from sqlalchemy import text
            from sqlalchemy.ext.asyncio import create_async_engine

            await self._engine.dispose()
            admin = create_async_engine(self.server or "", isolation_level="AUTOCOMMIT")
            async with admin.connect() as connection:
                await connection.execute(
                    text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            await admin.dispose()

    async def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self._engine is None:
            return _query(self.file, sql)
        from sqlalchemy import text

        try:
            async with self._engine.connect() as connection:
                return [tuple(row) for row in await connection.execute(text(sql))]
        except Exception:  # no tables yet
            return []


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    connection = sqlite3.connect(db, timeout=30)
    try:
        return connection.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import psutil

        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except Exception:  # best effort on other systems
        return float("nan")


def _utc_seconds(value: object) -> float:
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _workers_of(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@asynccontextmanager
async def _co_tenant(busy: bool) -> AsyncIterator[None]:
    """With `busy`: another process keeping one core busy meanwhile (--noise)."""
    if not busy:
        yield
        return
    burner = await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass")
    try:
        yield
    finally:
        burner.kill()
        await burner.wait()


async def stop_bot(process: asyncio.subprocess.Process) -> None:
    """The bot stopped as an operator would (SIGTERM), killed if it takes over 30 s."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()


async def _wait(condition: object, timeout: float, what: str, every: float = 0.2) -> None:
    """Wait for a condition the run cannot go on without (the bot started)."""
    if not await _waited(condition, timeout, every):
        raise TimeoutError(what)


async def _waited(condition: object, timeout: float, every: float = 0.2) -> bool:
    """Whether the condition came true in time: a slow machine still gets its figures."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return True
        await asyncio.sleep(every)
    return False


async def run(
    clients: int, seconds: float, global_limit: float = 25.0, *, verbose: bool = False,
    postgres: str | None = None, workers: int = 1, noise: bool = False,
    patience: float = 120.0,
) -> Report:
    """`patience`: how long past the last arrival (plus `seconds` again) to wait for every
    update to be handled, and again for the confirmations, before the run is cut short."""
    folder = Path(tempfile.mkdtemp(prefix="frontdesk-outage-"))
    async with _Store(folder, postgres) as store, FakeTelegram(TOKEN) as tg, _co_tenant(noise):
        tg.add_group(STAFF_CHAT, "Поддержка", is_forum=True, members={STAFF: "administrator"})
        ids = [FIRST_CLIENT + i for i in range(clients)]
        for user_id in ids:
            tg.add_user(user_id, f"Клиент{user_id}", language_code="ru")
        tg.enforce_limits(**TELEGRAM)
        env = {k: v for k, v in os.environ.items() if k != "FRONTDESK_TELEGRAM_TOKEN"}
        log = (folder / "bot.log").open("wb")
        command = [sys.executable, "-m", "bot", "run", "--config",
                   str(_config(folder, tg, global_limit, store.url))]
        if store.url:
            command += ["--workers", str(workers)]
            tg.webhook_parallel = 4 * workers  # like Telegram: several connections at once
        process = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=env, stdout=log, stderr=log,
        )
        try:
            if store.url:  # every worker sets the webhook once it listens
                await _wait(lambda: len(tg.calls_to("setWebhook")) >= workers, 120,
                            "the workers did not start")
            else:
                await _wait(lambda: tg.calls_to("getUpdates"), 60, "the bot did not start polling")
            queued: dict[int, float] = {}
            start = time.monotonic()
            for index, user_id in enumerate(ids):
                due = start + seconds * index / clients
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
                update_id = tg.send_message(user_id, MESSAGES[index % len(MESSAGES)])
                queued[int(tg.pending_updates[-1]["update_id"])] = time.time()
                del update_id
            if verbose:
                print(f"queued {clients} in {time.monotonic() - start:.1f}s", file=sys.stderr)

            async def handled() -> bool:
                rows = await store.query(
                    "SELECT count(*) FROM inbox WHERE handled_at IS NOT NULL")
                return bool(rows) and rows[0][0] == clients

            def peak_rss() -> float:
                if not store.url:
                    return _peak_rss_mb(process.pid)
                # --workers 1 runs the bot in the process itself, without a supervisor
                pids = _workers_of(process.pid) if workers > 1 else [process.pid]
                return max([_peak_rss_mb(pid) for pid in pids] or [0.0])

            missing = ""
            cut_at = float("inf")  # what the bot does after a cut (a graceful stop) is not counted
            if not await _waited(handled, patience + seconds):
                missing = "not every update was handled in time"
                cut_at = time.time()
            rss = peak_rss()
            pending_to: set[int | str | None] = set(ids)
            scanned = 0

            def confirmed() -> bool:
                nonlocal scanned
                calls, scanned = tg.calls[scanned:], len(tg.calls)
                for call in calls:
                    if call.ok and call.method == "sendMessage":
                        pending_to.discard(call.chat_id)
                return not pending_to

            if not missing and not await _waited(
                    confirmed, patience + clients / global_limit * 1.5, 1.0):
                missing = "not every confirmation was delivered in time"
                cut_at = time.time()
            rss = max(rss, peak_rss())
        finally:
            await stop_bot(process)
            log.close()

        if verbose:
            for violation in tg.limit_violation_log[:10]:
                print("limit exceeded:", violation, file=sys.stderr)
        rows = await store.query("SELECT update_id, handled_at FROM inbox")
        handled_at = {int(u): at for u, h in rows
                      if h is not None and (at := _utc_seconds(h)) <= cut_at}
        # A run cut short measures the updates that were handled: those are real figures
        latencies = sorted(handled_at[u] - queued[u] for u in queued if u in handled_at)
        first_queued = min(queued.values())
        if verbose:  # where in the run the slow ones were: the worst per 5 s of arrivals
            buckets: dict[int, list[float]] = {}
            for u, at in queued.items():
                if u in handled_at:
                    buckets.setdefault(int((at - first_queued) // 5), []).append(
                        handled_at[u] - at)
            print("worst registration per 5 s of arrivals (s):", " ".join(
                f"{5 * b}:{max(v):.2f}" for b, v in sorted(buckets.items())), file=sys.stderr)
        client_ids = set(ids)
        calls = [c for c in tg.calls if c.wall <= cut_at]
        confirmations = sorted(
            c.time for c in calls
            if c.ok and c.method == "sendMessage" and c.chat_id in client_ids
        )
        sends = sorted(c.time for c in calls if c.ok and c.method in SEND_METHODS)
        # The backlog: from when the queue of confirmations formed (sends reached the
        # limit) to the last confirmation. With arrivals slower than the limit there is
        # none to speak of, and the rate is the arrival rate.
        nan = float("nan")
        window_start = confirmations[0] if confirmations else nan
        if clients / seconds > global_limit:
            window_start += 1.0
        last = confirmations[-1] if confirmations else nan
        window = [t for t in sends if window_start <= t <= last]
        span = last - window_start
        staff_pending = await store.query(
            f"SELECT count(*) FROM outbox WHERE status = 'pending' AND chat_id = {STAFF_CHAT}"
        )
        return Report(
            load=" ".join(f"{n:.2f}" for n in os.getloadavg()),
            clients=clients,
            seconds=seconds,
            global_limit=global_limit,
            register_all=max(handled_at.values()) - first_queued if handled_at else nan,
            latency_p50=statistics.median(latencies) if latencies else nan,
            latency_p99=(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
                         if latencies else nan),
            latency_max=latencies[-1] if latencies else nan,
            peak_rss_mb=rss,
            deliver_all=confirmations[-1] - confirmations[0] if confirmations else nan,
            delivered=len({c.chat_id for c in calls
                           if c.ok and c.method == "sendMessage" and c.chat_id in client_ids}),
            backlog_rate=len(window) / span if span > 0 else float("nan"),
            provoked_429=tg.limit_violations,
            staff_pending=int(staff_pending[0][0]) if staff_pending else 0,
            registered=len(latencies) if missing else -1,
            missing=missing,
        )


Row = tuple[str, str, str, str, "bool | None"]  # measure, value, target, ratio, verdict


def _rows(report: Report) -> list[Row]:
    r = report
    saturated = r.arrival_rate > r.global_limit
    rate_target = 0.95 * r.global_limit

    def row(name: str, value: str, target: str, ratio: str, ok: bool | None) -> Row:
        return name, value, target, ratio, ok

    registered = r.clients if r.registered < 0 else r.registered
    return [
        row("updates registered", f"{registered}/{r.clients}", "all",
            f"{registered / r.clients:.2f}", registered == r.clients),
        row("time to register all" if registered == r.clients else "time to register those",
            f"{r.register_all:.1f} s", "", "", None),
        row("registration latency p50", f"{r.latency_p50 * 1000:.0f} ms", "", "", None),
        row("registration latency p99", f"{r.latency_p99 * 1000:.0f} ms", "< 1000 ms",
            f"{r.latency_p99:.2f}", r.latency_p99 < 1.0),
        row("registration latency max", f"{r.latency_max * 1000:.0f} ms", "", "", None),
        row("peak RSS of the bot", f"{r.peak_rss_mb:.0f} MB", "< 300 MB",
            f"{r.peak_rss_mb / 300:.2f}", r.peak_rss_mb < 300),
        row("confirmations delivered", f"{r.delivered}/{r.clients}", "all",
            f"{r.delivered / r.clients:.2f}", r.delivered == r.clients),
        row("time to deliver all confirmations", f"{r.deliver_all:.1f} s",
            f"{r.clients / r.global_limit:.1f} s" if saturated else "", "", None),
        row("send rate during the backlog", f"{r.backlog_rate:.1f}/s",
            f">= {rate_target:.2f}/s" if saturated else "n/a",
            f"{r.backlog_rate / r.global_limit:.2f}" if saturated else "",
            r.backlog_rate >= rate_target if saturated else None),
        row("429s provoked (limits exceeded)", str(r.provoked_429), "0", "",
            r.provoked_429 == 0),
    ]


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "MISSED")


def _headline(r: Report) -> str:
    return (f"Outage: {r.clients} clients in {r.seconds:g} s ({r.arrival_rate:.1f}/s); bot "
            f"limits {r.global_limit:g}/s, 1/s per chat, 20/min per group; "
            "emulator enforces 30/s, 1/s, 20/min")


def render(report: Report) -> str:
    r = report
    saturated = r.arrival_rate > r.global_limit
    lines = [
        _headline(r),
        f"load average (1, 5, 15 min) at the end: {r.load}",
        *([f"CUT SHORT: {r.missing}; the figures are of what was done by then"]
          if r.missing else []),
        "",
        f"{'measure':<34} {'value':>14} {'target':>12} {'ratio':>9}",
        *(f"{name:<34} {value:>14} {target:>12} {ratio:>9}  {_verdict(ok)}"
          for name, value, target, ratio, ok in _rows(r)),
        "",
    ]
    if not saturated:
        lines.append("(arrivals were slower than the global limit: no delivery backlog formed, "
                     "so the rate target does not apply)")
    lines.append(
        f"staff group: {r.staff_pending} messages still queued (topic + card per incident at "
        f"20/min: {r.staff_pending / 20:.0f} min more)"
    )
    return "\n".join(lines)


def render_side_by_side(runs: list[tuple[str, Report]]) -> str:
    """The same measures of several runs (SQLite, PostgreSQL with N workers) in columns."""
    tables = [_rows(report) for _, report in runs]
    head = f"{'measure':<34}" + "".join(f" {label:>26}" for label, _ in runs) + f" {'target':>12}"
    lines = [_headline(runs[0][1]), *(
        f"CUT SHORT ({label}): {report.missing}; the figures are of what was done by then"
        for label, report in runs if report.missing), "", head]
    for index, (name, _, target, _, _) in enumerate(tables[0]):
        cells = "".join(f" {_cell(t[index]):>26}" for t in tables)
        lines.append(f"{name:<34}{cells} {target:>12}")
    lines.append("")
    lines.append("load average (1, 5, 15 min) at the end: " + "; ".join(
        f"{label} {report.load}" for label, report in runs))
    lines.append("staff group, messages still queued: " + ", ".join(
        f"{label} {report.staff_pending}" for label, report in runs))
    return "\n".join(lines)


def _cell(row: Row) -> str:
    """The value, its ratio to the target (when it has one) and the verdict."""
    _, value, _, ratio, ok = row
    return " ".join(part for part in (value, f"({ratio})" if ratio else "", _verdict(ok))
                    if part)


def _good(report: Report) -> bool:
    return (report.complete and report.latency_p99 < 1.0 and report.peak_rss_mb < 300
            and report.delivered == report.clients and report.provoked_429 == 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--global-limit", type=float, default=25.0,
                        help="the bot's [delivery] global_per_second")
    parser.add_argument("--quick", action="store_true", help="300 clients in 5 s")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--patience", type=float, default=120.0,
                        help="seconds past the last arrival to wait for every update to be "
                             "handled before the run is cut short (its figures printed)")
    parser.add_argument("--postgres", action="store_true",
                        help="also run on PostgreSQL with --workers webhook workers, side by side")
    parser.add_argument("--postgres-url", default=os.environ.get("FRONTDESK_TEST_POSTGRES", ""),
                        help="the server (default: $FRONTDESK_TEST_POSTGRES)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--noise", action="store_true",
                        help="run again with a co-tenant process keeping one core busy; both "
                             "columns side by side")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.seconds = 300, 5.0
    report = asyncio.run(run(args.clients, args.seconds, args.global_limit, verbose=args.verbose,
                             patience=args.patience))
    if args.noise:
        noisy = asyncio.run(run(args.clients, args.seconds, args.global_limit,
                                verbose=args.verbose, noise=True, patience=args.patience))
        print(render_side_by_side([("quiet", report), ("one core busy", noisy)]))
        return 0 if _good(report) and _good(noisy) else 1
    if not args.postgres:
        print(render(report))
        return 0 if _good(report) else 1
    if not args.postgres_url:
        parser.error("--postgres needs FRONTDESK_TEST_POSTGRES or --postgres-url "
                     "(.ci/services.sh prints it)")
    on_postgres = asyncio.run(run(args.clients, args.seconds, args.global_limit,
                                  verbose=args.verbose, postgres=args.postgres_url,
                                  workers=args.workers, patience=args.patience))
    print(render_side_by_side([("SQLite, 1 process", report),
                               (f"PostgreSQL, {args.workers} workers", on_postgres)]))
    return 0 if _good(report) and _good(on_postgres) else 1


if __name__ == "__main__":
    raise SystemExit(main())
