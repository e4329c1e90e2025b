"""The Bot API on the wire: which methods send, error answers, how request parameters
are decoded, and a message as an answer shows it (without the emulator's bookkeeping)."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import BodyPartReader, web

Json = dict[str, Any]

#: Methods that post a new message; the default target of faults and rate limits.
SEND_METHODS: frozenset[str] = frozenset(
    {
        "sendMessage",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
        "sendPhoto",
        "sendDocument",
        "sendVideo",
        "sendVoice",
        "sendAudio",
        "sendAnimation",
        "sendSticker",
        "sendMediaGroup",
        "sendContact",
        "sendLocation",
        "sendVenue",
        "sendPoll",
        "sendDice",
        "sendVideoNote",
    }
)

MEDIA_KINDS = ("photo", "document", "video", "voice", "audio", "animation", "sticker", "video_note")

_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "media",
        "commands",
        "scope",
        "allowed_updates",
        "menu_button",
        "message_ids",
        "results",
        "options",
        "permissions",
        "rights",
        "reaction",
    }
)
_INT_FIELDS = frozenset(
    {
        "message_id",
        "message_thread_id",
        "offset",
        "limit",
        "timeout",
        "user_id",
        "reply_to_message_id",
        "cache_time",
        "icon_color",
        "until_date",
        "duration",
        "width",
        "height",
        "max_connections",
        "length",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "show_alert",
        "disable_web_page_preview",
        "drop_pending_updates",
        "has_spoiler",
        "supports_streaming",
        "disable_content_type_detection",
        "show_caption_above_media",
        "only_if_banned",
        "revoke_messages",
        "is_big",
        "remove_caption",
    }
)
_CHAT_FIELDS = frozenset({"chat_id", "from_chat_id"})


class ApiError(Exception):
    """An error answer: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(self, code: int, description: str, parameters: Json | None = None) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> Json:
        body: Json = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


_PRIVATE_KEYS = ("plain", "deleted", "service")


def public_message(msg: Json) -> Json:
    """A message as Telegram would send it (without the emulator's bookkeeping keys)."""
    out = {k: v for k, v in msg.items() if k not in _PRIVATE_KEYS}
    reply = out.get("reply_to_message")
    if isinstance(reply, dict):
        out["reply_to_message"] = public_message(reply)
    return out


def public_result(result: Any) -> Any:
    if isinstance(result, dict) and "message_id" in result and "chat" in result:
        return public_message(result)
    if isinstance(result, list):
        return [public_result(r) for r in result]
    return result


def json_response(body: Json, status: int) -> web.Response:
    return web.Response(
        text=json.dumps(body, ensure_ascii=False),
        status=status,
        content_type="application/json",
    )


def _coerce(key: str, value: Any) -> Any:
    """Decode one form field the way the Bot API does."""
    if not isinstance(value, str):
        return value
    if key in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            if key == "reply_markup":
                raise bad("can't parse reply keyboard markup JSON object") from None
            raise bad(f"can't parse {key} JSON object") from None
    if key in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            raise bad(f"invalid {key} specified") from None
    if key in _BOOL_FIELDS:
        return value.strip().lower() in {"true", "1"}
    if key in _CHAT_FIELDS:
        v = value.strip()
        return int(v) if re.fullmatch(r"-?\d+", v) else v
    return value


async def read_params(request: web.Request) -> Json:
    """Read query string + urlencoded/multipart/JSON body into decoded parameters.
    Uploaded file parts go to ``params["_files"][name] = {filename, content_type, content}``."""
    raw: Json = dict(request.query)
    files: Json = {}
    ctype = request.content_type
    if request.method == "POST" and request.can_read_body:
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad("can't parse JSON") from None
            if isinstance(body, dict):
                raw.update(body)
        elif ctype.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    content = await part.read()
                    files[part.name] = {
                        "filename": part.filename,
                        "content_type": part.headers.get("Content-Type"),
                        "content": bytes(content),
                    }
                else:
                    raw[part.name] = await part.text()
        else:
            post = await request.post()
            for k, v in post.items():
                raw[k] = v if isinstance(v, str) else str(v)
    params = {k: _coerce(k, v) for k, v in raw.items()}
    if files:
        params["_files"] = files
    return params
