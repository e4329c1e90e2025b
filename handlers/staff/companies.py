"""/org in the staff group: companies, their employees, contract notes (bot/services/companies.py).

  /org                         the list
  /org add <name>              a new company and its invite link
  /org <name>                  its open incidents and this month's numbers
  /org link [N] <name>         link the client of incident N (inside its topic, or replying
                               to a message about it, N may be omitted) — the card updates
  /org unlink [N]
  /org services <name>: text   the services the contract covers
  /org works <name>: work — weekly; work — monthly    the planned maintenance works
  /org done <name>: work       a planned work done (the act shows it)
  /org rename <name>: new name
  /org invite <name> rotate    a new invite link; the old one stops working
  /org invite <name> expires 7d|off, uses 10|off   the link's expiry and use limit
  /org contact <name> @user    a coordinator at the client (sees the company's incidents,
                               gets its acts); /org notify <name> on|off: told of each new one
  /org manager <name> @staff   the account manager, mentioned when it goes wrong
  /org fee <name> 30000 [10h]  the monthly fee and the hours it includes
  /org sla <name> critical response 1h [--reapply]   the contract's service level (also
                               `resolution 2d`, `normal 24x7|business`, `hours 08:00-20:00`,
                               `days mon-sat`, `timezone Asia/Omsk`, `reset`); open
                               incidents keep theirs unless --reapply

Only in the staff group (its members are staff). Names with spaces are fine: the
structured part ends at ":" (or, for link, after the number).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.config import Config
from bot.messaging.after_commit import AfterCommit
from bot.messaging.callbacks import CompanyMove
from bot.messaging.notify import Notifier
from bot.messaging.outbox import PRIORITY_REPLY
from bot.messaging.texts import Texts
from bot.services import companies as org
from bot.services.desk import Desk, DeskError
from bot.services.records import Company, Session
from bot.services.reports.jobs import ReportDesk
from handlers._common import STAFF, bot_username, refuse_non_staff, reply, thread_of, thread_ticket
from handlers._filters import in_staff_chat

SUBCOMMANDS = ("add", "link", "unlink", "services", "works", "done", "rename", "invite",
               "sla", "contact", "manager", "notify", "fee", "help")


def _split(text: str) -> tuple[str, str]:
    name, _, rest = text.partition(":")
    return name.strip(), rest.strip()


async def org_command(
    message: Message, command: CommandObject, desk: Desk, session: Session, now: datetime,
    notifier: Notifier, texts: Texts, bot: Bot, config: Config, reports: ReportDesk,
    after_commit: AfterCommit,
) -> None:
    args = (command.args or "").strip()
    word, _, rest = args.partition(" ")
    word, rest = word.lower(), rest.strip()
    try:
        if not args:
            await reply(message, notifier, texts.staff("org_list", rows=await org.listing(session)))
        elif word == "help" and not rest:
            await reply(message, notifier, texts.staff("org_reply", code="help"))
        elif word == "add":
            company = await org.create(session, rest, now, created_by=_user(message))
            link = org.invite_link(await bot_username(bot), company.invite_code)
            await reply(message, notifier, texts.staff("org_created", company=company, link=link))
        elif word in ("link", "unlink"):
            await _link(message, word, rest, desk, session, notifier, texts)
        elif word == "invite":
            name, limit = org.invite_of(rest)
            company = await org.find(session, name)
            if limit.lower() == "rotate":
                org.rotate_invite(company)
                code = "invite_rotated"
            elif limit:
                org.limit_invite(company, limit, now)
                code = "invite_limited"
            else:
                code = "invite"
            link = org.invite_link(await bot_username(bot), company.invite_code)
            await reply(message, notifier, texts.staff(
                "org_reply", code=code, company=company, link=link, now=now))
        elif word == "sla":
            change = org.parse_level(rest)
            company = await org.find(session, change.name)
            org.change_level(company, change, config.sla, config.desk)
            moved = await desk.reapply_level(company) if change.reapply else None
            await reply(message, notifier, texts.staff(
                "org_reply", code="level_set", company=company, level=desk.level_of(company),
                moved=moved))
        elif word == "fee":
            company = await org.find(session, org.fee_name(rest))
            org.set_fee(company, rest)
            await reply(message, notifier, texts.staff("org_reply", code="fee_set",
                                                       company=company))
        elif word in ("contact", "manager", "notify"):
            name, value = org.split_last(rest)
            company = await org.find(session, name)
            client = None
            if word == "contact":
                client = await org.add_contact(session, company, value)
            elif word == "manager":
                if not org.is_mention(value):
                    raise org.CompanyError("bad_mention", text=value)
                company.account_manager = value
            elif value.lower() in ("on", "off"):
                company.notify_contacts = value.lower() == "on"
            else:
                raise org.CompanyError("bad_switch", text=value)
            await reply(message, notifier, texts.staff(
                "org_reply", code=word + "_set", company=company, client=client))
        elif word in ("services", "works", "done", "rename"):
            name, value = _split(rest)
            company = await org.find(session, name)
            if word == "services":
                company.services = value or None
                await reply(message, notifier,
                            texts.staff("org_reply", code="services_set", company=company))
            elif word == "works":
                company.maintenance = org.parse_works(value)
                await reply(message, notifier,
                            texts.staff("org_reply", code="works_set", company=company))
            elif word == "done":
                user = message.from_user
                done = await org.mark_done(session, company, value, now,
                                           user.id if user else None,
                                           user.full_name if user else None)
                await reply(message, notifier,
                            texts.staff("org_reply", code="done", company=company, done=done))
            else:
                await org.rename(session, company, value)
                await reply(message, notifier,
                            texts.staff("org_reply", code="renamed", company=company))
        else:
            company = await org.find(session, args)
            await _overview(message, company, now, desk, bot, reports, after_commit)
    except org.CompanyError as error:
        await reply(message, notifier, texts.staff("org_reply", code=error.code, **error.context))
    except DeskError as error:
        await reply(message, notifier, texts.staff("error", code=error.code, **error.context))


def _user(message: Message) -> int | None:
    return message.from_user.id if message.from_user else None


async def _link(
    message: Message, word: str, rest: str, desk: Desk, session: Session,
    notifier: Notifier, texts: Texts,
) -> None:
    """Link (or unlink) the client of an incident: `N name`, or the incident of the topic."""
    first, _, after = rest.partition(" ")
    if first.lstrip("#").isdigit():
        ticket = await desk.ticket(int(first.lstrip("#")))
        name = after.strip()
    else:
        found = await thread_ticket(message, desk)
        if found is None:
            raise org.CompanyError("need_number")
        ticket, name = found, rest
    client = await desk.client_of(ticket)
    if word == "unlink":
        before = await org.link(session, client, None)
        await reply(message, notifier, texts.staff("org_reply", code="unlinked", client=client,
                                                   before=before))
    else:
        company = await org.find(session, name)
        before = await org.link(session, client, company)
        await reply(message, notifier, texts.staff(
            "org_reply", code="linked", company=company, client=client, ticket=ticket,
            before=before))
    await desk.refresh_card(ticket, client)  # the card shows the client's company


async def _overview(
    message: Message, company: Company, now: datetime, desk: Desk, bot: Bot,
    reports: ReportDesk, after_commit: AfterCommit,
) -> None:
    """The card is made after the update's commit, its figures on a read session
    (ReportDesk): the month's queries never run under the write lock."""
    link = org.invite_link(await bot_username(bot), company.invite_code)
    after_commit.later(partial(reports.send_org_card, company, now, link=link,
                               level=desk.level_of(company), chat_id=message.chat.id,
                               thread_id=thread_of(message)))


