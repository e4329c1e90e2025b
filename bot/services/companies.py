"""Companies: the client organisations of the desk, their employees and contract notes.

- A company has a unique name and an invite code: an employee who starts the bot through
  `https://t.me/<bot>?start=<code>` is linked to it. Staff link anyone else by hand
  (`/org link 42 <company>`, or `/org link <company>` inside the incident's topic).
- `clients.company_id` is the link; `clients.company` keeps the company's name in step
  with it (this module is its only writer), so every staff template that shows a client
  shows the company too, without a join.
- Contract notes: `services` (free text) and `maintenance`, the planned works with their
  periodicity, from `[[companies]]` in the config (rewritten at every start) or set from
  chat. `/org done` records that a work was done: the monthly act shows each work as done
  (with the dates) or scheduled.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import PERIODICITIES, CompanyConfig
from bot.domain.errors import UserError
from storage.db import Database
from storage.models import Client, Company, MaintenanceDone
from storage.repos.companies import Companies
from storage.repos.tickets import Tickets, TicketWithClient

INVITE_PREFIX = "org-"
INVITE_BYTES = 9
NAME_LIMIT = 200

# Words people write for a periodicity, in both languages.
PERIODICITY_WORDS = {
    "daily": ("daily", "every day", "ежедневно", "каждый день", "раз в день"),
    "weekly": ("weekly", "every week", "еженедельно", "каждую неделю", "раз в неделю"),
    "monthly": ("monthly", "every month", "ежемесячно", "каждый месяц", "раз в месяц"),
    "quarterly": ("quarterly", "every quarter", "ежеквартально", "каждый квартал",
                  "раз в квартал"),
    "yearly": ("yearly", "annually", "every year", "ежегодно", "каждый год", "раз в год"),
}
_WORK_SPLIT = re.compile(r"\s+[—–-]\s+|\s*:\s*")


class CompanyError(UserError):
    """A request about companies that cannot be done (template: `org_reply`)."""


def clean_name(name: str) -> str:
    return " ".join(name.split())[:NAME_LIMIT]


def new_invite_code() -> str:
    # Deep-link start parameters allow A-Z a-z 0-9 _ - and at most 64 characters.
    return INVITE_PREFIX + secrets.token_urlsafe(INVITE_BYTES)


def invite_link(bot_username: str | None, code: str) -> str:
    return f"https://t.me/{bot_username or '<bot>'}?start={code}"


def parse_periodicity(text: str) -> str | None:
    word = " ".join(text.lower().split())
    for every, words in PERIODICITY_WORDS.items():
        if word in words:
            return every
    return None


def parse_works(text: str) -> list[dict[str, str]]:
    """"antivirus check — weekly; backups test — monthly" -> [{"work", "every"}, ...].

    Works are separated by ";" or new lines; the periodicity follows a dash or a colon
    (monthly when none is given). An unknown periodicity raises CompanyError."""
    works: list[dict[str, str]] = []
    for raw in re.split(r"[;\n]", text):
        item = raw.strip()
        if not item:
            continue
        parts = _WORK_SPLIT.split(item)
        every = "monthly"
        if len(parts) > 1:
            found = parse_periodicity(parts[-1])
            if found is None:
                raise CompanyError("bad_periodicity", text=parts[-1],
                                   known=", ".join(PERIODICITIES))
            every = found
            item = " ".join(parts[:-1]).strip()
        works.append({"work": item[:NAME_LIMIT], "every": every})
    return works


@dataclass(frozen=True)
class Linked:
    company: Company
    before: str | None  # the company the client was linked to before, if another


class CompanyLine(NamedTuple):
    company: Company
    employees: int
    open_incidents: int


async def all_companies(session: AsyncSession) -> Sequence[Company]:
    return await Companies(session).all()


async def listing(session: AsyncSession) -> list[CompanyLine]:
    """Every company with its number of employees and of open incidents (/org)."""
    companies = Companies(session)
    people = await companies.employee_counts()
    open_counts = await companies.open_ticket_counts()
    return [CompanyLine(c, people.get(c.id, 0), open_counts.get(c.id, 0))
            for c in await companies.all()]


async def open_incidents(
    session: AsyncSession, company: Company, limit: int = 30
) -> list[TicketWithClient]:
    """The company's open incidents, oldest first."""
    return await Tickets(session).open_of_company(company.id, limit)


