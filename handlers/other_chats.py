"""Groups and channels that are not the staff group: client groups, and the others the bot
leaves (bot/services/groups.py).

A group linked to a company (through the invite's `?startgroup=<code>`, which makes
Telegram send `/start@<bot> <code>` there, or by staff typing `/org group <name>` in it)
keeps the bot: what its people address to the bot becomes their incident, `/my` lists
the company's open ones, the buttons of an incident's messages act for its reporter only
(by the private chat's handlers), and a staff member's reply there to a message about #N
is #N's answer. Any other group or channel is left: at once when something else
is said there, else shortly after the bot was added (the code's message follows the
membership update), or not at all when a member of the staff group added it (to type
`/org group`). A staff command typed in a foreign group is answered nowhere: someone
adding the bot to a third-party group must not get a place where clients' names show.
"""

from __future__ import annotations

import logging
import re

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart, or_f
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, User

from bot.messaging.after_commit import AfterCommit
from bot.messaging.callbacks import ClientAction, RateAction, UrgentAction
from bot.messaging.notify import Actor, Content, Notifier
from bot.messaging.texts import Texts
from bot.services import companies as org
from bot.services.desk import Person
from bot.services.groups import GROUP_TYPES, GroupDesk, GroupMessage
from bot.services.records import Client, ClientGroup, Session
from handlers._common import STAFF, bot_username
from handlers._filters import at_once
from handlers._parse import content_of, reply_to_id, staff_actor
from handlers.client.buttons import client_button, urgent_button
from handlers.client.ratings import rate

log = logging.getLogger(__name__)

PRESENT = {"member", "administrator", "creator", "restricted"}
GONE = {"left", "kicked"}
_NEW = re.compile(r"^/new(@\w+)?\b\s*", re.IGNORECASE)


def _status(member_update: ChatMemberUpdated) -> str:
    new = member_update.new_chat_member.status
    return str(getattr(new, "value", new))


async def membership(
    member_update: ChatMemberUpdated, groups: GroupDesk, staff_in_group: bool
) -> None:
    """The bot added to (or removed from) a group or channel other than the staff group."""
    chat, status = member_update.chat, _status(member_update)
    if status in GONE:
        await groups.bot_removed(chat.id)
    elif status in PRESENT and chat.type in GROUP_TYPES:
        await groups.bot_added(chat.id, chat.title or "", by_staff=staff_in_group)
    elif status in PRESENT:
        log.warning("added to chat %s (%s), which is no group: leaving", chat.id, chat.type)
        await groups.leave(chat.id)


def person_of(user: User) -> Person:
    return Person(user_id=user.id, chat_id=user.id, first_name=user.first_name,
                  last_name=user.last_name, username=user.username,
                  language_code=user.language_code)


async def _at(bot: Bot) -> str:
    return "@" + (await bot_username(bot) or "")


async def start(message: Message, command: CommandObject, groups: GroupDesk, bot: Bot) -> None:
    """`/start@<bot> <code>`: Telegram sends it when the bot is added through the group
    invite; a valid code links the group, anything else in a foreign group is left."""
    user = message.from_user
    linked = await groups.link_by_code(
        message.chat.id, message.chat.title or "", (command.args or "").strip(),
        person_of(user) if user else None, await _at(bot))
    if linked is None and await groups.linked(message.chat.id) is None:
        await groups.leave(message.chat.id)


async def org_group(
    message: Message, command: CommandObject, groups: GroupDesk, session: Session,
    notifier: Notifier, texts: Texts, bot: Bot, staff_chat_id: int,
) -> None:
    """`/org group <name>` typed by staff in a group: linked to that company. A mistake is
    answered in the staff group (company names are not for a client's eyes)."""
    name = (command.args or "").strip()[len("group"):].strip()
    user = message.from_user
    try:
        company = await org.find(session, name)
    except org.CompanyError as error:
        await notifier.reply_staff(staff_chat_id, None, texts.staff(
            "org_reply", code=error.code, **error.context))
        return
    await groups.link(message.chat.id, message.chat.title or "", company,
                      person_of(user) if user else None, await _at(bot))


async def _org_group_by_staff(message: Message, staff_in_group: bool) -> bool:
    words = (message.text or "").split()
    return staff_in_group and len(words) > 1 and words[1].lower() == "group"


async def migrated_to(message: Message, groups: GroupDesk) -> None:
    """The old group's last word: it is a supergroup now, under a new id."""
    assert message.migrate_to_chat_id is not None
    await groups.migrated(message.chat.id, message.migrate_to_chat_id)


async def migrated_from(message: Message, groups: GroupDesk) -> None:
    """The new supergroup's first word: it was the group with that id."""
    assert message.migrate_from_chat_id is not None
    await groups.migrated(message.migrate_from_chat_id, message.chat.id)


async def retitled(message: Message, groups: GroupDesk) -> None:
    await groups.retitled(message.chat.id, message.new_chat_title or "")


async def linked_group(message: Message, groups: GroupDesk) -> bool | dict[str, ClientGroup]:
    """A message in a linked client group: the handler gets it as `group`."""
    group = await groups.linked(message.chat.id)
    return {"group": group} if group is not None else False


async def from_client(message: Message, staff_in_group: bool) -> bool:
    """Written by a person who is not staff (staff in a client group are staff there)."""
    user = message.from_user
    return (user is not None and not user.is_bot and message.sender_chat is None
            and not staff_in_group)


