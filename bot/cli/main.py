"""Command line: `python -m bot run|sandbox|kb|classify|migrate|report` (also the `frontdesk`
script).

Exit codes: 0 success, 1 runtime failure, 2 bad configuration or bad input files.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from contextlib import suppress
from pathlib import Path

from bot.config import Config, ConfigError, load_config
from kb.articles import KBError, read_kb

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frontdesk", description="Frontdesk support bot")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the bot")
    run.add_argument("--config", type=Path, default=Path("config.toml"))
    run.add_argument("--verbose", action="store_true")
    run.add_argument("--workers", type=int, default=1,
                     help="worker processes (webhook mode on PostgreSQL; bot/app/workers.py)")

    migrate = commands.add_parser("migrate", help="upgrade the database schema and exit")
    migrate.add_argument("--config", type=Path, default=Path("config.toml"))

    sandbox = commands.add_parser(
        "sandbox", help="the real bot against a local Telegram emulator, in this terminal"
    )
    sandbox.add_argument("--script", type=Path, help="play a scenario file and exit")
    sandbox.add_argument("--db", type=Path, help="keep the sandbox database in this file")
    sandbox.add_argument("--verbose", action="store_true")

    kb = commands.add_parser("kb", help="the FAQ knowledge base")
    kb_commands = kb.add_subparsers(dest="kb_command", required=True)
    search = kb_commands.add_parser("search", help="search queries read from stdin")
    search.add_argument("--kb", type=Path, required=True, help="a YAML file or a folder")
    search.add_argument("--json", action="store_true", help="JSON lines output (the default)")
    search.add_argument("--limit", type=int, default=3)
    kb_import = kb_commands.add_parser(
        "import", help="articles from a YAML file or folder into the database")
    kb_import.add_argument("path", type=Path)
    kb_import.add_argument("--config", type=Path, default=Path("config.toml"))
    kb_export = kb_commands.add_parser(
        "export", help="the database's articles into one YAML file")
    kb_export.add_argument("path", type=Path)
    kb_export.add_argument("--config", type=Path, default=Path("config.toml"))
    kb_export.add_argument("--drafts", action="store_true", help="drafts too")
    kb_export.add_argument("--all", action="store_true", dest="with_files",
                           help="the [kb] path articles too, with phrasings learned in chat")

    classify = commands.add_parser("classify", help="severity of messages read from stdin")
    classify.add_argument("--json", action="store_true", help="JSON lines output (the default)")
    classify.add_argument("--vocabulary", type=Path, action="append", default=[],
                          help="an extra vocabulary file (may be repeated)")
    classify.add_argument("--config", type=Path, default=None,
                          help="use its [severity] vocabulary; with --export-corrections, its "
                               "database (default config.toml)")
    classify.add_argument("--export-corrections", action="store_true",
                          help="write staff's severity overrides as JSONL in the eval format")
    classify.add_argument("--out", type=Path, default=None,
                          help="with --export-corrections: the file to write (default stdout); "
                               "with --retrain: the folder for the refitted models")
    classify.add_argument("--explain", action="store_true",
                          help="say why: the rule that fired or the model's shares, the cues "
                               "and the nearest labelled examples")
    classify.add_argument("--retrain", action="store_true",
                          help="refit the severity model and the FAQ's no-answer gate (with "
                               "--config: staff's overrides too)")

    report = commands.add_parser("report", help="a company's monthly act of performed work "
                                                "(HTML and CSV) into a folder")
    report.add_argument("--month", required=True, help="YYYY-MM")
    report.add_argument("--company", required=True, help="the company's name (or a unique part)")
    report.add_argument("--out", type=Path, required=True, help="the folder to write to")
    report.add_argument("--config", type=Path, default=Path("config.toml"))
    return parser


async def _run_bot(config_path: Path) -> int:
    from bot.app.runtime import App

    config = load_config(config_path)
    app = App(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await app.run_forever(stop)
    return 0


def _check_workers(config: Config, path: Path, workers: int) -> None:
    if workers < 1:
        raise ConfigError(f"--workers {workers}: must be at least 1")
    if config.database.is_sqlite:
        raise ConfigError(
            f"{path}: --workers {workers} needs PostgreSQL ([database] url = "
            f'"postgresql+asyncpg://..."); SQLite is for one process')
    if config.telegram.mode != "webhook":
        raise ConfigError(
            f'{path}: --workers {workers} needs [telegram] mode = "webhook" (in polling mode '
            f"only one process may ask Telegram for updates)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = logging.DEBUG if getattr(args, "verbose", False) else logging.INFO
    try:
        if args.command == "run":
            from bot.app.logs import setup_logging

            config = load_config(args.config)  # fail fast, before anything starts
            # A broken KB file exits 2 here, in a fraction of a second, instead of after the
            # runtime (aiogram, SQLAlchemy, the models) has been imported.
            read_kb(config.kb.path, config.kb.media)
            setup_logging(config.token, level)
            if args.workers != 1:
                from bot.app.workers import supervise

                _check_workers(config, args.config, args.workers)
                return supervise(args.config, args.workers, verbose=args.verbose)
            return asyncio.run(_run_bot(args.config))
        if args.command == "migrate":
            from storage.migrate import upgrade

            upgrade(load_config(args.config).database.url)
            return 0
        if args.command == "sandbox":
            from bot.sandbox.launch import run_sandbox

            logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
            return asyncio.run(run_sandbox(script=args.script, db_path=args.db))
        if args.command == "kb" and args.kb_command in ("import", "export"):
            from bot.cli.kb import export_command, import_command

            config = load_config(args.config)
            if args.kb_command == "import":
                return import_command(config, args.path)
            return export_command(config, args.path, drafts=args.drafts,
                                  with_files=args.with_files)
        if args.command == "kb":
            from bot.cli.kb_search import search_command

            return search_command(args.kb, sys.stdin, sys.stdout, limit=args.limit)
        if args.command == "classify":
            from bot.cli.classify import (
                classify_command,
                export_corrections_command,
                retrain_command,
            )

            if args.retrain:
                return retrain_command(args.config, args.out, sys.stdout)
            if args.export_corrections:
                return export_corrections_command(args.config or Path("config.toml"), args.out,
                                                  sys.stdout)
            return classify_command(sys.stdin, sys.stdout, args.vocabulary, args.config,
                                    explain=args.explain)
        if args.command == "report":
            from bot.cli.report import report_command

            return report_command(load_config(args.config), args.month, args.company, args.out)
    except (ConfigError, KBError) as error:
        # KBError: a broken FAQ file (named with the line, the article and the field).
        print(f"frontdesk: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    return 1