async def employee_count(session: AsyncSession, company: Company) -> int:
    return await Companies(session).employee_count(company.id)


async def find(session: AsyncSession, query: str) -> Company:
    """A company by name: exact (case-insensitive), else the one whose name starts with or
    contains the query. Case is folded in Python: SQLite's lower() knows only ASCII."""
    wanted = clean_name(query).casefold()
    if not wanted:
        raise CompanyError("need_name")
    companies = await all_companies(session)
    for company in companies:
        if company.name.casefold() == wanted:
            return company
    for test in (str.startswith, str.__contains__):
        found = [c for c in companies if test(c.name.casefold(), wanted)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise CompanyError("ambiguous", query=query, names=[c.name for c in found[:10]])
    raise CompanyError("not_found", query=query)


async def create(
    session: AsyncSession, name: str, now: datetime, *, created_by: int | None = None,
    source: str = "chat",
) -> Company:
    name = clean_name(name)
    if not name:
        raise CompanyError("need_name")
    for company in await all_companies(session):
        if company.name.casefold() == name.casefold():
            raise CompanyError("exists", name=company.name)
    return await Companies(session).add(Company(
        name=name, invite_code=new_invite_code(), services=None, maintenance=[],
        source=source, created_by=created_by, created_at=now))


async def by_invite(session: AsyncSession, code: str) -> Company | None:
    return await Companies(session).by_invite(code.strip())


async def link(session: AsyncSession, client: Client, company: Company | None) -> str | None:
    """Link a client to a company (None: unlink); returns the company it was linked to."""
    before = client.company if client.company_id is not None else None
    client.company_id = company.id if company is not None else None
    client.company = company.name if company is not None else None
    await session.flush()
    return before


async def join_by_invite(session: AsyncSession, client: Client, code: str) -> Company | None:
    """`/start <code>`: the company of a valid invite code, the client linked to it."""
    if not code.startswith(INVITE_PREFIX):
        return None
    company = await by_invite(session, code)
    if company is not None:
        await link(session, client, company)
    return company


def rotate_invite(company: Company) -> str:
    """A new invite code for the company: the old link stops working at once."""
    company.invite_code = new_invite_code()
    return company.invite_code


async def rename(session: AsyncSession, company: Company, name: str) -> None:
    name = clean_name(name)
    if not name:
        raise CompanyError("need_name")
    for other in await all_companies(session):
        if other.id != company.id and other.name.casefold() == name.casefold():
            raise CompanyError("exists", name=other.name)
    await Companies(session).rename(company, name)


def match_work(company: Company, text: str) -> str:
    """The planned work of the company a staff member means (case-insensitive prefix)."""
    wanted = " ".join(text.split()).casefold()
    works = [w["work"] for w in company.maintenance or []]
    for work in works:
        if work.casefold() == wanted:
            return work
    found = [w for w in works if w.casefold().startswith(wanted)] if wanted else []
    if len(found) == 1:
        return found[0]
    raise CompanyError("unknown_work", company=company.name, text=text, works=works)


async def mark_done(
    session: AsyncSession, company: Company, work_text: str, now: datetime,
    actor_id: int | None, actor_name: str | None, note: str | None = None,
) -> MaintenanceDone:
    work = match_work(company, work_text)
    return await Companies(session).add_done(MaintenanceDone(
        company_id=company.id, work=work, done_at=now, actor_id=actor_id,
        actor_name=actor_name, note=note))


async def sync_from_config(db: Database, configured: Sequence[CompanyConfig],
                           now: datetime) -> int:
    """Create the `[[companies]]` of the config that are missing and write their contract
    notes (the config is the source for them); returns how many were created."""
    if not configured:
        return 0
    created = 0
    async with db.transaction() as session:
        existing = {c.name.casefold(): c for c in await all_companies(session)}
        for entry in configured:
            company = existing.get(clean_name(entry.name).casefold())
            if company is None:
                company = await create(session, entry.name, now, source="config")
                existing[company.name.casefold()] = company
                created += 1
            company.source = "config"
            company.services = "; ".join(entry.services) or None
            company.maintenance = [{"work": w.work, "every": w.every}
                                   for w in entry.maintenance]
    return created
