"""Companies: the client organisations of the desk, their employees and contract notes.

- A company has a unique name and an invite code: an employee who starts the bot through
  `https://t.me/<bot>?start=<code>` is linked to it; the same code in
  `https://t.me/<bot>?startgroup=<code>` links the company's group chat. Staff link
  anyone else by hand (`/org link 42 <company>`, or `/org link <company>` inside the
  incident's topic).
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
from datetime import datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import PERIODICITIES, WEEKDAYS, CompanyConfig, DeskConfig, SlaConfig
from bot.domain.durations import parse_duration
from bot.domain.errors import UserError
from bot.domain.maintenance import is_periodicity
from storage.db import Database
from storage.models import Client, Company, MaintenanceDone
from storage.repos.clients import Clients
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


class Invite(NamedTuple):
    """A company's invite: for an employee (`?start=`: their private chat with the bot) and
    for the company's group chat (`?startgroup=`: Telegram offers to add the bot to a group
    and then sends `/start@<bot> <code>` there, which links the group: bot/services/groups.py)."""

    private: str
    group: str


def invite_link(bot_username: str | None, code: str) -> Invite:
    bot = bot_username or "<bot>"
    return Invite(f"https://t.me/{bot}?start={code}", f"https://t.me/{bot}?startgroup={code}")


_EVERY_N_MONTHS = re.compile(
    r"^(?:every|каждые|раз в)\s+(\d{1,2})\s+(?:months?|месяц(?:а|ев)?)$")


def parse_periodicity(text: str) -> str | None:
    """The periodicity people wrote: "weekly", "ежеквартально", "every 2 months", "раз в 6
    месяцев" (`months:N`)."""
    word = " ".join(text.lower().split())
    for every, words in PERIODICITY_WORDS.items():
        if word in words:
            return every
    found = _EVERY_N_MONTHS.match(word)
    if found and is_periodicity(f"months:{int(found[1])}"):
        return f"months:{int(found[1])}"
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


SEVERITIES = ("critical", "normal", "low")
TARGET_WORDS = {"response": "response", "ответ": "response",
                "resolution": "resolution", "решение": "resolution"}
WORK_TIME_WORDS = ("hours", "days", "timezone")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class LevelChange:
    """`/org sla <name> critical response 1h [--reapply]`, `... normal 24x7`,
    `... hours 08:00-20:00`, `... days mon-sat`, `... timezone Asia/Omsk`, `... reset`."""

    name: str
    key: str  # a severity, a WORK_TIME_WORDS word, or "reset"
    words: tuple[str, ...]
    reapply: bool


def parse_level(text: str) -> LevelChange:
    tokens = text.split()
    reapply = "--reapply" in tokens
    tokens = [t for t in tokens if t != "--reapply"]
    lowered = [t.lower() for t in tokens]
    if lowered and lowered[-1] == "reset":
        return LevelChange(" ".join(tokens[:-1]), "reset", (), reapply)
    if len(tokens) >= 4 and lowered[-3] in SEVERITIES and lowered[-2] in TARGET_WORDS:
        return LevelChange(" ".join(tokens[:-3]), lowered[-3],
                           (TARGET_WORDS[lowered[-2]], lowered[-1]), reapply)
    if len(tokens) >= 3 and lowered[-2] in SEVERITIES and lowered[-1] in ("24x7", "business"):
        return LevelChange(" ".join(tokens[:-2]), lowered[-2], (lowered[-1],), reapply)
    if len(tokens) >= 3 and lowered[-2] in WORK_TIME_WORDS:
        return LevelChange(" ".join(tokens[:-2]), lowered[-2], (tokens[-1],), reapply)
    raise CompanyError("bad_level", text=text)


def _weekdays(text: str) -> list[str]:
    """"mon-fri", "mon,wed,fri" -> the [desk] workdays."""
    days: list[str] = []
    for part in text.lower().split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise CompanyError("bad_level", text=text)
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days += [WEEKDAYS[i] for i in range(start, end + 1) if WEEKDAYS[i] not in days]
    return days


