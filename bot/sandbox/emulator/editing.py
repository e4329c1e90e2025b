"""Editing and deleting the bot's messages."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from bot.sandbox.emulator.messages import Messages
from bot.sandbox.emulator.protocol import MEDIA_KINDS, ApiError, Json, bad
from bot.sandbox.emulator.state import ChatState

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a previous content and reply markup of the message"
)


class Editing(Messages):
    """`editMessageText`, `editMessageCaption`, `editMessageReplyMarkup`, `deleteMessage(s)`."""

    def _editable(self, p: Json) -> tuple[ChatState, Json]:
        if p.get("inline_message_id"):
            raise bad("inline messages are not emulated")
        chat = self._resolve_chat(p.get("chat_id"))
        msg = chat.messages.get(int(p.get("message_id") or 0))
        if msg is None or msg.get("deleted"):
            raise bad("message to edit not found")
        if msg.get("from", {}).get("id") != self.bot_id or msg.get("service"):
            raise bad("message can't be edited")
        return chat, msg

    def _apply_edit(self, msg: Json, changes: Json, markup: Json | None) -> Json:
        """Apply an edit; an inline keyboard not passed again is removed, as in Telegram."""
        new_markup = markup if markup is not None and "inline_keyboard" in markup else None
        same_content = all(msg.get(k) == (v or None) for k, v in changes.items())
        if same_content and _norm_markup(msg.get("reply_markup")) == _norm_markup(new_markup):
            raise ApiError(400, NOT_MODIFIED)
        for k, v in changes.items():
            if v:
                msg[k] = v
            else:
                msg.pop(k, None)
        if new_markup is None:
            msg.pop("reply_markup", None)
        else:
            msg["reply_markup"] = new_markup
        msg["edit_date"] = int(time.time())
        msg["plain"] = msg.get("text", msg.get("caption", ""))
        self._emit(msg, "edited")
        return msg

    def _m_editMessageText(self, p: Json) -> Json:
        _chat, msg = self._editable(p)
        markup = self._markup(p)
        if "text" not in msg:
            raise bad("there is no text in the message to edit")
        plain, entities = self._text(p.get("text"), p.get("parse_mode"), p.get("entities"))
        return self._apply_edit(msg, {"text": plain, "entities": entities}, markup)

    def _m_editMessageCaption(self, p: Json) -> Json:
        _chat, msg = self._editable(p)
        markup = self._markup(p)
        if not any(k in msg for k in MEDIA_KINDS):
            raise bad("there is no caption in the message to edit")
        plain, entities = self._text(
            p.get("caption"), p.get("parse_mode"), p.get("caption_entities"), caption=True
        )
        return self._apply_edit(msg, {"caption": plain, "caption_entities": entities}, markup)

    def _m_editMessageReplyMarkup(self, p: Json) -> Json:
        _chat, msg = self._editable(p)
        markup = self._markup(p)
        return self._apply_edit(msg, {}, markup)

    def _m_deleteMessage(self, p: Json) -> bool:
        chat = self._resolve_chat(p.get("chat_id"))
        msg = chat.messages.get(int(p.get("message_id") or 0))
        if msg is None or msg.get("deleted"):
            raise bad("message to delete not found")
        mine = msg.get("from", {}).get("id") == self.bot_id
        if (
            not mine
            and chat.info["type"] != "private"
            and chat.members.get(self.bot_id) not in {"administrator", "creator"}
        ):
            raise bad("message can't be deleted")
        msg["deleted"] = True
        del chat.messages[msg["message_id"]]
        if mine:
            self._emit(msg, "deleted")
        return True

    def _m_deleteMessages(self, p: Json) -> bool:
        for mid in p.get("message_ids") or []:
            with contextlib.suppress(ApiError):
                self._m_deleteMessage({"chat_id": p.get("chat_id"), "message_id": mid})
        return True


def _norm_markup(markup: Json | None) -> Any:
    if not markup or not markup.get("inline_keyboard"):
        return None
    return json.dumps(markup, sort_keys=True)
