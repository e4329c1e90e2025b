"""Staff manage the FAQ: /kb (list, add, edit, del, publish, stale), `/close 42 faq`,
the "add this phrasing" button.

`/kb add` and `/kb edit <id>` are a short dialog (aiogram FSM, per user and
chat): question, other phrasings, answer, optional screenshot; /cancel stops
it. Other commands typed meanwhile are left to their routers. The router comes
first (see handlers/__init__.py) so that dialog answers typed in an incident's
topic are not taken for answers to the client, and `/close N faq` is seen
before the ordinary /close.
"""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message, User

from bot.messaging.after_commit import AfterCommit
from bot.messaging.callbacks import KbAction
from bot.messaging.notify import Actor, Notifier
from bot.messaging.outbox import PRIORITY_REPLY
from bot.messaging.texts import Texts
from bot.services.desk import Desk, DeskError
from bot.services.faq import FaqError
from bot.services.faq_desk import FaqDesk
from handlers._common import STAFF, refuse_non_staff, reply, target_ticket, thread_of
from handlers._filters import from_staff, still_staff, with_sender

SKIP = {"-", "—", "нет", "no", "skip"}


class KbDialog(StatesGroup):
    question = State()
    alt = State()
    answer = State()
    image = State()


async def _not_a_command(message: Message) -> bool:
    return not (message.text or "").startswith("/")


async def _close_faq(message: Message) -> bool:
    """/close 42 faq [text], or /close faq [text] inside an incident's topic."""
    words = (message.text or "").split()[1:3]
    if words and words[0].lstrip("#").isdigit():
        words = words[1:]
    return bool(words) and words[0].lower() == "faq"


# -- /kb ------------------------------------------------------------------------------


async def kb_command(
    message: Message, command: CommandObject, faq: FaqDesk, notifier: Notifier, texts: Texts,
    state: FSMContext,
) -> None:
    words = (command.args or "").split()
    sub = words[0].lower() if words else ""
    target = words[1] if len(words) > 1 else ""
    try:
        if not sub:
            await reply(message, notifier, texts.staff("kb_list", infos=await faq.infos()))
        elif sub == "add":
            await state.set_state(KbDialog.question)
            await state.set_data({"id": None})
            await reply(message, notifier, texts.staff("kb_prompt", step="question"))
        elif sub == "edit" and target:
            article = await faq.editable(target)
            await state.set_state(KbDialog.question)
            await state.set_data({"id": article.id, "current": {
                "question": article.question, "alt": list(article.alt),
                "answer": article.answer, "image": article.image,
            }})
            await reply(message, notifier, texts.staff("kb_edit_start", article=article) + "\n\n"
                         + texts.staff("kb_prompt", step="question", current=article.question))
        elif sub in ("del", "delete") and target:
            await faq.delete(target)
            await reply(message, notifier, texts.staff("kb_deleted", id=target))
        elif sub == "publish" and target:
            article = await faq.publish(target)
            await reply(message, notifier, texts.staff("kb_published", article=article))
        elif sub == "stale":
            await reply(message, notifier, texts.staff(
                "kb_stale", rows=await faq.stale(), days=faq.service.config.stale_days))
        else:
            await reply(message, notifier, texts.staff("kb_usage"))
    except FaqError as error:
        await reply(message, notifier, texts.staff("kb_error", code=error.code, **error.context))


# -- the dialog -------------------------------------------------------------------------


async def cancel(message: Message, notifier: Notifier, texts: Texts, state: FSMContext) -> None:
    await state.clear()
    await reply(message, notifier, texts.staff("kb_cancelled"))


def _current(data: dict[str, Any], field: str) -> Any:
    return (data.get("current") or {}).get(field)


def _show(value: Any) -> str | None:
    if isinstance(value, list):
        return "; ".join(value) or None
    return value or None


async def _next(
    message: Message, notifier: Notifier, texts: Texts, state: FSMContext, step: State,
    data: dict[str, Any],
) -> None:
    await state.set_state(step)
    name = (step.state or "").split(":")[-1]
    await reply(message, notifier, texts.staff(
        "kb_prompt", step=name, current=_show(_current(data, name))))


async def _take_text(
    message: Message, notifier: Notifier, texts: Texts, state: FSMContext, field: str,
    text: str, step: State,
) -> None:
    """A required text of the dialog: "skip" keeps the article's current one, if any."""
    data = await state.get_data()
    if text in SKIP and _current(data, field):
        text = _current(data, field)
    if not text or text in SKIP:
        await reply(message, notifier, texts.staff("kb_error", code="need_text"))
        return
    data[field] = text
    await state.set_data(data)
    await _next(message, notifier, texts, state, step, data)


async def got_question(message: Message, notifier: Notifier, texts: Texts, state: FSMContext
                       ) -> None:
    await _take_text(message, notifier, texts, state, "question",
                     (message.text or "").strip(), KbDialog.alt)