def change_level(company: Company, change: LevelChange, sla: SlaConfig,
                 desk: DeskConfig) -> None:
    """Apply a level change to the company's contract (its open incidents keep theirs:
    `Desk.reapply_level`). Raises CompanyError when the result is no valid level."""
    targets = {k: dict(v) for k, v in (company.sla or {}).items()}
    work_time = dict(company.work_time or {})
    if change.key == "reset":
        targets, work_time = {}, {}
    elif change.key in SEVERITIES:
        given = targets.setdefault(change.key, {})
        if change.words[0] in ("24x7", "business"):
            given["business"] = change.words[0] == "business"
        else:
            target, text = change.words
            duration = parse_duration(text)
            if duration is None:
                raise CompanyError("bad_level", text=text)
            minutes, unit = duration
            given.pop(f"{target}_hours", None)
            given.pop(f"{target}_days", None)
            if unit == "days":
                given[f"{target}_days"] = round(minutes / 1440, 2)
            else:
                given[f"{target}_hours"] = round(minutes / 60, 2)
    elif change.key == "hours":
        found = _HOURS.match(change.words[0])
        if found is None:
            raise CompanyError("bad_level", text=change.words[0])
        h1, m1, h2, m2 = (int(g) for g in found.groups())
        work_time["work_start"] = f"{h1:02d}:{m1:02d}"
        work_time["work_end"] = f"{h2:02d}:{m2:02d}"
    elif change.key == "days":
        work_time["workdays"] = _weekdays(change.words[0])
    else:
        work_time["timezone"] = change.words[0]
    try:
        sla.overridden(targets)
        desk.overridden(work_time)
    except ValidationError as exc:
        raise CompanyError("bad_level", text=exc.errors()[0]["msg"]) from None
    company.sla = targets or None
    company.work_time = work_time or None


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


class Join(NamedTuple):
    """What `/start <code>` did: "joined" (linked now), "member" (theirs already),
    "expired" or "used_up" (the link no longer works), "pending" (they are an employee of
    `before`: the move waits for staff to confirm it)."""

    outcome: str
    company: Company
    before: Company | None = None


def invite_refusal(company: Company, now: datetime) -> str | None:
    """Why the company's invite link no longer works ("expired", "used_up"), or None."""
    if company.invite_expires_at is not None and now >= company.invite_expires_at:
        return "expired"
    if company.invite_max_uses is not None and company.invite_uses >= company.invite_max_uses:
        return "used_up"
    return None


async def join_by_invite(
    session: AsyncSession, client: Client, code: str, now: datetime
) -> Join | None:
    """`/start <code>`: None for no valid code; else the company and what happened. A
    client of another company is not moved by a link: staff are asked first."""
    if not code.startswith(INVITE_PREFIX):
        return None
    company = await by_invite(session, code)
    if company is None:
        return None
    if client.company_id == company.id:
        client.pending_company_id = None
        return Join("member", company)
    refusal = invite_refusal(company, now)
    if refusal is not None:
        return Join(refusal, company)
    if client.company_id is not None:
        client.pending_company_id = company.id
        return Join("pending", company, await Companies(session).by_id(client.company_id))
    await _join(session, client, company)
    return Join("joined", company)


async def _join(session: AsyncSession, client: Client, company: Company) -> None:
    company.invite_uses += 1
    client.pending_company_id = None
    await link(session, client, company)


async def decide_move(
    session: AsyncSession, client_id: int, company_id: int, confirm: bool
) -> tuple[Client, Company, str | None]:
    """A staff member's answer to a client's pending move (button data, untrusted: it must
    name the move the database holds): confirmed, the client joins the company; else they
    stay. Returns the client, the company they asked for and the one they were in."""
    client = await Clients(session).get(client_id)
    if client is None or client.pending_company_id is None \
            or client.pending_company_id != company_id:
        raise CompanyError("move_stale")
    company = await Companies(session).by_id(company_id)
    if company is None:
        raise CompanyError("move_stale")
    before = client.company
    if confirm:
        await _join(session, client, company)
    else:
        client.pending_company_id = None
    return client, company, before


async def add_contact(session: AsyncSession, company: Company, who: str) -> Client:
    """`/org contact <name> @user|id`: a coordinator of the company (linked to it if they
    were not). They must have written to the bot (a username is known only then)."""
    clients = Clients(session)
    who = who.strip()
    client = (await clients.by_user(int(who)) if who.isdigit()
              else await clients.by_username(who.lstrip("@")) if who.startswith("@") else None)
    if client is None:
        raise CompanyError("contact_unknown", text=who)
    if client.company_id != company.id:
        await link(session, client, company)
    if client.user_id not in (company.contacts or []):
        company.contacts = [*(company.contacts or []), client.user_id]
    return client


