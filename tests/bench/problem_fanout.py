"""One problem, a thousand linked clients, one staff update: does it reach them all, at
the configured rate, without a single 429?

    .venv/bin/python tests/bench/problem_fanout.py                 # 1,000 clients
    .venv/bin/python tests/bench/problem_fanout.py --clients 200   # a smoke run

The real bot runs as a subprocess (`python -m bot run`, SQLite in a temporary folder)
against the Telegram emulator in this process, which enforces Telegram's limits (30/s,
1/s per chat, 20/min per group) and answers 429 beyond them; the bot keeps its configured
limits (25/s by default). The clients write first (each gets an incident and its
confirmation), staff make #1 a problem and link the others (`/link 2-N 1`), then write one
message in #1's topic. Measured from that message: every client's copy delivered, the
time from the first to the last, the send rate against the configured global limit
(target >= 95 %), and the 429s provoked (target 0). Then staff close the problem, which
closes every linked incident: the time until the last is closed in the database.

A client outside the problem writes right after the staff update and right after the
closing command: their registration's wait says how long the fan-out and the closing
held the desk (the write lock on SQLite). Not a target of its own; issue 15's bar is a
registration p99 < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bot.sandbox.emulator import SEND_METHODS, FakeTelegram  # noqa: E402
from tests.bench.outage import (  # noqa: E402
    STAFF,
    STAFF_CHAT,
    TELEGRAM,
    TOKEN,
    _config,
    _query,
    _wait,
    stop_bot,
)

FIRST_CLIENT = 2_000_000
PROBES = (1_999_998, 1_999_999)  # clients with an incident of their own, not linked
UPDATE = "Авария у провайдера: чиним магистраль, ориентир — 15:00"


@dataclass
class Report:
    clients: int
    global_limit: float
    delivered: int
    deliver_all: float  # the first copy of the update -> the last
    rate: float  # sends per second meanwhile
    provoked_429: int
    probe_during_update: float  # another client's registration, sent with the update
    close_all: float  # /problem close -> the last linked incident closed
    probe_during_close: float  # another client's registration, sent with the close


async def run(clients: int, global_limit: float) -> Report:
    folder = Path(tempfile.mkdtemp(prefix="frontdesk-fanout-"))
    db = folder / "frontdesk.db"
    async with FakeTelegram(TOKEN) as tg:
        tg.add_group(STAFF_CHAT, "Поддержка", is_forum=True, members={STAFF: "administrator"})
        ids = [FIRST_CLIENT + i for i in range(clients)]
        for index, user_id in enumerate(ids):
            tg.add_user(user_id, f"Клиент{user_id}", language_code="en" if index % 4 else "ru")
        for probe in PROBES:
            tg.add_user(probe, f"Проба{probe}", language_code="ru")
        tg.enforce_limits(**TELEGRAM)
        env = {k: v for k, v in os.environ.items() if k != "FRONTDESK_TELEGRAM_TOKEN"}
        log = (folder / "bot.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config",
            str(_config(folder, tg, global_limit)), cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            await _wait(lambda: tg.calls_to("getUpdates"), 60, "the bot did not start polling")
            for index, user_id in enumerate(ids):
                tg.send_message(user_id, f"Нет связи в офисе {index}")

            def told(text: str | None, scanned: list[int], waiting: set[int]) -> bool:
                for call in tg.calls[scanned[0]:]:
                    if (call.ok and call.method == "sendMessage" and call.chat_id in waiting
                            and (text is None or text in str(call.params.get("text", "")))):
                        waiting.discard(int(call.chat_id))
                scanned[0] = len(tg.calls)
                return not waiting

            scanned, waiting = [0], set(ids)
            await _wait(lambda: told(None, scanned, waiting), 120 + clients / global_limit * 2,
                        "confirmations missing", 0.5)
            tg.send_message(STAFF, "/problem 1 Авария у провайдера", chat_id=STAFF_CHAT)
            tg.send_message(STAFF, f"/link 2-{clients} 1", chat_id=STAFF_CHAT)

            def linked() -> bool:
                rows = _query(db, "SELECT count(*) FROM tickets WHERE problem_number = 1")
                return bool(rows) and rows[0][0] == clients - 1

            await _wait(linked, 120, "the incidents were not linked")
            topic = tg.topic_by_name(STAFF_CHAT, "#1 ")
            assert topic is not None
            violations = tg.limit_violations
            start = len(tg.calls)
            tg.send_message(STAFF, UPDATE, chat_id=STAFF_CHAT,
                            thread_id=int(topic["message_thread_id"]))
            probe_during_update = await registration(
                tg, db, PROBES[0], "Принтер в бухгалтерии печатает полосами")
            scanned, waiting = [start], set(ids)
            await _wait(lambda: told(UPDATE, scanned, waiting), 120 + clients / global_limit * 2,
                        "the update did not reach everyone", 0.5)
            end = len(tg.calls)

            def closed() -> bool:
                rows = _query(db, "SELECT count(*) FROM tickets WHERE problem_number = 1 "
                                  "AND status = 'closed'")
                return bool(rows) and rows[0][0] == clients - 1

            closing = time.monotonic()
            tg.send_message(STAFF, "/problem close 1 Магистраль починили", chat_id=STAFF_CHAT)
            probe_during_close = await registration(tg, db, PROBES[1],
                                              "Не открывается общая папка")
            await _wait(closed, 120 + clients / 10, "the linked incidents were not closed", 0.05)
            close_all = time.monotonic() - closing
        finally:
            await stop_bot(process)
            log.close()
        client_ids = set(ids)
        copies = sorted(c.time for c in tg.calls[start:end]
                        if c.ok and c.method == "sendMessage" and c.chat_id in client_ids
                        and UPDATE in str(c.params.get("text", "")))
        # The rate while the copies were queued: every send in that span (staff lines too:
        # they share the global limit), from one second after the first (the queue forms).
        window_start = copies[0] + 1.0
        sends = [c.time for c in tg.calls[start:end]
                 if c.ok and c.method in SEND_METHODS and window_start <= c.time <= copies[-1]]
        span = copies[-1] - window_start
        return Report(
            clients=clients, global_limit=global_limit,
            delivered=len({c.chat_id for c in tg.calls[start:end]
                           if c.ok and c.method == "sendMessage" and c.chat_id in client_ids
                           and UPDATE in str(c.params.get("text", ""))}),
            deliver_all=copies[-1] - copies[0],
            rate=len(sends) / span if span > 0 else float("nan"),
            provoked_429=tg.limit_violations - violations,
            probe_during_update=probe_during_update, close_all=close_all,
            probe_during_close=probe_during_close,
        )


async def registration(tg: FakeTelegram, db: Path, user_id: int, text: str) -> float:
    """Seconds from a new client's first message to their incident in the database."""
    sent = time.monotonic()
    tg.send_message(user_id, text)

    def registered() -> bool:
        rows = _query(db, "SELECT count(*) FROM tickets JOIN clients "
                          f"ON clients.id = tickets.client_id WHERE clients.user_id = {user_id}")
        return bool(rows) and rows[0][0] > 0

    await _wait(registered, 120, "the other client's incident was not registered", 0.02)
    return time.monotonic() - sent