async def open_list(message: Message, group: ClientGroup, groups: GroupDesk) -> None:
    await groups.open_list(group, message.message_id)


def _mentions(message: Message, username: str, bot_id: int) -> bool:
    text = message.text or message.caption or ""
    if username and re.search(re.escape("@" + username) + r"\b", text, re.IGNORECASE):
        return True  # the @username as an entity or as plain text alike
    entities = message.entities or message.caption_entities or []
    return any(e.type == "text_mention" and e.user is not None and e.user.id == bot_id
               for e in entities)


def _without_mention(text: str, username: str) -> str:
    """What the client wrote, less the bot's @username and the /new command."""
    if username:
        text = re.sub(re.escape("@" + username) + r"\b[,:]?", "", text, flags=re.IGNORECASE)
    return _NEW.sub("", text.strip()).strip()


async def group_message(message: Message, group: ClientGroup, groups: GroupDesk,
                        bot: Bot) -> None:
    """What a client writes in a linked group (see bot/services/groups.py)."""
    assert message.from_user is not None  # from_client
    username = await bot_username(bot) or ""
    replied = message.reply_to_message
    to_bot = replied is not None and replied.from_user is not None \
        and replied.from_user.id == bot.id
    is_new = bool(_NEW.match(message.text or ""))
    content = content_of(message)
    content = Content(content.kind, _without_mention(content.text, username), content.chat_id,
                      content.message_id)
    await groups.message(group, GroupMessage(
        person=person_of(message.from_user), content=content,
        said=message.text or message.caption or "", reply_to=reply_to_id(message),
        addressed=is_new or to_bot or _mentions(message, username, bot.id)))


async def staff_writes(message: Message, staff_in_group: bool) -> bool | dict[str, Actor]:
    """A staff member's reply in a client group: the handler gets them as `actor`."""
    user = message.from_user
    if user is None or not staff_in_group or message.reply_to_message is None:
        return False
    return {"actor": staff_actor(user)}


async def staff_reply(message: Message, group: ClientGroup, actor: Actor,
                      groups: GroupDesk) -> None:
    """Staff answering in the group a message about #N (see bot/services/groups.py)."""
    await groups.staff_reply(group, actor, content_of(message), reply_to_id(message))


# -- the buttons of the incidents' messages in a client group ------------------------------

INCIDENT_BUTTONS = (ClientAction, UrgentAction, RateAction)


async def pressed_in_linked_group(
    callback: CallbackQuery, groups: GroupDesk
) -> bool | dict[str, ClientGroup]:
    """A button on a message in a linked client group: the handler gets it as `group`."""
    message = callback.message
    if message is None or message.chat.type not in GROUP_TYPES:
        return False
    group = await groups.linked(message.chat.id)
    return {"group": group} if group is not None else False


async def by_reporter(
    callback: CallbackQuery, callback_data: ClientAction | UrgentAction | RateAction,
    group: ClientGroup, groups: GroupDesk,
) -> bool | dict[str, Client]:
    """Pressed by the incident's reporter: the handler gets them as `client` (the private
    chat's handlers then act as for a press there, every check made again)."""
    client = await groups.reporter(group, callback_data.number, callback.from_user.id)
    return {"client": client} if client is not None else False


async def not_the_reporter(
    callback: CallbackQuery, callback_data: ClientAction | UrgentAction | RateAction,
    texts: Texts, after_commit: AfterCommit,
) -> None:
    """Someone else pressed it: an alert, nothing done."""
    language = texts.language_for(callback.from_user.language_code)
    after_commit(callback.answer(texts.client_plain(
        language, "error", code="reporter_only", number=callback_data.number),
        show_alert=True))


async def staff_or_service(message: Message) -> None:
    """Staff and service messages in a linked group: not a client's incident."""


async def foreign(message: Message, groups: GroupDesk) -> None:
    """Anything said in a group that is no client group: the bot leaves (a service message,
    "the bot was added", waits: the invite code's /start follows it)."""
    if content_of(message).kind != "other":
        await groups.leave(message.chat.id)


async def _other_chat(event: ChatMemberUpdated | Message, staff_chat_id: int) -> bool:
    chat = event.chat
    return chat.type != "private" and chat.id != staff_chat_id


def router() -> Router:
    router = Router(name=__name__)
    router.my_chat_member.register(membership, _other_chat)
    router.message.filter(_other_chat)
    router.message.register(migrated_to, at_once(F.migrate_to_chat_id))
    router.message.register(migrated_from, at_once(F.migrate_from_chat_id))
    router.message.register(retitled, at_once(F.new_chat_title), linked_group)
    router.message.register(start, CommandStart())
    router.message.register(org_group, Command("org"), _org_group_by_staff)
    router.message.register(open_list, Command("my"), linked_group)
    router.message.register(group_message, linked_group, from_client)
    router.message.register(staff_reply, linked_group, staff_writes)
    router.message.register(staff_or_service, linked_group)
    router.message.register(foreign)
    router.callback_query.filter(pressed_in_linked_group)
    router.callback_query.register(client_button, ClientAction.filter(), by_reporter)
    router.callback_query.register(urgent_button, UrgentAction.filter(), by_reporter)
    router.callback_query.register(rate, RateAction.filter(), by_reporter, flags=STAFF)
    router.callback_query.register(
        not_the_reporter, or_f(*(data.filter() for data in INCIDENT_BUTTONS)))
    return router
