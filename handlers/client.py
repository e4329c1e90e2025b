"""A client's commands in the private chat: /start, /help, /my, /status, /new, the phone number."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message

from bot.messaging.callbacks import ContactChoice
from bot.messaging.notify import Content, Notifier
from bot.messaging.outbox import PRIORITY_REPLY, button
from bot.messaging.texts import Texts
from bot.services.companies import join_by_invite
from bot.services.desk import Desk, DeskError
from handlers._filters import private_chat
from handlers._parse import person_of

router = Router(name=__name__)
router.message.filter(private_chat)
router.edited_message.filter(private_chat)

REMOVE_KEYBOARD = {"remove_keyboard": True}


@router.message(CommandStart())
async def start(
    message: Message, command: CommandObject, desk: Desk, notifier: Notifier, texts: Texts
) -> None:
    assert message.from_user is not None
    client, _ = await desk.client_for(person_of(message.from_user, message.chat.id))
    await notifier.to_client(None, client, "start", priority=PRIORITY_REPLY,
                             name=client.first_name, desk=desk.config.name)
    # A company's invite link (https://t.me/<bot>?start=<code>): an employee joins it.
    company = await join_by_invite(desk.session, client, command.args or "")
    if company is not None:
        await notifier.to_client(None, client, "org_joined", priority=PRIORITY_REPLY,
                                 company=company)
    if desk.config.ask_contact and not client.contact_asked and not client.phone:
        client.contact_asked = True
        share = {"text": texts.label(client.language, "share_phone"), "request_contact": True}
        keyboard = {"keyboard": [[share]], "resize_keyboard": True, "one_time_keyboard": True}
        await notifier.to_client(None, client, "contact_request", priority=PRIORITY_REPLY,
                                 keyboard=keyboard)
        skip = button(texts.label(client.language, "skip"), ContactChoice(action="skip").pack())
        await notifier.to_client(None, client, "contact_skip_offer", priority=PRIORITY_REPLY,
                                 keyboard=[[skip]])


@router.message(Command("help"))
async def help_(message: Message, desk: Desk, notifier: Notifier) -> None:
    assert message.from_user is not None
    client, _ = await desk.client_for(person_of(message.from_user, message.chat.id))
    await notifier.to_client(None, client, "help", priority=PRIORITY_REPLY, desk=desk.config.name)


@router.message(Command("my"))
async def my_tickets(message: Message, desk: Desk, notifier: Notifier) -> None:
    assert message.from_user is not None
    client, _ = await desk.client_for(person_of(message.from_user, message.chat.id))
    tickets, total = await desk.client_tickets(client)
    await notifier.to_client(None, client, "my_list", priority=PRIORITY_REPLY,
                             tickets=tickets, total=total)


@router.message(Command("status"))
async def ticket_status(
    message: Message, command: CommandObject, desk: Desk, notifier: Notifier
) -> None:
    assert message.from_user is not None
    client, _ = await desk.client_for(person_of(message.from_user, message.chat.id))
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


@router.message(Command("new"))
async def new_ticket(
    message: Message, command: CommandObject, desk: Desk, notifier: Notifier
) -> None:
    """/new alone: the next message opens an incident; /new with text opens it now."""
    assert message.from_user is not None
    client, _ = await desk.client_for(person_of(message.from_user, message.chat.id))
    if command.args:
        await desk.open_ticket(
            client, Content("text", command.args, message.chat.id, message.message_id)
        )
        return
    await desk.start_new(client)
    await notifier.to_client(None, client, "new_prompt", priority=PRIORITY_REPLY)


@router.message(Command("take", "close", "reopen", "sev", "tickets"))
async def staff_command_refused(message: Message, desk: Desk, notifier: Notifier) -> None:
    assert message.from_user is not None
    client, _ = await desk.client_for(person_of(message.from_user, message.chat.id))
    await notifier.to_client(None, client, "error", priority=PRIORITY_REPLY, code="staff_only")


async def _own_contact(message: Message) -> bool:
    """The client's own number from the contact button (someone else's card is an attachment)."""
    contact, user = message.contact, message.from_user
    return contact is not None and user is not None and contact.user_id == user.id


@router.message(_own_contact)
async def shared_contact(message: Message, desk: Desk, notifier: Notifier) -> None:
    assert message.from_user is not None and message.contact is not None
    client, _ = await desk.client_for(person_of(message.from_user, message.chat.id))
    await desk.save_phone(client, message.contact.phone_number)
    await notifier.to_client(None, client, "contact_saved", priority=PRIORITY_REPLY,
                             keyboard=REMOVE_KEYBOARD)
