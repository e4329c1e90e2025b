"""`python -m bot run --workers N`: N processes of the same bot, for webhook mode on PostgreSQL.

A deliberately small supervisor. Each worker is `python -m bot run --config F` on
its own: it listens on the same port as the others (SO_REUSEPORT), records and
handles the updates it receives, and one of them, the leader (bot/app/leader.py),
also delivers the outbox and runs the scheduler.

- SIGTERM / SIGINT are forwarded to every worker; each stops gracefully (the
  updates it holds are handled, sends under way finish) and the supervisor
  exits 0 once all have.
- A worker that exits on its own is NOT restarted: it is logged as an error,
  the others keep serving (if it was the leader, another one takes over within
  seconds), and the supervisor's exit code will be 1 when it ends.
  Where workers must come back by themselves, run one process per systemd unit
  (`frontdesk@1..N`, Restart=always: README, "Scaling out") instead.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

WORKER_ENV = "FRONTDESK_WORKER"  # each worker's number, 1..N (for logs)


def supervise(config: Path, workers: int, *, verbose: bool = False) -> int:
    command = [sys.executable, "-m", "bot", "run", "--config", str(config)]
    if verbose:
        command.append("--verbose")
    stopping = False
    processes: dict[int, subprocess.Popen[bytes]] = {}

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signum)

    previous = {signum: signal.signal(signum, forward)
                for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        for number in range(1, workers + 1):
            env = {**os.environ, WORKER_ENV: str(number)}
            processes[number] = subprocess.Popen(command, env=env)
            log.info("worker %d started (pid %d)", number, processes[number].pid)
        failed = False
        running = dict(processes)
        while running:
            for number, process in list(running.items()):
                code = process.poll()
                if code is None:
                    continue
                del running[number]
                if stopping and code == 0:
                    log.info("worker %d (pid %d) stopped", number, process.pid)
                else:
                    failed = True
                    log.error("worker %d (pid %d) exited with %s; not restarted, %d still "
                              "running", number, process.pid, code, len(running))
            time.sleep(0.2)
        return 1 if failed else 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for process in processes.values():
            if process.poll() is None:  # the supervisor itself failed: leave no orphan
                process.terminate()
