"""Telegram text formatting: HTML / MarkdownV2 parsing into (text, entities).

Mirrors what the Bot API does with ``parse_mode``: the markup is turned into plain
text plus a list of ``MessageEntity`` dicts whose offsets and lengths are counted in
UTF-16 code units. Malformed markup raises :class:`EntityParseError` with a message
worded like Telegram's ("Unsupported start tag "foo" at byte offset 3", ...); the
caller prefixes it with ``Bad Request: can't parse entities: ``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["EntityParseError", "parse_html", "parse_markdown_v2", "parse_text", "utf16_len"]


class EntityParseError(ValueError):
    """Markup could not be parsed; ``str(exc)`` is Telegram's explanation."""


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (Telegram's unit for lengths and offsets)."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


_HTML_TAGS: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]*);")
_ATTR_RE = re.compile(
    r"""\s*([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*(?:=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+))?"""
)


def _decode_entity(text: str, i: int, strict: bool) -> tuple[str, int] | None:
    """Decode the character entity at ``text[i] == '&'``; returns (char, next index)."""
    m = _ENTITY_RE.match(text, i)
    if m is not None:
        body = m.group(1)
        if body.startswith(("#x", "#X")):
            code = int(body[2:], 16)  # noqa: FURB166 - "#x41", not "0x41"
        elif body.startswith("#"):
            code = int(body[1:])
        elif body in _NAMED_ENTITIES:
            return _NAMED_ENTITIES[body], m.end()
        else:
            code = -1
        if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            return chr(code), m.end()
    if strict:
        raise EntityParseError(
            f"Character entity expected at byte offset {_byte_offset(text, i)}: "
            "use &amp; for a literal '&' (only &lt; &gt; &amp; &quot; and numeric "
            "entities are supported)"
        )
    return None


