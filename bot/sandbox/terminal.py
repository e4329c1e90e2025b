"""The sandbox terminal: chat with the bot as a client and as staff, in one terminal.

Input lines (a script file uses the same syntax, one per line)::

    > text                 the client writes in the private chat (same as ``client> text``)
    client> text
    client reply> text     the client replies to the bot's latest message in the private chat
    reply> text            same as ``client reply> text``
    staff> text            a staff member writes in the staff group (see "topics" below)
    staff#N> text          ... in the topic of ticket N (the topic whose name starts "#N")
    staff reply> text      ... as a reply to the bot's latest message in that topic
    client! Label          the client presses the most recent inline button labelled Label
    staff! Label           staff press it in the staff group (``staff#N! Label`` in topic N)
    # comment              ignored (echoed in script mode)
    help                   this text
    quit                   leave (also end of input)

Topics: in a forum staff group, ``staff>`` writes in the topic the bot posted in most
recently (falling back to the newest topic, then to the General topic); ``staff#N>``
picks the topic whose name starts with ``#N`` (the bot names topics ``#N · …``).

After each input the terminal waits until the bot is idle (``run_terminal``);
the bot's messages are printed as they are sent::

    [bot → client] Заявка #12 принята
        [Срочно] [Закрыть]
    [bot → staff #12] Новая заявка от Anna
    [bot → client] (edited) ...
"""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

from bot.sandbox.emulator import MEDIA_KINDS, FakeTelegram

__all__ = ["HELP", "Command", "parse_line", "render_message", "run_terminal", "where_label"]

_DOC = __doc__ or ""
HELP = (
    textwrap.dedent(_DOC.split("::", 1)[1].split("Topics:")[0]).strip("\n")
    + "\n\nTopics:"
    + _DOC.split("Topics:", 1)[1].split("After each input")[0].rstrip()
    + "\n"
)