async def got_alt(message: Message, notifier: Notifier, texts: Texts, state: FSMContext) -> None:
    data = await state.get_data()
    text = (message.text or "").strip()
    if text in SKIP:
        alt = _current(data, "alt") or []
    else:
        alt = [line.strip(" -•;") for line in text.splitlines() if line.strip(" -•;")]
    data["alt"] = alt
    await state.set_data(data)
    await _next(message, notifier, texts, state, KbDialog.answer, data)


async def got_answer(message: Message, notifier: Notifier, texts: Texts, state: FSMContext
                     ) -> None:
    await _take_text(message, notifier, texts, state, "answer",
                     (message.text or message.caption or "").strip(), KbDialog.image)


async def got_image(
    message: Message, user: User, notifier: Notifier, texts: Texts, state: FSMContext,
    faq: FaqDesk,
) -> None:
    data = await state.get_data()
    if message.photo:
        image = "tg:" + message.photo[-1].file_id
    elif (message.text or "").strip() in SKIP:
        image = _current(data, "image")
    else:
        await reply(message, notifier, texts.staff("kb_prompt", step="image"))
        return
    await state.clear()
    try:
        article = await faq.save(
            article_id=data.get("id"), question=data["question"], alt=data["alt"],
            answer=data["answer"], image=image, author=user.id,
        )
    except FaqError as error:
        await reply(message, notifier, texts.staff("kb_error", code=error.code, **error.context))
        return
    await reply(message, notifier, texts.staff(
        "kb_saved", article=article, created=data.get("id") is None,
        draft=article.id in faq.service.drafts))


async def dialog_refused(message: Message, notifier: Notifier, texts: Texts,
                         state: FSMContext) -> None:
    """A dialog step from someone who is no longer staff: the dialog ends, nothing saved."""
    await state.clear()
    user = message.from_user
    language = texts.language_for(user.language_code if user else None)
    await reply(message, notifier, texts.client(language, "error", code="staff_only"))


# -- /close 42 faq ----------------------------------------------------------------------


async def close_as_faq(
    message: Message, command: CommandObject, actor: Actor, desk: Desk, notifier: Notifier,
    texts: Texts, faq: FaqDesk,
) -> None:
    """Close the incident, then turn its resolution into a draft article."""
    args = command.args or ""
    try:
        ticket, words = await target_ticket(message, args.split(), desk, "close")
        after = args[args.lower().find("faq") + 3:].strip() or None  # "faq" is words[0]
        assert words and words[0].lower() == "faq"
        try:
            await desk.close(ticket.number, actor, after)
        except DeskError as error:
            if error.code != "ticket_not_open":  # closed already: the draft is still wanted
                raise
            if after:
                ticket.resolution = after
    except DeskError as error:
        await reply(message, notifier, texts.staff("error", code=error.code, **error.context))
        return
    try:
        article = await faq.draft_from_ticket(ticket, actor.user_id)
    except FaqError as error:
        await reply(message, notifier, texts.staff("kb_error", code=error.code, **error.context))
        return
    await reply(message, notifier, texts.staff("kb_draft", ticket=ticket, article=article))


# -- buttons ----------------------------------------------------------------------------


async def kb_button(
    callback: CallbackQuery, callback_data: KbAction, is_staff: bool, faq: FaqDesk,
    notifier: Notifier, texts: Texts, after_commit: AfterCommit,
) -> None:
    if not is_staff:
        refuse_non_staff(callback, texts, after_commit)
        return
    try:
        if callback_data.action != "alt":
            raise FaqError("button_invalid")
        article, words = await faq.accept_phrasing(callback_data.ref)
    except FaqError as error:
        after_commit(callback.answer(
            texts.staff_plain("kb_error", code=error.code, **error.context), show_alert=True))
        return
    message = callback.message
    if isinstance(message, Message):
        await notifier.out.call(
            message.chat.id, "editMessageReplyMarkup",
            {"message_id": message.message_id, "reply_markup": {"inline_keyboard": []}},
            priority=PRIORITY_REPLY,
        )
        await notifier.reply_staff(message.chat.id, thread_of(message),
                                   texts.staff("kb_phrasing_added", article=article, text=words))
    after_commit(callback.answer())


def router() -> Router:
    router = Router(name=__name__)
    router.message.register(kb_command, Command("kb"), from_staff, flags=STAFF)
    router.message.register(cancel, Command("cancel"), StateFilter(KbDialog))
    # Every step is staff's only: someone removed from the staff group mid-dialog is
    # stopped at their next answer (`dialog_refused`), not allowed to publish.
    router.message.register(got_question, StateFilter(KbDialog.question), _not_a_command,
                            still_staff)
    router.message.register(got_alt, StateFilter(KbDialog.alt), _not_a_command, still_staff)
    router.message.register(got_answer, StateFilter(KbDialog.answer), _not_a_command,
                            still_staff)
    router.message.register(got_image, StateFilter(KbDialog.image), _not_a_command,
                            still_staff, with_sender)
    router.message.register(dialog_refused, StateFilter(KbDialog), _not_a_command)
    router.message.register(close_as_faq, Command("close"), from_staff, _close_faq,
                            flags=STAFF)
    router.callback_query.register(kb_button, KbAction.filter(), flags=STAFF)
    return router
