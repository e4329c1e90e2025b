"""Sending: `sendMessage`, the media methods, albums, contacts, locations, copies and
forwards, validated the way Telegram validates them."""

from __future__ import annotations

import re
from typing import Any

from bot.sandbox.emulator.files import FileStore
from bot.sandbox.emulator.protocol import MEDIA_KINDS, Json, bad
from bot.sandbox.emulator.state import ChatState
from bot.sandbox.textparse import EntityParseError, parse_text, utf16_len

# The Bot API's media methods and the message field each fills (all sent by _send_media).
MEDIA_METHODS = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendVideo": "video",
    "sendVoice": "voice",
    "sendAudio": "audio",
    "sendAnimation": "animation",
    "sendVideoNote": "video_note",
    "sendSticker": "sticker",
}


class Messages(FileStore):
    """The methods that post a new message, and what they share."""

    def _reply_target(self, params: Json) -> tuple[int | None, bool]:
        rp = params.get("reply_parameters")
        allow = bool(params.get("allow_sending_without_reply"))
        mid = params.get("reply_to_message_id")
        if isinstance(rp, dict):
            mid = rp.get("message_id", mid)
            allow = allow or bool(rp.get("allow_sending_without_reply"))
        return (int(mid) if mid else None), allow

    def _bot_message(self, chat: ChatState, params: Json) -> Json:
        """A new message from the bot in `chat`: its topic and what it replies to, from the
        method's parameters."""
        reply_to, allow = self._reply_target(params)
        return self._new_message(
            chat, self.bot_user, thread_id=params.get("message_thread_id"),
            reply_to=reply_to, allow_missing_reply=allow, from_bot=True,
        )

    def _text(
        self, text: Any, parse_mode: Any, entities: Any, *, caption: bool = False
    ) -> tuple[str, list[Json]]:
        if text is None:
            text = ""
        try:
            plain, ents = parse_text(
                str(text),
                parse_mode or None,
                entities if isinstance(entities, list) else None,
                strict_html=self.strict_html,
            )
        except EntityParseError as exc:
            raise bad(f"can't parse entities: {exc}") from None
        if caption:
            if utf16_len(plain) > 1024:
                raise bad("message caption is too long")
        else:
            if not plain:
                raise bad("message text is empty")
            if utf16_len(plain) > 4096:
                raise bad("message is too long")
        return plain, ents

    def _markup(self, params: Json) -> Json | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad(
                    "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
                )
            for row in rows:
                for b in row:
                    if not isinstance(b, dict) or not b.get("text"):
                        raise bad(
                            "can't parse inline keyboard button: "
                            "Text buttons are unallowed in the inline keyboard"
                        )
                    if "callback_data" in b:
                        data = b["callback_data"]
                        if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
                            raise bad("BUTTON_DATA_INVALID")
                    if "url" in b and not re.match(r"(https?|tg)://", str(b["url"])):
                        raise bad("BUTTON_URL_INVALID")
                    actions = {
                        "callback_data",
                        "url",
                        "login_url",
                        "switch_inline_query",
                        "switch_inline_query_current_chat",
                        "callback_game",
                        "pay",
                        "web_app",
                        "copy_text",
                        "switch_inline_query_chosen_chat",
                    }
                    if not actions & set(b):
                        raise bad(
                            "can't parse inline keyboard button: "
                            "Text buttons are unallowed in the inline keyboard"
                        )
        return markup

    def _store_bot_message(self, chat: ChatState, msg: Json, markup: Json | None) -> Json:
        if markup is not None:
            if "inline_keyboard" in markup:
                msg["reply_markup"] = markup
            elif "keyboard" in markup:
                self.reply_keyboards[chat.id] = markup
            elif markup.get("remove_keyboard"):
                self.reply_keyboards.pop(chat.id, None)
        chat.messages[msg["message_id"]] = msg
        self._bot_messages.append(msg)
        self._emit(msg, "sent")
        return msg

    def _m_sendMessage(self, p: Json) -> Json:
        chat = self._writable_chat(p)
        markup = self._markup(p)
        plain, entities = self._text(p.get("text"), p.get("parse_mode"), p.get("entities"))
        msg = self._bot_message(chat, p)
        msg["text"] = plain
        if entities:
            msg["entities"] = entities
        lpo = p.get("link_preview_options")
        if isinstance(lpo, dict):
            msg["link_preview_options"] = lpo
        msg["plain"] = plain
        return self._store_bot_message(chat, msg, markup)

    def _send_media(self, kind: str, p: Json, meta: Json | None = None) -> Json:
        chat = self._writable_chat(p)
        markup = self._markup(p)
        files: Json = p.get("_files", {})
        value = p.get(kind)
        if value is None and kind in files:
            value = files[kind]
        obj = self._file_from_param(kind, value, files, meta)
        caption = p.get("caption")
        plain: str = ""
        entities: list[Json] = []
        if caption:
            plain, entities = self._text(
                caption, p.get("parse_mode"), p.get("caption_entities"), caption=True
            )
        msg = self._bot_message(chat, p)
        if kind == "photo":
            small = dict(obj, width=90, height=51)
            msg["photo"] = [small, obj]
        else:
            msg[kind] = obj
            if kind == "animation":
                msg["document"] = obj
        if plain:
            msg["caption"] = plain
            if entities:
                msg["caption_entities"] = entities
        msg["plain"] = plain
        return self._store_bot_message(chat, msg, markup)

    def _m_sendContact(self, p: Json) -> Json:
        chat = self._writable_chat(p)
        markup = self._markup(p)
        if not p.get("phone_number") or not p.get("first_name"):
            raise bad("phone number and first name must be non-empty")
        msg = self._bot_message(chat, p)
        msg["contact"] = {
            k: p[k] for k in ("phone_number", "first_name", "last_name", "vcard") if p.get(k)
        }
        msg["plain"] = ""
        return self._store_bot_message(chat, msg, markup)

    def _m_sendLocation(self, p: Json) -> Json:
        chat = self._writable_chat(p)
        markup = self._markup(p)
        msg = self._new_message(
            chat, self.bot_user, thread_id=p.get("message_thread_id"), from_bot=True
        )
        msg["location"] = {
            "latitude": float(p.get("latitude") or 0),
            "longitude": float(p.get("longitude") or 0),
        }
        msg["plain"] = ""
        return self._store_bot_message(chat, msg, markup)

    def _m_sendMediaGroup(self, p: Json) -> list[Json]:
        chat = self._writable_chat(p)
        media = p.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise bad("wrong number of media in the album: must be 2-10")
        files: Json = p.get("_files", {})
        prepared: list[tuple[str, Json, str, list[Json]]] = []
        for item in media:
            if not isinstance(item, dict) or item.get("type") not in {
                "photo",
                "video",
                "document",
                "audio",
            }:
                raise bad("wrong type of media in the album")
            obj = self._file_from_param(str(item["type"]), item.get("media"), files)
            plain = ""
            ents: list[Json] = []
            if item.get("caption"):
                plain, ents = self._text(
                    item["caption"],
                    item.get("parse_mode"),
                    item.get("caption_entities"),
                    caption=True,
                )
            prepared.append((str(item["type"]), obj, plain, ents))
        group_id = str(10**12 + next(self._file_ids))
        out = []
        for kind, obj, plain, ents in prepared:
            msg = self._bot_message(chat, p)
            msg["media_group_id"] = group_id
            msg[kind] = [obj] if kind == "photo" else obj
            if plain:
                msg["caption"] = plain
                if ents:
                    msg["caption_entities"] = ents
            msg["plain"] = plain
            out.append(self._store_bot_message(chat, msg, None))
        return out

    def _source_message(self, p: Json, what: str) -> tuple[ChatState, Json]:
        src_chat = self._resolve_chat(p.get("from_chat_id"), "from_chat_id")
        src = src_chat.messages.get(int(p.get("message_id") or 0))
        if src is None or src.get("deleted"):
            raise bad(f"message to {what} not found")
        return src_chat, src

    def _m_copyMessage(self, p: Json) -> Json:
        src_chat, src = self._source_message(p, "copy")
        chat = self._writable_chat(p)
        markup = self._markup(p)
        if src.get("service"):
            raise bad("message can't be copied")
        msg = self._bot_message(chat, p)
        content_keys = (
            *MEDIA_KINDS,
            "text",
            "entities",
            "contact",
            "location",
            "caption",
            "caption_entities",
            "has_media_spoiler",
        )
        for key in content_keys:
            if key in src:
                msg[key] = src[key]
        if "caption" in p or p.get("remove_caption"):
            msg.pop("caption", None)
            msg.pop("caption_entities", None)
            if p.get("caption") and not p.get("remove_caption"):
                plain, ents = self._text(
                    p["caption"], p.get("parse_mode"), p.get("caption_entities"), caption=True
                )
                msg["caption"] = plain
                if ents:
                    msg["caption_entities"] = ents
        msg["plain"] = msg.get("text", msg.get("caption", ""))
        msg["copied_from"] = {"chat_id": src_chat.id, "message_id": src["message_id"]}
        self._store_bot_message(chat, msg, markup)
        return {"message_id": msg["message_id"]}

    def _m_forwardMessage(self, p: Json) -> Json:
        _src_chat, src = self._source_message(p, "forward")
        chat = self._writable_chat(p)
        if src.get("service"):
            raise bad("message can't be forwarded")
        msg = self._new_message(
            chat, self.bot_user, thread_id=p.get("message_thread_id"), from_bot=True
        )
        msg["forward_origin"] = {"type": "user", "date": src["date"], "sender_user": src["from"]}
        for key in (*MEDIA_KINDS, "text", "entities", "contact", "caption", "caption_entities"):
            if key in src:
                msg[key] = src[key]
        msg["plain"] = msg.get("text", msg.get("caption", ""))
        return self._store_bot_message(chat, msg, None)
