"""Client groups as users live them, driven by the test: adding the bot to a group through
a `?startgroup=` link, writing to it there (mentions, replies), renaming the group, the
group becoming a supergroup, the bot removed. Each action queues the updates Telegram
would send."""

from __future__ import annotations

import re
import time

from bot.sandbox.emulator.chats import member_object
from bot.sandbox.emulator.protocol import Json, public_message
from bot.sandbox.emulator.state import ChatState
from bot.sandbox.emulator.users import UserActions, command_entities
from bot.sandbox.textparse import utf16_len

UPGRADED = "Bad Request: group chat was upgraded to a supergroup chat"
_MENTION = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")


def mention_entities(text: str) -> list[Json]:
    """A leading command's entity and one `mention` entity per @username, as Telegram
    marks them (offsets in UTF-16 code units)."""
    found = command_entities(text)
    for match in _MENTION.finditer(text):
        if found and match.start() < found[0]["length"]:
            continue  # the /command@bot's own mention
        found.append({"type": "mention", "offset": utf16_len(text[:match.start()]),
                      "length": utf16_len(match.group(0))})
    return found


class GroupActions(UserActions):
    """The test-side API for groups the bot serves as a member (not the staff group)."""

    @property
    def bot_username(self) -> str:
        return str(self.bot_user.get("username", ""))

    def add_bot_via_startgroup(
        self, user_id: int, chat_id: int, title: str, code: str | None,
        *, members: dict[int, str] | None = None,
    ) -> Json:
        """A user opens `https://t.me/<bot>?startgroup=<code>` and picks a group (a basic
        group, created with them as its creator if it is new): Telegram queues the bot's
        ``my_chat_member`` (added by that user), the ``new_chat_members`` service message
        and then `/start@<bot> <code>` from the user (without a code: no /start). Returns
        the Chat."""
        if chat_id not in self.chats:
            info: Json = {"id": chat_id, "type": "group", "title": title}
            self.chats[chat_id] = ChatState(info=info, members={user_id: "creator"})
            for uid, status in (members or {}).items():
                if uid not in self.users:
                    self.add_user(uid, f"User{uid}")
                self.chats[chat_id].members[uid] = status
        chat = self._chat_state(chat_id)
        user = self.users[user_id]
        old = chat.members.get(self.bot_id, "left")
        chat.members[self.bot_id] = "member"
        self._queue("my_chat_member", {
            "chat": dict(chat.info), "from": user, "date": int(time.time()),
            "old_chat_member": member_object(self.bot_user, old),
            "new_chat_member": member_object(self.bot_user, "member"),
        })
        service = self._new_message(chat, user)
        service["new_chat_members"] = [self.bot_user]
        service["plain"] = ""
        chat.messages[service["message_id"]] = service
        self._queue("message", public_message(service))
        if code is not None:
            self.send_message(user_id, f"/start@{self.bot_username} {code}", chat_id=chat_id)
        return dict(chat.info)

    def write_in_group(
        self, user_id: int, chat_id: int, text: str, *, reply_to: int | None = None,
        mention: bool = False,
    ) -> Json:
        """A member writes in a group; ``mention`` puts the bot's @username first. Mentions
        and a leading command get their entities."""
        if mention:
            text = f"@{self.bot_username} {text}"
        return self.send_message(user_id, text, chat_id=chat_id, reply_to=reply_to,
                                 entities=mention_entities(text))

    def rename_group(self, user_id: int, chat_id: int, title: str) -> Json:
        """The group gets a new title: the ``new_chat_title`` service message."""
        chat = self._chat_state(chat_id)
        chat.info["title"] = title
        msg = self._new_message(chat, self.users[user_id])
        msg["new_chat_title"] = title
        msg["plain"] = ""
        chat.messages[msg["message_id"]] = msg
        self._queue("message", public_message(msg))
        return msg

    def migrate_to_supergroup(self, chat_id: int, new_chat_id: int) -> Json:
        """The group becomes a supergroup under a new id: the members move, the old chat
        answers every send with 400 and ``migrate_to_chat_id``, and Telegram queues the
        service messages of both chats (``migrate_to_chat_id`` in the old one,
        ``migrate_from_chat_id`` in the new one). Returns the new Chat."""
        old = self._chat_state(chat_id)
        info: Json = {"id": new_chat_id, "type": "supergroup", "title": old.info["title"]}
        new = ChatState(info=info, members=dict(old.members))
        self.chats[new_chat_id] = new
        old.migrated_to = new_chat_id
        creator = next((uid for uid, s in old.members.items() if s == "creator"), None)
        sender = self.users.get(creator or 0, self.bot_user)
        for chat, key, value in ((old, "migrate_to_chat_id", new_chat_id),
                                 (new, "migrate_from_chat_id", chat_id)):
            msg = self._new_message(chat, sender)
            msg[key] = value
            msg["plain"] = ""
            chat.messages[msg["message_id"]] = msg
            self._queue("message", public_message(msg))
        return info

    def remove_bot(self, user_id: int, chat_id: int) -> None:
        """A member removes the bot from the group (``my_chat_member``: kicked, by them)."""
        chat = self._chat_state(chat_id)
        old = chat.members.get(self.bot_id, "left")
        chat.members[self.bot_id] = "kicked"
        self._queue("my_chat_member", {
            "chat": dict(chat.info), "from": self.users[user_id], "date": int(time.time()),
            "old_chat_member": member_object(self.bot_user, old),
            "new_chat_member": member_object(self.bot_user, "kicked"),
        })
