"""Client groups: the bot in a client company's own group chat (issue 18).

- **Linking.** A company's invite has a group form, `https://t.me/<bot>?startgroup=<code>`
  (bot/services/companies.py `invite_link`): Telegram offers to add the bot to a group,
  then sends `/start@<bot> <code>` there, and `link_by_code` links the group to the
  company. Staff may also type `/org group <name>` in a group. The bot added to a group
  that is not linked (and not by staff) leaves it: at once when anything but a link is
  said there, otherwise after `LEAVE_GRACE` (the code's message follows the membership
  update; linking drops the scheduled leave).
- **Incidents.** In a linked group a message that mentions the bot, replies to it, or is
  `/new ...` registers an incident for its author (a client record, linked to the group's
  company when it has none) with the group as where answers go: `tickets.group_chat_id`
  and the reporting message (bot/messaging/notify.py `answers_to`), so every client
  message of the incident goes to the group as a reply to it. A reply to a message of an
  incident (the bot's, or the reporting one) is a follow-up of that incident; of a closed
  one, it opens it again by the private chat's rule (`Desk.reopen_by_reply`: within
  `reopen_days`), else it is a new report. A reply to a coalesced message (several
  incidents' notifications sent as one when the group reached its limit) is about the
  incident it names (`#N`), else the replier's own latest among them, else the latest. With
  `[groups] listen = "all"` every message is a candidate and `is_request` (the chatter
  model: bot/domain/chatter.py) tells a request from chatter; chatter is left alone:
  nothing written, nothing sent.
- **Limits.** The author's flood bucket (`Desk.admit`, `[limits]`) and their cap of open
  incidents hold in a group as in private, counting that group's incidents: a message
  over the limit joins their incident there (`Desk.hold`), one past the cap joins the
  latest and they are told so in the group.
- **Buttons.** The incident's messages in the group carry their buttons ("This is
  urgent", the rating, "Not fixed"); only the reporter's press acts (`reporter`), anyone
  else is told so in an alert.
- **Staff there.** A staff member's reply to a message about #N is #N's staff answer:
  recorded and shown in its staff thread, not sent to the group again; anything else
  they write there is left alone.
- **The group's life.** A migration to a supergroup moves the link (and its incidents'
  answers) to the new id, the bot removed makes the link inactive (nothing more is sent
  there: its incidents' answers go to each client's private chat), a new title is
  stored. Members of the staff group writing in a client group are staff there: what they
  write is no client's incident.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import GroupsConfig
from bot.domain.clock import Clock
from bot.messaging.notify import Actor, Content, Notifier
from bot.messaging.outbox import PRIORITY_BROADCAST, PRIORITY_REPLY
from bot.services.companies import by_invite, link, open_incidents
from bot.services.desk import Desk, Person, Registration
from storage.models import Client, ClientGroup, Company, Ticket
from storage.repos.companies import Companies
from storage.repos.groups import ClientGroups
from storage.repos.tickets import Tickets

GROUP_TYPES = ("group", "supergroup")
TITLE_LIMIT = 255
# How long an unlinked group keeps the bot, waiting for the invite code's `/start`.
LEAVE_GRACE = timedelta(seconds=60)
LEAVE = "leaveChat"

RequestCheck = Callable[[str], bool]
_NUMBER = re.compile(r"#(\d{1,9})\b")


@dataclass(frozen=True)
class GroupMessage:
    """A message in a client group, as the handler parsed it."""

    person: Person
    content: Content  # its text without the bot's @username and the /new command
    said: str  # its text as written (what the chatter model reads: its vector is cached)
    reply_to: int | None
    addressed: bool  # mentions the bot, replies to it, or is /new


class GroupDesk:
    """Client groups within one transaction."""

    def __init__(self, session: AsyncSession, desk: Desk, notifier: Notifier, clock: Clock,
                 config: GroupsConfig, is_request: RequestCheck) -> None:
        self._session = session
        self._desk = desk
        self._notify = notifier
        self._clock = clock
        self._config = config
        self._is_request = is_request
        self._groups = ClientGroups(session)
        self._companies = Companies(session)
        self._tickets = Tickets(session)

    async def linked(self, chat_id: int) -> ClientGroup | None:
        """The active link of a group, if it is a client group the bot is in."""
        group = await self._groups.by_chat(chat_id)
        return group if group is not None and group.active else None

    async def company_of(self, group: ClientGroup) -> Company:
        company = await self._companies.by_id(group.company_id)
        assert company is not None  # a foreign key
        return company

    # -- linking -------------------------------------------------------------------------

    async def link(self, chat_id: int, title: str, company: Company, by: Person | None,
                   bot: str) -> ClientGroup:
        """Link (or link again, or to another company) a group; the group is greeted and
        the staff group told."""
        group = await self._groups.by_chat(chat_id)
        if group is None:
            group = await self._groups.add(ClientGroup(
                chat_id=chat_id, company_id=company.id, title=title[:TITLE_LIMIT],
                linked_by=by.user_id if by else None, linked_at=self._clock(), active=True))
        else:
            group.company_id, group.active = company.id, True
            group.title = title[:TITLE_LIMIT]
            group.linked_by, group.linked_at = (by.user_id if by else None), self._clock()
        await self._groups.cancel_pending(chat_id, LEAVE)
        await self._notify.to_group(chat_id, "group_linked", company=company, bot=bot)
        await self._notify.reply_staff(self._notify.staff_chat_id, None, self._notify.texts.staff(
            "group_linked_line", company=company, title=group.title,
            by=by.first_name if by else None))
        return group

    async def link_by_code(self, chat_id: int, title: str, code: str, by: Person | None,
                           bot: str) -> ClientGroup | None:
        """`/start <code>` in a group: linked to the company of a valid invite code."""
        company = await by_invite(self._session, code) if code else None
        if company is None:
            return None
        return await self.link(chat_id, title, company, by, bot)

    async def bot_added(self, chat_id: int, title: str, *, by_staff: bool) -> None:
        """The bot became a member of a group: a linked one is active again; one that staff
        added waits for `/org group`; any other is left unless its code follows soon."""
        group = await self._groups.by_chat(chat_id)
        if group is not None:
            group.active, group.title = True, title[:TITLE_LIMIT]
            return
        if not by_staff:
            await self._notify.out.call(chat_id, LEAVE, {}, priority=PRIORITY_BROADCAST,
                                        not_before=self._clock() + LEAVE_GRACE)

    async def leave(self, chat_id: int) -> None:
        """A group that is no client group: the bot leaves it now."""
        await self._groups.cancel_pending(chat_id, LEAVE)
        await self._notify.out.call(chat_id, LEAVE, {}, priority=PRIORITY_REPLY)

    async def bot_removed(self, chat_id: int) -> None:
        """The bot was removed from (or left) the group: nothing more is sent there."""
        group = await self._groups.by_chat(chat_id)
        if group is None or not group.active:
            return
        group.active = False
        await self._groups.detach_tickets(chat_id)
        await self._notify.reply_staff(self._notify.staff_chat_id, None, self._notify.texts.staff(
            "group_removed_line", company=await self.company_of(group), title=group.title))

    async def migrated(self, old_chat_id: int, new_chat_id: int) -> None:
        """The group became a supergroup (a new chat id): its link and incidents follow."""
        if old_chat_id != new_chat_id and await self._groups.move_chat(old_chat_id,
                                                                       new_chat_id):
            await self._groups.cancel_pending(new_chat_id, LEAVE)  # it is no stranger

    async def retitled(self, chat_id: int, title: str) -> None:
        group = await self._groups.by_chat(chat_id)
        if group is not None:
            group.title = title[:TITLE_LIMIT]

    # -- messages ------------------------------------------------------------------------

    async def message(self, group: ClientGroup, message: GroupMessage) -> Registration | None:
        """A client's message in a linked group: a follow-up of the incident it replies to,
        a new incident when addressed to the bot (or, listening to all, a request), else
        nothing at all (None)."""
        ticket = await self._thread_ticket(group.chat_id, message.reply_to,
                                           said=message.said, user_id=message.person.user_id)
        follow_up = ticket is not None and ticket.status.is_open
        if not follow_up and not message.addressed and not (
                self._config.listen == "all" and message.said.strip()
                and self._is_request(message.said)):
            return None  # chatter: nothing written, nothing sent
        client = await self._desk.client_for(message.person)
        if client.company_id is None:
            await link(self._session, client, await self.company_of(group))
        if not self._desk.admit(client):  # the author's flood bucket, as in private
            return await self._desk.hold(client, message.content, None,
                                         thread=ticket if follow_up else None,
                                         group_chat_id=group.chat_id)
        if follow_up:
            assert ticket is not None
            await self._desk.append_from_client(ticket, client, message.content)
            return Registration("appended", ticket)
        if ticket is not None:  # a closed incident's thread: reopened, or else a new report
            reopened = await self._desk.reopen_by_reply(ticket, client, message.content)
            if reopened is not None:
                return reopened
        if message.content.is_text and not message.content.text.strip():
            await self._notify.to_group(group.chat_id, "group_prompt",
                                        reply_to=message.content.message_id)
            return Registration("asked")
        return await self._desk.open_for(client, message.content, group_chat_id=group.chat_id)

    async def _thread_ticket(self, chat_id: int, reply_to: int | None, *, said: str = "",
                             user_id: int | None = None) -> Ticket | None:
        """The group incident a message replying to `reply_to` is about.

        A coalesced message (the group's queued notifications sent as one at its limit)
        speaks of several incidents; a reply to it is about the one it names (`#102 ...`),
        else the replier's own (their latest among them: one rarely answers for someone
        else's report), else the latest of them."""
        if reply_to is None:
            return None
        tickets = [ticket for ticket in await self._tickets.all_by_message(chat_id, reply_to)
                   if ticket.group_chat_id == chat_id]
        if len(tickets) <= 1:
            return tickets[0] if tickets else None
        named = {int(number) for number in _NUMBER.findall(said)}
        for ticket in tickets:
            if ticket.number in named:
                return ticket
        client = await self._desk.known_client(user_id) if user_id is not None else None
        own = [ticket for ticket in tickets if client is not None and ticket.client_id == client.id]
        return (own or tickets)[0]  # the latest first

    async def staff_reply(self, group: ClientGroup, actor: Actor, content: Content,
                          reply_to: int | None) -> Ticket | None:
        """A staff member replies in the group to a message about #N: their answer is #N's
        (recorded, shown in its staff thread; the group has it already). Anything else they
        write there is theirs: nothing is done (None)."""
        ticket = await self._thread_ticket(group.chat_id, reply_to, said=content.text)
        if ticket is not None:
            await self._desk.staff_answer(ticket, actor, content, in_group=True)
        return ticket

    async def reporter(self, group: ClientGroup, number: int, user_id: int) -> Client | None:
        """Who may press the buttons of incident #`number`'s messages in the group: its
        reporter only (the rating, "urgent" and "not fixed" are theirs); None for anyone
        else, and for an incident that is not this group's."""
        ticket = await self._tickets.by_number(number)
        if ticket is None or ticket.group_chat_id != group.chat_id:
            return None
        client = await self._desk.known_client(user_id)
        return client if client is not None and client.id == ticket.client_id else None

    async def open_list(self, group: ClientGroup, reply_to: int) -> None:
        """`/my` in a group: the company's open incidents."""
        company = await self.company_of(group)
        rows = await open_incidents(self._session, company)
        await self._notify.to_group(group.chat_id, "group_list", reply_to=reply_to,
                                    company=company, rows=rows)
