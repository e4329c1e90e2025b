"""/stats and /report in the staff group (bot/reports.py).

  /stats [week|month|quarter|YYYY-MM]   the chart (a photo) and the text summary
  /report <company> [YYYY-MM]           the act of performed work (HTML and CSV files) for
                                        a month, last month by default

Only in the staff group (its members are staff). The answers go where the command was
typed (the topic) and jump the group's queue of cards, like /health.
"""

from __future__ import annotations

import re

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.config import Config
from bot.domain.periods import PeriodError, parse_month, parse_period, previous_month
from bot.messaging.notify import Notifier
from bot.messaging.outbox import PRIORITY_REPLY
from bot.messaging.texts import Texts
from bot.services import companies as org
from bot.services.desk import Desk
from bot.services.reports.jobs import ReportError, send_act, send_stats
from handlers._filters import in_staff_chat
from handlers.staff_commands import reply

router = Router(name=__name__)


router.message.filter(in_staff_chat)

_MONTH_AT_END = re.compile(r"^(?P<name>.*?)\s+(?P<month>\d{4}-\d{1,2})$")


def _thread(message: Message) -> int | None:
    return message.message_thread_id if message.is_topic_message else None


@router.message(Command("stats"))
async def stats_command(
    message: Message, command: CommandObject, desk: Desk, notifier: Notifier, texts: Texts,
    config: Config,
) -> None:
    now = desk.clock()
    try:
        period = parse_period(command.args, now, texts.zone)
    except PeriodError as error:
        await reply(message, notifier, texts.staff("report_reply", code=error.code,
                                                   **error.context))
        return
    await send_stats(desk.session, notifier, config, period, now,
                             chat_id=message.chat.id, thread_id=_thread(message),
                             priority=PRIORITY_REPLY)


@router.message(Command("report"))
async def report_command(
    message: Message, command: CommandObject, desk: Desk, notifier: Notifier, texts: Texts,
    config: Config,
) -> None:
    now = desk.clock()
    args = " ".join((command.args or "").split())
    match = _MONTH_AT_END.match(args)
    name, month = (match["name"], match["month"]) if match else (args, None)
    try:
        if not name:
            raise ReportError("usage")
        period = (parse_month(month, texts.zone) if month
                  else previous_month(now, texts.zone))
        company = await org.find(desk.session, name)
    except (ReportError, PeriodError, org.CompanyError) as error:
        await reply(message, notifier, texts.staff("report_reply", code=error.code,
                                                   **error.context))
        return
    await send_act(desk.session, notifier, config, company, period, now,
                           chat_id=message.chat.id, thread_id=_thread(message),
                           priority=PRIORITY_REPLY)