async def move_button(
    callback: CallbackQuery, callback_data: CompanyMove, session: Session, is_staff: bool,
    notifier: Notifier, texts: Texts, after_commit: AfterCommit,
) -> None:
    """Confirm (or not) the move of a client who came through another company's link. Only
    staff (re-checked on the press); the data must name the move the database holds."""
    if not is_staff:
        refuse_non_staff(callback, texts, after_commit)
        return
    confirm = callback_data.action == "confirm"
    try:
        client, company, before = await org.decide_move(
            session, callback_data.client, callback_data.company, confirm)
    except org.CompanyError as error:
        after_commit(callback.answer(texts.staff_plain("org_reply", code=error.code),
                                     show_alert=True))
        return
    who = callback.from_user.full_name
    await notifier.to_client(None, client, "org_joined" if confirm else "org_move_kept",
                             priority=PRIORITY_REPLY, company=company, before=before)
    await notifier.reply_staff(notifier.staff_chat_id, None, texts.staff(
        "org_reply", code="move_confirmed" if confirm else "move_kept", company=company,
        client=client, before=before, name=who))
    after_commit(callback.answer())


def router() -> Router:
    router = Router(name=__name__)
    router.message.filter(in_staff_chat)
    router.message.register(org_command, Command("org"))
    router.callback_query.register(move_button, CompanyMove.filter(), flags=STAFF)
    return router
