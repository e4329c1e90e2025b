"""Chats, members and forum topics as the bot reads and manages them."""

from __future__ import annotations

from bot.sandbox.emulator.protocol import Json, bad
from bot.sandbox.emulator.state import ChatState, EmulatorState


def member_object(user: Json, status: str) -> Json:
    obj: Json = {"status": status, "user": user}
    if status == "creator":
        obj["is_anonymous"] = False
    elif status == "administrator":
        obj.update(
            can_be_edited=False,
            is_anonymous=False,
            can_manage_chat=True,
            can_delete_messages=True,
            can_manage_video_chats=True,
            can_restrict_members=True,
            can_promote_members=False,
            can_change_info=True,
            can_invite_users=True,
            can_post_stories=False,
            can_edit_stories=False,
            can_delete_stories=False,
            can_send_welcome_messages=False,
            can_pin_messages=True,
            can_manage_topics=True,
        )
    elif status == "kicked":
        obj["until_date"] = 0
    elif status == "restricted":
        obj.update(
            dict.fromkeys((
                "can_send_messages", "can_send_audios", "can_send_documents", "can_send_photos",
                "can_send_videos", "can_send_video_notes", "can_send_voice_notes",
                "can_send_polls", "can_send_other_messages", "can_add_web_page_previews",
                "can_react_to_messages", "can_edit_tag", "can_change_info", "can_invite_users",
                "can_pin_messages", "can_manage_topics",
            ), False)
        )
        obj.update(is_member=True, until_date=0)
    return obj


class Chats(EmulatorState):
    """`getChat`, members and administrators, chat actions, forum topics."""

    def _m_getChat(self, p: Json) -> Json:
        chat = self._resolve_chat(p.get("chat_id"))
        info = dict(chat.info)
        info.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        return info

    def _m_getChatMember(self, p: Json) -> Json:
        chat = self._resolve_chat(p.get("chat_id"))
        uid = p.get("user_id")
        if uid == self.bot_id:
            return member_object(self.bot_user, chat.members.get(self.bot_id, "member"))
        if uid not in self.users:
            raise bad("user not found")
        if chat.info["type"] == "private":
            return member_object(self.users[uid], "member" if uid == chat.id else "left")
        return member_object(self.users[uid], chat.members.get(uid, "left"))

    def _m_getChatAdministrators(self, p: Json) -> list[Json]:
        chat = self._resolve_chat(p.get("chat_id"))
        if chat.info["type"] == "private":
            raise bad("there are no administrators in the private chat")
        out = []
        for uid, status in chat.members.items():
            if status in {"creator", "administrator"}:
                user = self.bot_user if uid == self.bot_id else self.users[uid]
                out.append(member_object(user, status))
        return out

    def _m_getChatMemberCount(self, p: Json) -> int:
        chat = self._resolve_chat(p.get("chat_id"))
        return sum(1 for s in chat.members.values() if s not in {"left", "kicked"})

    def _m_leaveChat(self, p: Json) -> bool:
        chat = self._resolve_chat(p.get("chat_id"))
        chat.members[self.bot_id] = "left"
        return True

    def _m_sendChatAction(self, p: Json) -> bool:
        chat = self._writable_chat(p)
        if not p.get("action"):
            raise bad("wrong parameter action in request")
        self._check_thread(chat, p)
        return True

    def _check_thread(self, chat: ChatState, p: Json) -> int | None:
        thread_id = p.get("message_thread_id")
        if thread_id and chat.is_forum and thread_id not in chat.topics:
            raise bad("message thread not found")
        return int(thread_id) if thread_id else None

    def _forum(self, p: Json) -> ChatState:
        chat = self._writable_chat(p)
        if not chat.is_forum:
            raise bad("the chat is not a forum")
        if chat.members.get(self.bot_id) not in {"administrator", "creator"}:
            raise bad("not enough rights to manage topics")
        return chat

    def _topic(self, chat: ChatState, p: Json) -> Json:
        tid = p.get("message_thread_id")
        if not tid or tid not in chat.topics:
            raise bad("TOPIC_ID_INVALID")
        return chat.topics[tid]

    def _m_createForumTopic(self, p: Json) -> Json:
        chat = self._forum(p)
        name = str(p.get("name") or "")
        if not name:
            raise bad("TOPIC_TITLE_EMPTY")
        if len(name) > 128:
            raise bad("TOPIC_TITLE_INVALID")
        color = int(p.get("icon_color") or 7322096)
        allowed = {7322096, 16766590, 13338331, 9367192, 16749490, 16478047}
        if color not in allowed:
            raise bad("TOPIC_ICON_COLOR_INVALID")
        msg = self._new_message(chat, self.bot_user, from_bot=True)
        tid = msg["message_id"]
        created: Json = {"name": name, "icon_color": color}
        if p.get("icon_custom_emoji_id"):
            created["icon_custom_emoji_id"] = p["icon_custom_emoji_id"]
        msg.update(
            message_thread_id=tid,
            is_topic_message=True,
            forum_topic_created=created,
            service=True,
            plain="",
        )
        chat.messages[tid] = msg
        topic: Json = {"message_thread_id": tid, **created}
        chat.topics[tid] = {**topic, "closed": False}
        return topic

    def _topic_service(self, chat: ChatState, tid: int, payload: Json) -> None:
        msg = self._new_message(chat, self.bot_user, thread_id=tid, from_bot=True)
        msg.update(payload, service=True, plain="")
        msg.pop("reply_to_message", None)
        chat.messages[msg["message_id"]] = msg

    def _m_editForumTopic(self, p: Json) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p)
        changes: Json = {}
        if p.get("name") and p["name"] != topic["name"]:
            if len(str(p["name"])) > 128:
                raise bad("TOPIC_TITLE_INVALID")
            changes["name"] = p["name"]
        if "icon_custom_emoji_id" in p and p["icon_custom_emoji_id"] != topic.get(
            "icon_custom_emoji_id"
        ):
            changes["icon_custom_emoji_id"] = p["icon_custom_emoji_id"]
        if not changes:
            raise bad("TOPIC_NOT_MODIFIED")
        topic.update(changes)
        self._topic_service(chat, topic["message_thread_id"], {"forum_topic_edited": changes})
        return True

    def _m_closeForumTopic(self, p: Json) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p)
        if topic["closed"]:
            raise bad("TOPIC_NOT_MODIFIED")
        topic["closed"] = True
        self._topic_service(chat, topic["message_thread_id"], {"forum_topic_closed": {}})
        return True

    def _m_reopenForumTopic(self, p: Json) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p)
        if not topic["closed"]:
            raise bad("TOPIC_NOT_MODIFIED")
        topic["closed"] = False
        self._topic_service(chat, topic["message_thread_id"], {"forum_topic_reopened": {}})
        return True

    def _m_deleteForumTopic(self, p: Json) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p)
        tid = topic["message_thread_id"]
        del chat.topics[tid]
        for mid, msg in list(chat.messages.items()):
            if msg.get("message_thread_id") == tid:
                msg["deleted"] = True
                del chat.messages[mid]
        return True

    def _m_getForumTopicIconStickers(self, p: Json) -> list[Json]:
        return []
