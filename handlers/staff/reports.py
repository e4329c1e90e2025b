"""/stats and /report in the staff group (bot/services/reports).

  /stats [week|month|quarter|YYYY-MM]   the chart (a photo) and the text summary
  /report <company> [YYYY-MM]           the act of performed work (HTML and CSV files) for
                                        a month, last month by default

Only in the staff group (its members are staff). The answers go where the command was
typed (the topic) and jump the group's queue of cards, like /health. The handler checks
the arguments and queues the report in `after_commit`: it is made after the update's
commit, never under the write lock (bot/services/reports/jobs.py, ReportDesk).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import partial

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.domain.errors import UserError
from bot.domain.periods import parse_month_or_quarter, parse_period, previous_month
from bot.messaging.after_commit import AfterCommit
from bot.messaging.notify import Notifier
from bot.messaging.outbox import PRIORITY_REPLY
from bot.messaging.texts import Texts
from bot.services import companies as org
from bot.services.records import Session
from bot.services.reports.jobs import ReportDesk, ReportError
from handlers._common import reply, thread_of
from handlers._filters import in_staff_chat

_MONTH_AT_END = re.compile(r"^(?P<name>.*?)\s+(?P<month>\d{4}-\d{1,2}|\d{4}-?[QqКк][1-4])$")


async def stats_command(
    message: Message, command: CommandObject, now: datetime, notifier: Notifier,
    texts: Texts, reports: ReportDesk, after_commit: AfterCommit,
) -> None:
    try:
        period = parse_period(command.args, now, texts.zone)
    except UserError as error:
        await reply(message, notifier, texts.staff("report_reply", code=error.code,
                                                   **error.context))
        return
    after_commit.later(partial(reports.send_stats, period, now, chat_id=message.chat.id,
                               thread_id=thread_of(message), priority=PRIORITY_REPLY))


async def report_command(
    message: Message, command: CommandObject, session: Session, now: datetime,
    notifier: Notifier, texts: Texts, reports: ReportDesk, after_commit: AfterCommit,
) -> None:
    args = " ".join((command.args or "").split())
    match = _MONTH_AT_END.match(args)
    name, month = (match["name"], match["month"]) if match else (args, None)
    try:
        if not name:
            raise ReportError("usage")
        period = (parse_month_or_quarter(month, texts.zone) if month
                  else previous_month(now, texts.zone))
        company = await org.find(session, name)
    except UserError as error:  # a bad month or company name: report_reply explains both
        await reply(message, notifier, texts.staff("report_reply", code=error.code,
                                                   **error.context))
        return
    after_commit.later(partial(reports.send_act, company, period, now,
                               chat_id=message.chat.id, thread_id=thread_of(message),
                               priority=PRIORITY_REPLY))


def router() -> Router:
    router = Router(name=__name__)
    router.message.filter(in_staff_chat)
    router.message.register(stats_command, Command("stats"))
    router.message.register(report_command, Command("report"))
    return router
