"""Inline buttons. Their data is untrusted: each press is checked against the database.

Staff buttons need a staff member (`is_staff`); a client's buttons act only on
that client's own incidents and messages. Anything else gets a polite refusal
and changes nothing.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery

from bot.domain.enums import Severity
from bot.messaging.callbacks import (
    ClientAction,
    ContactChoice,
    PickTicket,
    TicketAction,
    UrgentAction,
)
from bot.messaging.notify import Actor, Content, Notifier
from bot.messaging.outbox import PRIORITY_REPLY
from bot.messaging.texts import Texts
from bot.services.desk import Desk, DeskError
from handlers._parse import MEDIA_KINDS, person_of, staff_actor
from handlers.client import REMOVE_KEYBOARD
from storage.repos.inbox import Inbox

router = Router(name=__name__)
SEVERITIES = frozenset(s.value for s in Severity)


async def _explain(callback: CallbackQuery, texts: Texts, language: str, error: DeskError) -> None:
    """Why a client's button did nothing, as an alert."""
    await callback.answer(
        texts.client(language, "error", code=error.code, **error.context), show_alert=True
    )


async def _refuse(callback: CallbackQuery, texts: Texts, language: str) -> None:
    await callback.answer(texts.client(language, "error", code="button_invalid"), show_alert=True)


@router.callback_query(TicketAction.filter())
async def staff_button(
    callback: CallbackQuery, callback_data: TicketAction, desk: Desk, is_staff: bool,
    texts: Texts,
) -> None:
    language = texts.language_for(callback.from_user.language_code)
    if not is_staff:
        await callback.answer(texts.client(language, "error", code="staff_only"), show_alert=True)
        return
    actor = staff_actor(callback.from_user)
    try:
        if callback_data.action == "take":
            await desk.take(callback_data.number, actor)
        elif callback_data.action == "close":
            await desk.close(callback_data.number, actor, None)
        elif callback_data.action == "reopen":
            await desk.reopen(callback_data.number, actor)
        elif callback_data.action.startswith("sev_") and callback_data.action[4:] in SEVERITIES:
            await desk.set_severity(callback_data.number, actor,
                                    Severity(callback_data.action[4:]))
        else:
            raise DeskError("button_invalid")
    except DeskError as error:
        await callback.answer(
            texts.staff("error", code=error.code, **error.context), show_alert=True
        )
        return
    await callback.answer()


@router.callback_query(ClientAction.filter())
async def client_button(
    callback: CallbackQuery, callback_data: ClientAction, desk: Desk, notifier: Notifier,
    texts: Texts,
) -> None:
    chat_id = callback.message.chat.id if callback.message else callback.from_user.id
    client, _ = await desk.client_for(person_of(callback.from_user, chat_id))
    if callback_data.action != "notfixed":
        await _refuse(callback, texts, client.language)
        return
    actor_name = client.display_name
    try:
        await desk.reopen(callback_data.number, Actor("client", client.user_id, actor_name),
                          client=client)
    except DeskError as error:
        await _explain(callback, texts, client.language, error)
        return
    await callback.answer()


@router.callback_query(PickTicket.filter())
async def pick_ticket(
    callback: CallbackQuery, callback_data: PickTicket, desk: Desk, texts: Texts
) -> None:
    chat_id = callback.message.chat.id if callback.message else callback.from_user.id
    client, _ = await desk.client_for(person_of(callback.from_user, chat_id))
    # The message must be one this client sent to the bot in this chat.
    original = await Inbox(desk.session).find_message(client.chat_id, callback_data.message_id)
    if original is None or original.get("from", {}).get("id") != client.user_id:
        await _refuse(callback, texts, client.language)
        return
    content = Content(
        kind=_kind_of(original), text=original.get("text") or original.get("caption") or "",
        chat_id=client.chat_id, message_id=callback_data.message_id,
    )
    try:
        await desk.pick(client, callback_data.number, content)
    except DeskError as error:
        await _explain(callback, texts, client.language, error)
        return
    await callback.answer()


@router.callback_query(ContactChoice.filter())
async def skip_contact(
    callback: CallbackQuery, desk: Desk, notifier: Notifier
) -> None:
    chat_id = callback.message.chat.id if callback.message else callback.from_user.id
    client, _ = await desk.client_for(person_of(callback.from_user, chat_id))
    await notifier.to_client(None, client, "contact_skipped", priority=PRIORITY_REPLY,
                             keyboard=REMOVE_KEYBOARD)
    await callback.answer()


@router.callback_query(UrgentAction.filter())
async def urgent_button(
    callback: CallbackQuery, callback_data: UrgentAction, desk: Desk, texts: Texts
) -> None:
    """"This is urgent" on a registration message: only the incident's client, once."""
    chat_id = callback.message.chat.id if callback.message else callback.from_user.id
    if chat_id != callback.from_user.id:  # a client's button lives in their private chat
        await _refuse(callback, texts, texts.language_for(callback.from_user.language_code))
        return
    client, _ = await desk.client_for(person_of(callback.from_user, chat_id))
    try:
        await desk.client_urgent(client, callback_data.number)
    except DeskError as error:
        await _explain(callback, texts, client.language, error)
        return
    await callback.answer()


@router.callback_query()
async def unknown_button(callback: CallbackQuery, texts: Texts) -> None:
    """Forged or outdated data that matches no button of ours."""
    await _refuse(callback, texts, texts.language_for(callback.from_user.language_code))


def _kind_of(message: dict[str, object]) -> str:
    for kind in MEDIA_KINDS:
        if kind in message:
            return kind
    return "text" if "text" in message else "other"
