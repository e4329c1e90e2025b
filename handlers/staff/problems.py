"""Problems from the staff side: /problem, /link, /unlink, and their buttons (a card's
"link to problem #N", the surge digest's, the alert's "close the problem", the desk's
suggestion "make #N a problem and link all").

    /problem 101 <title>        incident #101 becomes a problem (in its topic: /problem <title>)
    /problem close 101 [text]   the problem and every linked incident closed
    /link 102 [103 110-140] 101 the incidents linked to problem #101 (the last number)
    /unlink 102                 #102 on its own again

Button data is untrusted: only staff may press them, and the problems desk checks every
number against the database.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.messaging.after_commit import AfterCommit
from bot.messaging.callbacks import ProblemAction, ProblemLink, ProblemSuggest
from bot.messaging.notify import Actor, Notifier
from bot.messaging.texts import Texts
from bot.services.desk import Desk, DeskError
from bot.services.problems import ProblemDesk
from handlers._common import STAFF, alert_error, refuse_non_staff, reply, target_ticket
from handlers._filters import from_staff
from handlers._parse import staff_actor


def _number(word: str) -> int | None:
    word = word.lstrip("#")
    return int(word) if word.isdigit() else None


def _ranges(words: list[str]) -> list[tuple[int, int]] | None:
    """"102", "#102", "110-140" as (first, last); None if a word is neither."""
    ranges = []
    for word in words:
        first, _, last = word.lstrip("#").partition("-")
        a, b = _number(first), _number(last) if last else _number(first)
        if a is None or b is None or b < a:
            return None
        ranges.append((a, b))
    return ranges


def _rest(args: str, skip: int) -> str | None:
    """The free text of a command after its first `skip` words, spacing kept."""
    parts = args.split(maxsplit=skip)
    return parts[skip].strip() or None if len(parts) > skip else None


async def problem_command(
    message: Message, command: CommandObject, actor: Actor, desk: Desk,
    problems: ProblemDesk, notifier: Notifier, texts: Texts,
) -> None:
    args = command.args or ""
    words = args.split()
    try:
        if words and words[0].lower() == "close":
            number = _number(words[1]) if len(words) > 1 else None
            if number is None:
                raise DeskError("problem_usage")
            await problems.close(number, actor, _rest(args, 2))
            return
        ticket, rest = await target_ticket(message, words, desk, command.command)
        title = _rest(args, len(words) - len(rest)) if rest else None
        await problems.make(ticket.number, title, actor)
    except DeskError as error:
        await reply(message, notifier, texts.staff("error", code=error.code, **error.context))


async def link_command(
    message: Message, command: CommandObject, actor: Actor, problems: ProblemDesk,
    notifier: Notifier, texts: Texts,
) -> None:
    words = (command.args or "").split()
    try:
        ranges = _ranges(words[:-1]) if len(words) >= 2 else None
        problem = _number(words[-1]) if words else None
        if not ranges or problem is None:
            raise DeskError("link_usage")
        await problems.link(ranges, problem, actor)
    except DeskError as error:
        await reply(message, notifier, texts.staff("error", code=error.code, **error.context))


async def unlink_command(
    message: Message, command: CommandObject, actor: Actor, desk: Desk,
    problems: ProblemDesk, notifier: Notifier, texts: Texts,
) -> None:
    try:
        ticket, _ = await target_ticket(message, (command.args or "").split(), desk,
                                        command.command)
        await problems.unlink(ticket.number, actor)
    except DeskError as error:
        await reply(message, notifier, texts.staff("error", code=error.code, **error.context))


async def problem_button(
    callback: CallbackQuery, callback_data: ProblemLink | ProblemAction | ProblemSuggest,
    problems: ProblemDesk, is_staff: bool, texts: Texts, after_commit: AfterCommit,
) -> None:
    """A card's or the digest's "link to problem #N", the alert's "close the problem", the
    suggestion's "make it a problem"."""
    if not is_staff:
        refuse_non_staff(callback, texts, after_commit)
        return
    actor = staff_actor(callback.from_user)
    try:
        if isinstance(callback_data, ProblemLink):
            await problems.link([(callback_data.first, callback_data.last)],
                                callback_data.problem, actor)
        elif isinstance(callback_data, ProblemSuggest):
            await problems.accept_suggestion(callback_data.number, actor)
        elif callback_data.action == "close":
            await problems.close(callback_data.number, actor, None)
        else:
            raise DeskError("button_invalid")
    except DeskError as error:
        alert_error(callback, texts, after_commit, error)
        return
    after_commit(callback.answer())


def router() -> Router:
    router = Router(name=__name__)
    router.message.filter(from_staff)
    router.message.register(problem_command, Command("problem"), flags=STAFF)
    router.message.register(link_command, Command("link"), flags=STAFF)
    router.message.register(unlink_command, Command("unlink"), flags=STAFF)
    for data in (ProblemLink, ProblemAction, ProblemSuggest):
        router.callback_query.register(problem_button, data.filter(), flags=STAFF)
    return router