def render(r: Report) -> str:
    target_rate = 0.95 * r.global_limit
    ideal = r.clients / r.global_limit
    rows = [
        ("update delivered", f"{r.delivered}/{r.clients}", "all",
         f"{r.delivered / r.clients:.2f}", r.delivered == r.clients),
        ("time to deliver all", f"{r.deliver_all:.1f} s", f"~{ideal:.1f} s",
         f"{r.deliver_all / ideal:.2f}", None),
        ("send rate", f"{r.rate:.1f}/s", f">= {target_rate:.2f}/s",
         f"{r.rate / r.global_limit:.2f}", r.rate >= target_rate),
        ("429s provoked", str(r.provoked_429), "0", "", r.provoked_429 == 0),
        ("another client waits", f"{r.probe_during_update:.2f} s", "< 1 s",
         f"{r.probe_during_update:.2f}", None),
        ("close all linked", f"{r.close_all:.1f} s", "", "", None),
        ("another client waits", f"{r.probe_during_close:.2f} s", "< 1 s",
         f"{r.probe_during_close:.2f}", None),
    ]
    lines = [f"Problem fan-out: {r.clients} linked clients, one staff update; bot limit "
             f"{r.global_limit:g}/s, emulator enforces 30/s, 1/s per chat, 20/min per group", "",
             f"{'measure':<22} {'value':>12} {'target':>12} {'ratio':>7}"]
    for name, value, target, ratio, ok in rows:
        verdict = "" if ok is None else ("ok" if ok else "MISSED")
        lines.append(f"{name:<22} {value:>12} {target:>12} {ratio:>7}  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--global-limit", type=float, default=25.0,
                        help="the bot's [delivery] global_per_second")
    args = parser.parse_args(argv)
    started = time.monotonic()
    report = asyncio.run(run(args.clients, args.global_limit))
    print(render(report))
    print(f"(the whole bench took {time.monotonic() - started:.0f} s)")
    good = (report.delivered == report.clients and report.provoked_429 == 0
            and report.rate >= 0.95 * report.global_limit)
    return 0 if good else 1


if __name__ == "__main__":
    raise SystemExit(main())