def _parse_attrs(raw: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    pos = 0
    raw = raw.strip()
    while pos < len(raw):
        m = _ATTR_RE.match(raw, pos)
        if m is None or m.end() == pos:
            raise EntityParseError("Expected equal sign in declaration of an attribute")
        value = m.group(2) or ""
        if value[:1] in {'"', "'"}:
            value = value[1:-1]
        attrs[m.group(1).lower()] = _unescape_attr(value)
        pos = m.end()
    return attrs


def _unescape_attr(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "&":
            dec = _decode_entity(value, i, strict=False)
            if dec is not None:
                out.append(dec[0])
                i = dec[1]
                continue
        out.append(value[i])
        i += 1
    return "".join(out)


def parse_html(text: str, *, strict: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram's HTML subset. ``strict`` also rejects a bare ``&`` (Telegram
    itself lets it through, but a bot that does not escape user text is buggy)."""
    out: list[str] = []
    out_len = 0  # UTF-16 length of the text produced so far
    stack: list[tuple[str, int, dict[str, str]]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "&":
            dec = _decode_entity(text, i, strict)
            if dec is not None:
                out.append(dec[0])
                out_len += utf16_len(dec[0])
                i = dec[1]
                continue
        if c != "<":
            # copy a run of ordinary characters
            j = i + 1
            while j < n and text[j] not in "<&":
                j += 1
            chunk = text[i:j]
            out.append(chunk)
            out_len += utf16_len(chunk)
            i = j
            continue
        offset = _byte_offset(text, i)
        end = text.find(">", i)
        if end < 0:
            kind = "end" if text.startswith("</", i) else "start"
            raise EntityParseError(f"Unclosed {kind} tag at byte offset {offset}")
        if text.startswith("</", i):
            name = text[i + 2 : end].strip().lower()
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {offset}")
            top, start, attrs = stack.pop()
            if name != top:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {offset}, expected "</{top}>", '
                    f'found "</{name}>"'
                )
            entity = _make_entity(top, start, out_len - start, attrs)
            if entity is not None:
                entities.append(entity)
            i = end + 1
            continue
        inner = text[i + 1 : end]
        m = re.match(r"[a-zA-Z][a-zA-Z0-9-]*", inner)
        name = m.group(0).lower() if m else ""
        after = inner[len(name) : len(name) + 1]
        if name not in _HTML_TAGS or after not in {"", " ", "\t", "\n", "\r"}:
            shown = inner.split()[0] if inner.split() else ""
            raise EntityParseError(f'Unsupported start tag "{shown}" at byte offset {offset}')
        attrs = _parse_attrs(inner[len(name) :])
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {offset}'
            )
        if name == "tg-emoji" and not attrs.get("emoji-id"):
            raise EntityParseError(
                f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {offset}'
            )
        stack.append((name, out_len, attrs))
        i = end + 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    # <pre><code class="language-x"> → a single pre entity with a language
    result: list[dict[str, Any]] = []
    for e in entities:
        if e["type"] == "code" and e.get("_lang"):
            pre = next(
                (
                    p
                    for p in entities
                    if p["type"] == "pre"
                    and p["offset"] == e["offset"]
                    and p["length"] == e["length"]
                ),
                None,
            )
            if pre is not None:
                pre["language"] = e["_lang"]
                continue
        e.pop("_lang", None)
        result.append(e)
    for e in result:
        e.pop("_lang", None)
    result.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), result


def _make_entity(
    tag: str, offset: int, length: int, attrs: dict[str, str]
) -> dict[str, Any] | None:
    if length <= 0:
        return None
    kind = _HTML_TAGS[tag]
    entity: dict[str, Any] = {"type": kind, "offset": offset, "length": length}
    if tag == "a":
        href = attrs.get("href", "")
        if not href:
            return None
        m = re.fullmatch(r"tg://user\?id=(\d+)", href)
        if m:
            return {
                "type": "text_mention",
                "offset": offset,
                "length": length,
                "user": {"id": int(m.group(1)), "is_bot": False, "first_name": ""},
            }
        entity["url"] = href
    elif tag == "code":
        cls = attrs.get("class", "")
        if cls.startswith("language-"):
            entity["_lang"] = cls[len("language-") :]
    elif tag == "tg-emoji":
        entity["custom_emoji_id"] = attrs["emoji-id"]
    elif tag == "blockquote" and "expandable" in attrs:
        entity["type"] = "expandable_blockquote"
    return entity


_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!")


def parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse MarkdownV2: ``*bold* _italic_ __underline__ ~strike~ ||spoiler||
    `code` ```pre``` [text](url)`` and backslash escapes; an unescaped reserved
    character is an error, as in Telegram."""
    out: list[str] = []
    out_len = 0
    stack: list[tuple[str, int, int]] = []  # (marker, start utf16, byte offset)
    entities: list[dict[str, Any]] = []
    kinds = {
        "*": "bold",
        "_": "italic",
        "__": "underline",
        "~": "strikethrough",
        "||": "spoiler",
        "[": "text_link",
    }
    i = 0
    n = len(text)

    def emit(s: str) -> None:
        nonlocal out_len
        out.append(s)
        out_len += utf16_len(s)

    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            emit(text[i + 1])
            i += 2
            continue
        if c == "`":
            fence = "```" if text.startswith("```", i) else "`"
            end = i + len(fence)
            buf: list[str] = []
            while end < n and not text.startswith(fence, end):
                if text[end] == "\\" and end + 1 < n:
                    buf.append(text[end + 1])
                    end += 2
                else:
                    buf.append(text[end])
                    end += 1
            if end >= n:
                raise EntityParseError(
                    f"Can't find end of {'Pre' if fence == '```' else 'Code'} entity "
                    f"at byte offset {_byte_offset(text, i)}"
                )
            body = "".join(buf)
            entity: dict[str, Any] = {"type": "code", "offset": out_len}
            if fence == "```":
                entity["type"] = "pre"
                first, sep, rest = body.partition("\n")
                if sep and first and " " not in first:
                    entity["language"] = first
                    body = rest
            emit(body)
            entity["length"] = utf16_len(body)
            if entity["length"]:
                entities.append(entity)
            i = end + len(fence)
            continue
        marker = ""
        if text.startswith("__", i):
            marker = "__"
        elif text.startswith("||", i):
            marker = "||"
        elif c in "*_~":
            marker = c
        if marker:
            if stack and stack[-1][0] == marker:
                m, start, _ = stack.pop()
                if out_len > start:
                    entities.append({"type": kinds[m], "offset": start, "length": out_len - start})
            else:
                stack.append((marker, out_len, _byte_offset(text, i)))
            i += len(marker)
            continue
        if c == "[":
            stack.append(("[", out_len, _byte_offset(text, i)))
            i += 1
            continue
        if c == "]" and stack and stack[-1][0] == "[":
            _, start, off = stack.pop()
            if not text.startswith("(", i + 1):
                raise EntityParseError(f"Can't find end of a url at byte offset {off}")
            close = text.find(")", i + 2)
            if close < 0:
                raise EntityParseError(f"Can't find end of a url at byte offset {off}")
            url = text[i + 2 : close].replace("\\)", ")").replace("\\\\", "\\")
            if out_len > start:
                entities.append(
                    {"type": "text_link", "offset": start, "length": out_len - start, "url": url}
                )
            i = close + 1
            continue
        if c in _MD2_RESERVED:
            raise EntityParseError(
                f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
            )
        emit(c)
        i += 1
    if stack:
        names = {
            "*": "Bold",
            "_": "Italic",
            "__": "Underline",
            "~": "Strikethrough",
            "||": "Spoiler",
            "[": "TextUrl",
        }
        m, _, off = stack[-1]
        raise EntityParseError(f"Can't find end of {names[m]} entity at byte offset {off}")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _parse_markdown_legacy(text: str) -> tuple[str, list[dict[str, Any]]]:
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    kinds = {"*": "bold", "_": "italic", "`": "code"}
    i = 0
    out_len = 0
    while i < len(text):
        c = text[i]
        if c in kinds:
            end = text.find(c, i + 1)
            if end < 0:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}"
                )
            body = text[i + 1 : end]
            if body:
                entities.append({"type": kinds[c], "offset": out_len, "length": utf16_len(body)})
            out.append(body)
            out_len += utf16_len(body)
            i = end + 1
            continue
        out.append(c)
        out_len += utf16_len(c)
        i += 1
    return "".join(out), entities