async def coordinators(session: AsyncSession, company: Company) -> list[Client]:
    """The company's coordinators (`contacts`) who are still its employees."""
    contacts = await Clients(session).by_users(company.contacts or [])
    return [c for c in contacts if c.company_id == company.id]


_MENTION = re.compile(r"^(@[A-Za-z][A-Za-z0-9_]{3,31}|\d+)$")


def is_mention(text: str) -> bool:
    return bool(_MENTION.match(text))


_FEE = re.compile(r"^(?P<name>.+?)\s+(?P<fee>\d+(?:[.,]\d+)?)"
                  r"(?:\s+(?P<hours>\d+(?:[.,]\d+)?)\s*[hч])?$")


def _fee_parts(text: str) -> re.Match[str]:
    found = _FEE.match(text.strip())
    if found is None:
        raise CompanyError("bad_fee", text=text)
    return found


def fee_name(text: str) -> str:
    """The company's name in `/org fee <name> 30000 [10h]`."""
    return _fee_parts(text)["name"]


def set_fee(company: Company, text: str) -> None:
    """`/org fee <name> 30000 [10h]`: the monthly fee, and the hours it includes."""
    found = _fee_parts(text)
    company.fee = float(found["fee"].replace(",", "."))
    if found["hours"]:
        company.hours_included = float(found["hours"].replace(",", "."))


def split_last(text: str) -> tuple[str, str]:
    """"Рога и копыта @anna" -> ("Рога и копыта", "@anna")."""
    name, _, last = text.strip().rpartition(" ")
    return name.strip(), last


def rotate_invite(company: Company) -> str:
    """A new invite code for the company: the old link stops working at once; the new one
    keeps the limits and starts counting its uses again."""
    company.invite_code = new_invite_code()
    company.invite_uses = 0
    return company.invite_code


NO_LIMIT_WORDS = ("off", "never", "none", "нет", "никогда", "без")


def limit_invite(company: Company, rest: str, now: datetime) -> None:
    """`/org invite <name> expires 7d|off` (from now) and `... uses 10|off` (employees
    joining through the link since it was made or rotated); `rest` = "expires 7d"."""
    word, _, value = rest.strip().partition(" ")
    value = value.strip()
    off = value.lower() in NO_LIMIT_WORDS
    if word.lower() == "expires":
        parsed = None if off else parse_duration(value)
        if not off and (parsed is None or parsed[0] <= 0):
            raise CompanyError("bad_invite_limit", text=value)
        company.invite_expires_at = (None if parsed is None
                                     else now + timedelta(minutes=parsed[0]))
    elif word.lower() == "uses":
        if not off and not (value.isdigit() and 0 < int(value) <= 100_000):
            raise CompanyError("bad_invite_limit", text=value)
        company.invite_max_uses = None if off else int(value)
    else:
        raise CompanyError("help")


def invite_of(text: str) -> tuple[str, str]:
    """"ООО Ромашка expires 7d" -> ("ООО Ромашка", "expires 7d"); ("ООО Ромашка", "") when
    no limit word is given (the link shown)."""
    words = text.split()
    for at in range(len(words) - 1, 0, -1):
        if words[at].lower() in ("expires", "uses", "rotate"):
            return " ".join(words[:at]), " ".join(words[at:])
    return text.strip(), ""


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
                           now: datetime, zone: str = "UTC") -> int:
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
            apply_contract(company, entry, zone)
    return created


def apply_contract(company: Company, entry: CompanyConfig, zone: str = "UTC") -> None:
    """The contract keys an `[[companies]]` entry gives replace what was set from chat."""
    given = entry.model_fields_set
    if "sla" in given:
        company.sla = {severity: target.given() for severity, target in entry.sla.items()} or None
    if "desk" in given:
        company.work_time = entry.desk.given() or None
    if "contacts" in given:
        company.contacts = list(entry.contacts) or None
    if "notify_contacts" in given:
        company.notify_contacts = entry.notify_contacts
    if "account_manager" in given:
        manager = entry.account_manager
        company.account_manager = None if manager is None else str(manager)
    if "fee" in given:
        company.fee = entry.fee
    if "hours_included" in given:
        company.hours_included = entry.hours_included
    if "act_template" in given:
        template = entry.act_template
        company.act_template = None if template is None else str(template)
    if "invite_uses" in given:
        company.invite_max_uses = entry.invite_uses
    if "invite_expires" in given:
        until = entry.invite_expires
        company.invite_expires_at = None if until is None else datetime.combine(
            until + timedelta(days=1), time(0), ZoneInfo(zone))  # through that day
