"""The buttons of the bot's messages to a client, in their private chat. Their data is
untrusted: each press acts only on that client's own incidents and messages (checked
against the database); anything else gets a polite refusal and changes nothing."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery

from bot.messaging.after_commit import AfterCommit
from bot.messaging.callbacks import ClientAction, ContactChoice, PickTicket, UrgentAction
from bot.messaging.notify import Actor, Notifier
from bot.messaging.outbox import PRIORITY_REPLY
from bot.messaging.texts import Texts
from bot.services.desk import Desk, DeskError
from bot.services.records import Client
from handlers._common import REMOVE_KEYBOARD
from handlers._filters import private_chat
from handlers._parse import content_of_payload


def _explain(
    callback: CallbackQuery, texts: Texts, language: str, error: DeskError,
    after_commit: AfterCommit,
) -> None:
    """Why a client's button did nothing, as an alert."""
    after_commit(callback.answer(
        texts.client_plain(language, "error", code=error.code, **error.context), show_alert=True
    ))


async def client_button(
    callback: CallbackQuery, callback_data: ClientAction, client: Client, desk: Desk,
    texts: Texts, after_commit: AfterCommit,
) -> None:
    try:
        if callback_data.action == "notfixed":
            await desk.reopen(callback_data.number,
                              Actor("client", client.user_id, client.display_name),
                              client=client)
        elif callback_data.action == "other":  # "mine is something else": its own incident
            await desk.not_the_problem(client, callback_data.number)
        else:
            raise DeskError("button_invalid")
    except DeskError as error:
        _explain(callback, texts, client.language, error, after_commit)
        return
    after_commit(callback.answer())


async def pick_ticket(
    callback: CallbackQuery, callback_data: PickTicket, client: Client, desk: Desk,
    texts: Texts, after_commit: AfterCommit,
) -> None:
    try:
        # The message must be one this client sent to the bot in this chat.
        original = await desk.sent_message(client, callback_data.message_id)
        if original is None:
            raise DeskError("button_invalid")
        await desk.pick(client, callback_data.number,
                        content_of_payload(original, client.chat_id, callback_data.message_id))
    except DeskError as error:
        _explain(callback, texts, client.language, error, after_commit)
        return
    after_commit(callback.answer())


async def skip_contact(
    callback: CallbackQuery, client: Client, notifier: Notifier, after_commit: AfterCommit
) -> None:
    await notifier.to_client(None, client, "contact_skipped", priority=PRIORITY_REPLY,
                             keyboard=REMOVE_KEYBOARD)
    after_commit(callback.answer())


async def urgent_button(
    callback: CallbackQuery, callback_data: UrgentAction, client: Client, desk: Desk,
    texts: Texts, after_commit: AfterCommit,
) -> None:
    """"This is urgent" on a registration message: only the incident's client, once."""
    try:
        await desk.client_urgent(client, callback_data.number)
    except DeskError as error:
        _explain(callback, texts, client.language, error, after_commit)
        return
    after_commit(callback.answer())


def router() -> Router:
    router = Router(name=__name__)
    router.callback_query.filter(private_chat)
    router.callback_query.register(client_button, ClientAction.filter())
    router.callback_query.register(pick_ticket, PickTicket.filter())
    router.callback_query.register(skip_contact, ContactChoice.filter())
    router.callback_query.register(urgent_button, UrgentAction.filter())
    return router