def _strip(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram trims leading and trailing whitespace; entities follow the text."""
    stripped = text.lstrip()
    shift = utf16_len(text) - utf16_len(stripped)
    stripped = stripped.rstrip()
    total = utf16_len(stripped)
    result: list[dict[str, Any]] = []
    for e in entities:
        start = max(e["offset"] - shift, 0)
        end = min(e["offset"] + e["length"] - shift, total)
        if end > start:
            result.append({**e, "offset": start, "length": end - start})
    return stripped, result


def parse_text(
    text: str,
    parse_mode: str | None,
    entities: list[dict[str, Any]] | None = None,
    *,
    strict_html: bool = True,
) -> tuple[str, list[dict[str, Any]]]:
    """Turn ``text`` as a bot sent it into the message text and entities Telegram
    would store (whitespace-trimmed). Explicit ``entities`` win over ``parse_mode``."""
    if entities:
        return _strip(text, [dict(e) for e in entities])
    mode = (parse_mode or "").lower()
    if mode == "html":
        plain, ents = parse_html(text, strict=strict_html)
    elif mode == "markdownv2":
        plain, ents = parse_markdown_v2(text)
    elif mode == "markdown":
        plain, ents = _parse_markdown_legacy(text)
    elif mode:
        raise EntityParseError(f'Unsupported parse_mode "{parse_mode}"')
    else:
        plain, ents = text, []
    return _strip(plain, ents)
