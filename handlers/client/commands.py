"""A client's commands in the private chat: /start, /help, /my, /status, /new, the phone number."""

from __future__ import annotations

from datetime import datetime

from aiogram import Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message

from bot.config import Config
from bot.messaging.callbacks import ContactChoice
from bot.messaging.notify import Content, Notifier
from bot.messaging.outbox import PRIORITY_REPLY, button
from bot.messaging.texts import Texts
from bot.services.companies import join_by_invite
from bot.services.desk import Desk, DeskError
from bot.services.records import Client, Session
from handlers._common import REMOVE_KEYBOARD
from handlers._filters import private_chat


async def start(
    message: Message, command: CommandObject, client: Client, session: Session,
    notifier: Notifier, texts: Texts, config: Config, now: datetime,
) -> None:
    await notifier.to_client(None, client, "start", priority=PRIORITY_REPLY,
                             name=client.first_name, desk=config.desk.name)
    # A company's invite link (https://t.me/<bot>?start=<code>): an employee joins it; a
    # link that no longer works is said so; a move from another company waits for staff.
    join = await join_by_invite(session, client, command.args or "", now)
    if join is None:
        pass
    elif join.outcome in ("joined", "member"):
        await notifier.to_client(None, client, "org_joined", priority=PRIORITY_REPLY,
                                 company=join.company)
    elif join.outcome == "pending":
        await notifier.to_client(None, client, "org_move_pending", priority=PRIORITY_REPLY,
                                 company=join.company, before=join.before)
        await notifier.company_move_asked(client, join.company, join.before)
    else:
        await notifier.to_client(None, client, "org_invite_refused", priority=PRIORITY_REPLY,
                                 company=join.company, reason=join.outcome)
    if config.desk.ask_contact and not client.contact_asked and not client.phone:
        client.contact_asked = True
        share = {"text": texts.label(client.language, "share_phone"), "request_contact": True}
        keyboard = {"keyboard": [[share]], "resize_keyboard": True, "one_time_keyboard": True}
        await notifier.to_client(None, client, "contact_request", priority=PRIORITY_REPLY,
                                 keyboard=keyboard)
        skip = button(texts.label(client.language, "skip"), ContactChoice(action="skip").pack())
        await notifier.to_client(None, client, "contact_skip_offer", priority=PRIORITY_REPLY,
                                 keyboard=[[skip]])


async def help_(message: Message, client: Client, notifier: Notifier, config: Config) -> None:
    await notifier.to_client(None, client, "help", priority=PRIORITY_REPLY, desk=config.desk.name)


COMPANY_WORDS = ("company", "компания", "компании")


async def my_tickets(
    message: Message, command: CommandObject, client: Client, desk: Desk, notifier: Notifier
) -> None:
    """/my: the client's incidents; /my company: a coordinator's, the company's."""
    if (command.args or "").strip().lower() in COMPANY_WORDS:
        try:
            company, rows, total = await desk.company_tickets(client)
        except DeskError as error:
            await notifier.to_client(None, client, "error", priority=PRIORITY_REPLY,
                                     code=error.code, **error.context)
            return
        await notifier.to_client(None, client, "company_list", priority=PRIORITY_REPLY,
                                 company=company.name, rows=rows, total=total)
        return
    tickets, total = await desk.client_tickets(client)
    await notifier.to_client(None, client, "my_list", priority=PRIORITY_REPLY,
                             tickets=tickets, total=total)


async def ticket_status(
    message: Message, command: CommandObject, client: Client, desk: Desk, notifier: Notifier
) -> None:
    arg = (command.args or "").strip().lstrip("#")
    try:
        if not arg.isdigit():
            raise DeskError("usage_status")
        ticket, events = await desk.client_history(client, int(arg))
        await notifier.to_client(ticket, client, "history", priority=PRIORITY_REPLY,
                                 events=events)
    except DeskError as error:
        await notifier.to_client(None, client, "error", priority=PRIORITY_REPLY,
                                 code=error.code, **error.context)


async def new_ticket(
    message: Message, command: CommandObject, client: Client, desk: Desk, notifier: Notifier
) -> None:
    """/new alone: the next message opens an incident; /new with text opens it now. Over
    the client's limits (bot/services/desk.py: admit, open_for) it is kept as a message
    of their incident, or answered with the incidents they have open."""
    content = Content("text", message.text or "/new", message.chat.id, message.message_id)
    if not desk.admit(client):
        await desk.hold(client, content, None)
        return
    wanted = (Content("text", command.args, message.chat.id, message.message_id)
              if command.args else None)
    if (await desk.open_for(client, wanted)).outcome == "asked":
        await notifier.to_client(None, client, "new_prompt", priority=PRIORITY_REPLY)


async def staff_command_refused(message: Message, client: Client, notifier: Notifier) -> None:
    await notifier.to_client(None, client, "error", priority=PRIORITY_REPLY, code="staff_only")


async def _own_contact(message: Message) -> bool | dict[str, str]:
    """The client's own number from the contact button (someone else's card is an
    attachment): the handler gets it as `phone`."""
    contact, user = message.contact, message.from_user
    if contact is None or user is None or contact.user_id != user.id:
        return False
    return {"phone": contact.phone_number}


async def shared_contact(
    message: Message, phone: str, client: Client, desk: Desk, notifier: Notifier
) -> None:
    await desk.save_phone(client, phone)
    await notifier.to_client(None, client, "contact_saved", priority=PRIORITY_REPLY,
                             keyboard=REMOVE_KEYBOARD)


def router() -> Router:
    router = Router(name=__name__)
    router.message.filter(private_chat)
    router.edited_message.filter(private_chat)
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    router.message.register(my_tickets, Command("my"))
    router.message.register(ticket_status, Command("status"))
    router.message.register(new_ticket, Command("new"))
    # Staff commands from someone who is not staff (staff are served by staff/commands.py).
    router.message.register(staff_command_refused,
                            Command("take", "close", "reopen", "sev", "tickets", "mute", "unmute",
                                    "time", "scope"))
    router.message.register(shared_contact, _own_contact)
    return router