_LINE_RE = re.compile(
    r"^(?P<actor>client|staff)?\s*(?:#(?P<topic>\d+)|\[#(?P<topic2>\d+)\])?"
    r"(?P<reply>\s+reply)?\s*(?P<op>[>!])\s?(?P<text>.*)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Command:
    """One parsed input line."""

    action: str  # "say" | "press" | "help" | "quit" | "comment" | "error"
    actor: str = "client"  # "client" | "staff"
    text: str = ""
    topic: int | None = None  # ticket number from staff#N
    reply: bool = False


def parse_line(line: str) -> Command:
    """Parse one input line (see the module docstring for the syntax)."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return Command("comment", text=stripped)
    low = stripped.lower()
    if low in {"help", "?"}:
        return Command("help")
    if low in {"quit", "exit", "q"}:
        return Command("quit")
    if low.startswith("reply>"):
        stripped = "client reply" + stripped[len("reply") :]
    m = _LINE_RE.match(stripped)
    if m is None or (m.group("actor") is None and (m.group("topic") or m.group("reply"))):
        return Command("error", text=f"cannot understand {stripped!r}; type help")
    actor = (m.group("actor") or "client").lower()
    topic_s = m.group("topic") or m.group("topic2")
    topic = int(topic_s) if topic_s else None
    if topic is not None and actor != "staff":
        return Command("error", text="only staff lines can name a ticket topic")
    text = m.group("text").strip()
    if not text:
        return Command("error", text="nothing to send")
    action = "press" if m.group("op") == "!" else "say"
    return Command(action, actor=actor, text=text, topic=topic, reply=bool(m.group("reply")))


def where_label(
    msg: dict[str, Any], tg: FakeTelegram, *, client_id: int, staff_chat_id: int
) -> str:
    """Who a bot message went to: "client", "staff", "staff #12", "user Anna (100)"..."""
    chat_id = msg["chat"]["id"]
    if chat_id == client_id:
        return "client"
    if chat_id == staff_chat_id:
        thread = msg.get("message_thread_id")
        chat = tg.chats.get(chat_id)
        topic = chat.topics.get(thread) if chat is not None and thread else None
        if topic is None:
            return "staff"
        name = str(topic["name"])
        m = re.match(r"#\d+", name)
        return f"staff {m.group(0)}" if m else f"staff «{name}»"
    if msg["chat"].get("type") == "private":
        return f"user {msg['chat'].get('first_name', '')} ({chat_id})"
    return f"chat {msg['chat'].get('title', chat_id)}"


def render_message(msg: dict[str, Any], kind: str, where: str) -> str:
    """A bot message as terminal lines: header, text, then one line per button row."""
    head = f"[bot → {where}]"
    if kind in {"edited", "deleted"}:
        head += f" ({kind})"
    media = next((k for k in MEDIA_KINDS if k in msg), None)
    if media is None and "contact" in msg:
        media = "contact"
    body = str(msg.get("plain", msg.get("text", msg.get("caption", ""))))
    if media is not None:
        name = msg.get("document", {}).get("file_name") if media == "document" else None
        tag = f"[{media}{': ' + name if name else ''}]"
        body = f"{tag} {body}".rstrip()
    lines = body.split("\n") if body else [""]
    out = [f"{head} {lines[0]}".rstrip()]
    out += [f"    {line}" for line in lines[1:]]
    markup = msg.get("reply_markup") or {}
    for row in markup.get("inline_keyboard", []):
        out.append("    " + " ".join(f"[{b.get('text', '')}]" for b in row))
    return "\n".join(out)


class _Terminal:
    def __init__(
        self, tg: FakeTelegram, client_id: int, staff_id: int, staff_chat_id: int, out: TextIO
    ) -> None:
        self.tg = tg
        self.client_id = client_id
        self.staff_id = staff_id
        self.staff_chat_id = staff_chat_id
        self.out = out

    def print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def on_bot_message(self, msg: dict[str, Any], kind: str) -> None:
        where = where_label(
            msg, self.tg, client_id=self.client_id, staff_chat_id=self.staff_chat_id
        )
        self.print(render_message(msg, kind, where))

    def staff_topic(self, number: int | None) -> int | None:
        """The thread a staff line goes to (None: the General topic / no forum)."""
        chat = self.tg.chats[self.staff_chat_id]
        if not chat.is_forum:
            return None
        if number is not None:
            found = re.compile(rf"#{number}(?!\d)")
            for topic in reversed(list(chat.topics.values())):
                if found.match(str(topic["name"])):
                    return int(topic["message_thread_id"])
            raise LookupError(f"no topic for ticket #{number}")
        for msg in reversed(self.tg.sent(self.staff_chat_id)):
            if msg.get("message_thread_id") in chat.topics:
                return int(msg["message_thread_id"])
        return int(list(chat.topics)[-1]) if chat.topics else None

    def execute(self, cmd: Command) -> str | None:
        """Perform a say/press command; returns an error text or None."""
        tg = self.tg
        if cmd.actor == "client":
            user, chat_id, thread = self.client_id, self.client_id, None
        else:
            user, chat_id = self.staff_id, self.staff_chat_id
            try:
                thread = self.staff_topic(cmd.topic)
            except LookupError as exc:
                return str(exc)
        if cmd.action == "press":
            found = tg.find_button(chat_id, cmd.text, thread_id=thread)
            if found is None and cmd.actor == "staff" and cmd.topic is None:
                found = tg.find_button(chat_id, cmd.text)
            if found is None:
                return f"no button [{cmd.text}] in the {cmd.actor} chat"
            tg.press_button(user, chat_id, found[0], found[1])
            return None
        reply_to = None
        if cmd.reply:
            last = tg.last(chat_id, thread)
            if last is None:
                return "nothing to reply to"
            reply_to = int(last["message_id"])
        tg.send_message(user, cmd.text, chat_id=chat_id, thread_id=thread, reply_to=reply_to)
        return None


def _ensure_parties(tg: FakeTelegram, client_id: int, staff_id: int, staff_chat_id: int) -> None:
    if client_id not in tg.users:
        tg.add_user(client_id, "Client")
    if staff_id not in tg.users:
        tg.add_user(staff_id, "Staff")
    if staff_chat_id not in tg.chats:
        tg.add_group(staff_chat_id, "Staff", is_forum=True, members={staff_id: "administrator"})
    elif tg.chats[staff_chat_id].members.get(staff_id, "left") in {"left", "kicked"}:
        tg.set_member(staff_chat_id, staff_id, "administrator")


async def run_terminal(
    tg: FakeTelegram,
    *,
    client_id: int,
    staff_id: int,
    staff_chat_id: int,
    script: TextIO | None,
    out: TextIO,
    stdin: TextIO | None = None,
    quiet: float = 0.3,
    idle_timeout: float = 15.0,
    settle: Callable[[float], Awaitable[None]] | None = None,
) -> int:
    """Run the terminal chat against ``tg`` (whose bot runs elsewhere in the process).

    With ``script`` its lines are played in order (each echoed) and the result is 0,
    or 1 if a line could not be performed; otherwise lines are read from ``stdin``
    (default ``sys.stdin``) in a worker thread until ``quit`` or end of input.
    Missing users and the staff group are created. After every line it waits until
    the bot is idle, at most ``idle_timeout`` seconds: until ``settle(timeout)`` returns
    for a bot that tells (bot/sandbox/settle.py), else until ``quiet`` seconds passed
    without a call."""
    _ensure_parties(tg, client_id, staff_id, staff_chat_id)
    term = _Terminal(tg, client_id, staff_id, staff_chat_id, out)
    unsubscribe = tg.on_bot_message(term.on_bot_message)
    loop = asyncio.get_running_loop()
    source = stdin if stdin is not None else sys.stdin
    failed = False
    try:
        if script is None:
            term.print(
                "Frontdesk sandbox: you are the client (>) and staff (staff>). "
                "Type help for commands, quit to leave."
            )
        while True:
            if script is not None:
                line = script.readline()
            else:
                line = await loop.run_in_executor(None, source.readline)
            if not line:
                break
            cmd = parse_line(line)
            if script is not None and line.strip():
                term.print(line.rstrip("\n"))
            if cmd.action == "comment":
                continue
            if cmd.action == "quit":
                break
            if cmd.action == "help":
                term.print(HELP.rstrip("\n"))
                continue
            error = cmd.text if cmd.action == "error" else term.execute(cmd)
            if error is not None:
                failed = True
                term.print(f"! {error}")
                continue
            try:
                if settle is not None:
                    await settle(idle_timeout)
                else:
                    await tg.wait_idle(quiet=quiet, timeout=idle_timeout)
            except TimeoutError:
                term.print(f"! the bot did not go idle within {idle_timeout:g}s")
    finally:
        unsubscribe()
    return 1 if failed and script is not None else 0
