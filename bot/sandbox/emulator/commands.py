"""The bot's own settings (commands, menu button, name, description) and the answers
to callback queries."""

from __future__ import annotations

import re

from bot.sandbox.emulator.protocol import Json, bad
from bot.sandbox.emulator.state import EmulatorState


class Commands(EmulatorState):
    """The bot's profile and command menus, and `answerCallbackQuery`."""

    def _m_getMe(self, p: Json) -> Json:
        return dict(self.bot_user)

    def _m_logOut(self, p: Json) -> bool:
        return True

    def _m_close(self, p: Json) -> bool:
        return True

    @staticmethod
    def _scope_key(p: Json) -> str:
        scope = p.get("scope") or {"type": "default"}
        key = str(scope.get("type", "default"))
        if "chat_id" in scope:
            key += f":{scope['chat_id']}"
        if "user_id" in scope:
            key += f":{scope['user_id']}"
        if p.get("language_code"):
            key += f"@{p['language_code']}"
        return key

    def _m_setMyCommands(self, p: Json) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise bad('parameter "commands" is required')
        if len(commands) > 100:
            raise bad("too many commands")
        for c in commands:
            if not isinstance(c, dict) or not re.fullmatch(
                r"[a-z0-9_]{1,32}", str(c.get("command", ""))
            ):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", ""))) <= 256:
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._scope_key(p)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def _m_getMyCommands(self, p: Json) -> list[Json]:
        return list(self.commands.get(self._scope_key(p), []))

    def _m_deleteMyCommands(self, p: Json) -> bool:
        self.commands.pop(self._scope_key(p), None)
        return True

    def _m_setChatMenuButton(self, p: Json) -> bool:
        key = str(p.get("chat_id") or "default")
        self.menu_buttons[key] = p.get("menu_button") or {"type": "default"}
        return True

    def _m_getChatMenuButton(self, p: Json) -> Json:
        return self.menu_buttons.get(str(p.get("chat_id") or "default"), {"type": "default"})

    def _trivial(self, p: Json) -> bool:
        return True

    _m_setMyDescription = _trivial
    _m_setMyShortDescription = _trivial
    _m_setMyName = _trivial
    _m_setMyDefaultAdministratorRights = _trivial
    _m_setMessageReaction = _trivial
    _m_pinChatMessage = _trivial
    _m_unpinChatMessage = _trivial
    _m_unpinAllChatMessages = _trivial
    _m_unpinAllForumTopicMessages = _trivial

    def _m_getMyName(self, p: Json) -> Json:
        return {"name": self.bot_user["first_name"]}

    def _m_getMyDescription(self, p: Json) -> Json:
        return {"description": ""}

    def _m_getMyShortDescription(self, p: Json) -> Json:
        return {"short_description": ""}

    def _m_answerCallbackQuery(self, p: Json) -> bool:
        qid = str(p.get("callback_query_id") or "")
        query = self._callbacks.get(qid)
        if query is None or query["answered"]:
            raise bad("query is too old and response timeout expired or query ID is invalid")
        if len(str(p.get("text") or "")) > 200:
            raise bad("MESSAGE_TOO_LONG")
        query["answered"] = True
        self.callback_answers.append(
            {
                "callback_query_id": qid,
                "text": p.get("text"),
                "show_alert": bool(p.get("show_alert")),
                "url": p.get("url"),
                "cache_time": p.get("cache_time"),
                "user_id": query["user_id"],
                "chat_id": query["chat_id"],
                "message_id": query["message_id"],
                "data": query["data"],
            }
        )
        return True
