"""`python -m bot report --month YYYY-MM --company NAME --out DIR`: the monthly act of
performed work (HTML and CSV, the same files /report sends) written from the command line.

Exit codes: 0 written, 2 a bad month or an unknown company (the message says which).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.cli.main import EXIT_BAD_INPUT
from bot.config import Config
from bot.domain.periods import PeriodError, parse_month
from bot.services import companies
from bot.services.reports.act import build_act
from bot.services.reports.render import template_path, write_act
from storage.db import Database
from storage.migrate import upgrade_async


async def _write(config: Config, month: str, company_name: str, out: Path) -> list[Path]:
    zone = ZoneInfo(config.desk.timezone)
    period = parse_month(month, zone)
    await upgrade_async(config.database.url)
    db = Database(config.database.url)
    try:
        async with db.transaction() as session:
            company = await companies.find(session, company_name)
            act = await build_act(session, company, period, datetime.now(UTC),
                                  config.desk.name, config.reports.place)
    finally:
        await db.dispose()
    return write_act(act, out, config.desk.language, template_path(config, company))


def report_command(config: Config, month: str, company: str, out: Path,
                   stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    try:
        paths = asyncio.run(_write(config, month, company, out))
    except PeriodError as error:
        print(f"frontdesk: --month {error.context.get('text', month)!r}: expected YYYY-MM",
              file=stderr)
        return EXIT_BAD_INPUT
    except companies.CompanyError as error:
        detail = {"not_found": "no such company",
                  "ambiguous": "matches several: " + ", ".join(error.context.get("names", [])),
                  "need_name": "the name is empty"}.get(error.code, error.code)
        print(f"frontdesk: --company {company!r}: {detail}", file=stderr)
        return EXIT_BAD_INPUT
    for path in paths:
        print(path, file=stdout)
    return 0
