"""Every user-visible text comes from Jinja2 templates, Russian and English, HTML-escaped.

Each language folder holds `client.j2` and `staff.j2` (one macro per message,
called with keyword arguments) and `labels.j2` (button labels and the names of
statuses and severities, imported by the other two).
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import BytecodeCache, Environment, PackageLoader, StrictUndefined
from jinja2.bccache import Bucket

LANGUAGES = ("ru", "en")
# Telegram's language_code of people who most likely read Russian better than English.
_RUSSIAN_READERS = ("ru", "uk", "be", "kk", "ky", "uz", "tg", "hy", "az")


class _CompiledTemplates(BytecodeCache):
    """Templates compiled once per process, whatever the number of Texts (a test suite
    starts hundreds of bots; each compile takes ~0.5 s). Jinja checks the source's
    checksum before it uses the code."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if (code := self._code.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


class Texts:
    def __init__(self, default_language: str, timezone: str = "UTC") -> None:
        self.default_language = default_language
        self.zone = ZoneInfo(timezone)
        self._env = Environment(
            loader=PackageLoader("bot.messaging", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            bytecode_cache=_COMPILED,
        )
        self._env.filters["local"] = self.local_time
        self._env.filters["age"] = age

    @staticmethod
    @cache
    def shared(default_language: str, timezone: str = "UTC") -> Texts:
        """One Texts per language and time zone in a process, its modules made once (a
        test suite starts hundreds of bots: ~0.1 s each); a Texts never changes."""
        return Texts(default_language, timezone)

    def warm_up(self) -> None:
        """Compile every template now, so the first client does not wait for it (~0.4 s)."""
        for language in LANGUAGES:
            for audience in ("labels", "client", "staff"):
                self._module(language, audience)

    def local_time(self, moment: datetime) -> str:
        """A moment in the desk's time zone, as people write it: 23.11 14:05."""
        return moment.astimezone(self.zone).strftime("%d.%m %H:%M")

    def language_for(self, language_code: str | None) -> str:
        if not language_code:
            return self.default_language
        code = language_code.lower().split("-")[0]
        if code in LANGUAGES:
            return code
        return "ru" if code in _RUSSIAN_READERS else self.default_language

    @cache  # noqa: B019 - one Texts per process; the modules are immutable
    def _module(self, language: str, audience: str) -> Any:
        return self._env.get_template(f"{language}/{audience}.j2").make_module()

    def client(self, language: str, message: str, **context: Any) -> str:
        return self._render(language, "client", message, context)

    def staff(self, message: str, **context: Any) -> str:
        return self._render(self.default_language, "staff", message, context)

    def client_plain(self, language: str, message: str, **context: Any) -> str:
        """A client text for a field Telegram shows as plain text (a button's alert)."""
        return plain(self.client(language, message, **context))

    def staff_plain(self, message: str, **context: Any) -> str:
        """A staff text for a plain-text field (a topic's name, a button's alert)."""
        return plain(self.staff(message, **context))

    def label(self, language: str, name: str) -> Any:
        return getattr(self._module(language, "labels"), name)

    def _render(self, language: str, audience: str, message: str, context: dict[str, Any]) -> str:
        macro = getattr(self._module(language, audience), message)
        return str(macro(**context)).strip()


_TAG = re.compile(r"<[^>]*>")


def plain(rendered: str) -> str:
    """Rendered (autoescaped) HTML as plain text: the templates' own tags dropped, the
    escapes undone, so "A<b" shows as itself rather than as "A&lt;b". What a person wrote
    is escaped in `rendered`, so no tag removed here is theirs."""
    return html.unescape(_TAG.sub("", rendered))


def age(delta: timedelta) -> str:
    """A short duration that reads the same in both languages: 3d 4h, 2h 05m, 12m."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"
