"""What users do, driven by the test: register, join groups, write, edit, press buttons,
block the bot. Each action queues the update Telegram would send."""

from __future__ import annotations

import re
import time

from bot.sandbox.emulator.chats import member_object
from bot.sandbox.emulator.faults import Fault, FaultInjection, FaultRule
from bot.sandbox.emulator.files import FileStore, guess_mime
from bot.sandbox.emulator.observing import Observing
from bot.sandbox.emulator.protocol import MEDIA_KINDS, Json, public_message
from bot.sandbox.emulator.state import ChatState
from bot.sandbox.textparse import utf16_len


class UserActions(Observing, FaultInjection, FileStore):
    """The test-side API that plays the users."""

    def add_user(
        self,
        user_id: int,
        first_name: str,
        username: str | None = None,
        language_code: str | None = "ru",
        last_name: str | None = None,
    ) -> Json:
        """Register a user (who has started the bot) and their private chat; returns the User."""
        user: Json = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self.users[user_id] = user
        info: Json = {"id": user_id, "type": "private", "first_name": first_name}
        if last_name:
            info["last_name"] = last_name
        if username:
            info["username"] = username
        if user_id in self.chats:
            self.chats[user_id].info = info
        else:
            self.chats[user_id] = ChatState(info=info, members={user_id: "member"})
        return user

    def add_group(
        self,
        chat_id: int,
        title: str,
        is_forum: bool = True,
        members: dict[int, str] | None = None,
        *,
        bot_status: str = "administrator",
    ) -> Json:
        """Register a supergroup (a forum by default); ``members`` maps user id → status
        (creator/administrator/member/restricted/left/kicked); the bot itself gets
        ``bot_status``. Members must be added with :meth:`add_user` first (or they are
        created with a generated name). Returns the Chat."""
        info: Json = {"id": chat_id, "type": "supergroup", "title": title}
        if is_forum:
            info["is_forum"] = True
        chat = ChatState(info=info)
        for uid, status in (members or {}).items():
            if uid not in self.users:
                self.add_user(uid, f"User{uid}")
            chat.members[uid] = status
        chat.members[self.bot_id] = bot_status
        self.chats[chat_id] = chat
        return info

    def set_member(self, chat_id: int, user_id: int, status: str) -> None:
        """Change a member's status in a group; queues a ``chat_member`` update (or
        ``my_chat_member`` for the bot itself)."""
        chat = self._chat_state(chat_id)
        old = chat.members.get(user_id, "left")
        chat.members[user_id] = status
        if old == status:
            return
        user = self.bot_user if user_id == self.bot_id else self.users[user_id]
        kind = "my_chat_member" if user_id == self.bot_id else "chat_member"
        self._queue(
            kind,
            {
                "chat": dict(chat.info),
                "from": user,
                "date": int(time.time()),
                "old_chat_member": member_object(user, old),
                "new_chat_member": member_object(user, status),
            },
        )

    def block_bot(self, user_id: int) -> FaultRule:
        """The user blocks the bot: a ``my_chat_member`` update (kicked) is queued and
        sends to the user answer 403 until :meth:`remove_fault` on the returned rule."""
        user = self.users[user_id]
        self._queue(
            "my_chat_member",
            {
                "chat": dict(self.chats[user_id].info),
                "from": user,
                "date": int(time.time()),
                "old_chat_member": member_object(self.bot_user, "member"),
                "new_chat_member": member_object(self.bot_user, "kicked"),
            },
        )
        return self.inject(Fault.forbidden_blocked(), chat_id=user_id, method="*")

    def _queue(self, kind: str, payload: Json) -> Json:
        update = {"update_id": next(self._update_ids), kind: payload}
        self._updates.append(update)
        self._touch()
        return update

    def raw_update(self, update: Json) -> Json:
        """Queue any update dict as is (an ``update_id`` is assigned if missing)."""
        update = dict(update)
        if "update_id" not in update:
            update["update_id"] = next(self._update_ids)
        self._updates.append(update)
        self._touch()
        return update

    def send_message(
        self,
        user_id: int,
        text: str | None = None,
        *,
        chat_id: int | None = None,
        thread_id: int | None = None,
        reply_to: int | None = None,
        photo: bool = False,
        document: str | Json | None = None,
        voice: bool = False,
        video: bool = False,
        sticker: bool = False,
        contact: Json | None = None,
        caption: str | None = None,
        entities: list[Json] | None = None,
    ) -> Json:
        """A user writes: queues a ``message`` update and returns the Message.

        ``chat_id`` defaults to the user's private chat; ``thread_id`` is a forum topic;
        ``reply_to`` a message id in the same chat. Media: ``photo``/``voice``/``video``/
        ``sticker`` flags, ``document`` (a file name or a Document dict), ``contact`` (a
        Contact dict); ``caption`` goes with media. A leading ``/command`` gets a
        ``bot_command`` entity unless ``entities`` are given."""
        if user_id not in self.users:
            raise KeyError(f"unknown user {user_id}: add_user first")
        chat = self._chat_state(user_id if chat_id is None else chat_id)
        if chat.info["type"] != "private" and chat.members.get(user_id, "left") in {
            "left",
            "kicked",
        }:
            raise ValueError(f"user {user_id} is not a member of chat {chat.id}")
        msg = self._new_message(chat, self.users[user_id], thread_id=thread_id, reply_to=reply_to)
        if text is not None:
            msg["text"] = text
            ents = entities if entities is not None else command_entities(text)
            if ents:
                msg["entities"] = ents
        if photo:
            msg["photo"] = [
                self._new_file("photo", {"width": 90, "height": 51}),
                self._new_file("photo"),
            ]
        if document is not None:
            meta = (
                document
                if isinstance(document, dict)
                else {"file_name": document, "mime_type": guess_mime(document)}
            )
            msg["document"] = self._new_file("document", meta)
        if voice:
            msg["voice"] = self._new_file("voice")
        if video:
            msg["video"] = self._new_file("video")
        if sticker:
            msg["sticker"] = self._new_file("sticker", {"emoji": "👍"})
        if contact is not None:
            msg["contact"] = {"first_name": self.users[user_id]["first_name"], **contact}
        if caption is not None:
            msg["caption"] = caption
        if "text" not in msg and not any(k in msg for k in (*MEDIA_KINDS, "contact")):
            raise ValueError("send_message needs text or media")
        msg["plain"] = msg.get("text", msg.get("caption", ""))
        chat.messages[msg["message_id"]] = msg
        self._queue("message", public_message(msg))
        return msg

    def edit_message(self, user_id: int, chat_id: int, message_id: int, new_text: str) -> Json:
        """A user edits their message: queues an ``edited_message`` update; returns it."""
        chat = self._chat_state(chat_id)
        msg = chat.messages.get(message_id)
        if msg is None or msg.get("from", {}).get("id") != user_id:
            raise KeyError(f"user {user_id} has no message {message_id} in chat {chat_id}")
        key = "text" if "text" in msg else "caption"
        msg[key] = new_text
        msg["plain"] = new_text
        msg["edit_date"] = int(time.time())
        if key == "text":
            ents = command_entities(new_text)
            if ents:
                msg["entities"] = ents
            else:
                msg.pop("entities", None)
        self._queue("edited_message", public_message(msg))
        return msg

    def press_button(
        self, user_id: int, chat_id: int, message_id: int, data: str, *, check: bool = True
    ) -> str:
        """A user presses an inline button: queues a ``callback_query`` update carrying the
        message; returns the callback query id. With ``check`` the message must carry a
        button with this callback_data; ``check=False`` forges any data (even for a
        missing message: the update then holds an inaccessible message)."""
        if user_id not in self.users:
            raise KeyError(f"unknown user {user_id}")
        chat = self._chat_state(chat_id)
        msg = chat.messages.get(message_id)
        if check:
            if msg is None or msg.get("deleted"):
                raise KeyError(f"no message {message_id} in chat {chat_id}")
            datas = [b.get("callback_data") for b in _buttons(msg)]
            if data not in datas:
                raise ValueError(f"message {message_id} has no button with data {data!r}: {datas}")
        qid = f"{self.bot_id % 100000}{next(self._callback_ids):012d}"
        if msg is not None and not msg.get("deleted"):
            message = public_message(msg)
        else:
            message = {"chat": dict(chat.info), "message_id": message_id, "date": 0}
        query: Json = {
            "id": qid,
            "from": self.users[user_id],
            "message": message,
            "chat_instance": str(abs(chat_id) * 7 + 13),
            "data": data,
        }
        self._callbacks[qid] = {
            "user_id": user_id,
            "chat_id": chat_id,
            "message_id": message_id,
            "data": data,
            "answered": False,
        }
        self._queue("callback_query", query)
        return qid

    def find_button(
        self, chat_id: int, label: str, *, thread_id: int | None = None
    ) -> tuple[int, str] | None:
        """The (message_id, callback_data) of the most recent bot message in the chat
        (thread) with an inline button whose text is ``label`` (case-insensitive,
        surrounding whitespace ignored)."""
        want = label.strip().casefold()
        for msg in reversed(self.sent(chat_id, thread_id)):
            for b in _buttons(msg):
                if b.get("text", "").strip().casefold() == want and "callback_data" in b:
                    return int(msg["message_id"]), str(b["callback_data"])
        return None


def command_entities(text: str) -> list[Json]:
    m = re.match(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,})?", text)
    if not m:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(m.group(0))}]


def _buttons(msg: Json) -> list[Json]:
    markup = msg.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row if isinstance(b, dict)]
