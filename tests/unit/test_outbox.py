"""One splitter for texts and captions (bot/messaging/outbox.py), judged by the emulator's
HTML parser: every part is HTML Telegram accepts, within the limit as Telegram counts it,
and the parts together say everything the message said."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest

from bot.messaging.outbox import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    OutboxWriter,
    cut_html,
    split_html,
)
from bot.sandbox.textparse import parse_text, utf16_len
from storage.models import OutboxMessage
from storage.repos.outbox import Outbox

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHAT = 5001

RICH = (
    "<b>Шаг {n}.</b> Откройте <a href=\"https://example.com/a b?x=1&amp;y=2\">настройки</a> "
    "&amp; нажмите <code>Ctrl+Alt+{n}</code> — <i>готово</i> 😀\n"
)


def rendered(html: str) -> str:
    """What Telegram shows for `html`; raises if Telegram would refuse to parse it."""
    return parse_text(html, "HTML")[0]


def letters(html: str) -> str:
    """The rendered text without its whitespace: what a cut may not lose or repeat."""
    return "".join(rendered(html).split())


def assert_parts_say_it_all(html: str, parts: list[str], limit: int) -> None:
    assert all(utf16_len(rendered(part)) <= limit for part in parts)
    assert "".join(letters(part) for part in parts) == letters(html)


@pytest.mark.parametrize("limit", [60, 97, 128, 333, CAPTION_LIMIT])
def test_parts_are_valid_html_within_the_limit_and_lose_nothing(limit: int) -> None:
    html = "<blockquote>" + "".join(RICH.format(n=n) for n in range(60)) + "</blockquote>"
    parts = split_html(html, limit)
    assert len(parts) > 1
    assert_parts_say_it_all(html, parts, limit)


def test_a_cut_never_falls_inside_a_tag_or_an_entity() -> None:
    html = "".join(f"<b>x</b>&amp;<a href=\"https://e.com/{n}\">{n}</a>&#128512;"
                   for n in range(80))
    for limit in range(8, 40):
        assert_parts_say_it_all(html, split_html(html, limit), limit)


def test_the_limit_counts_what_telegram_renders_in_utf16_units() -> None:
    assert cut_html("<b>a &amp; b</b>", 5) == ("<b>a &amp; b</b>", "")
    assert cut_html("😀😀😀", 5) == ("😀😀", "😀")
    tagged = "<b>" + "<i>x</i>" * TEXT_LIMIT + "</b>"  # raw 8 times the limit, visible exactly it
    assert split_html(tagged) == [tagged]
    emoji = "😀" * TEXT_LIMIT  # TEXT_LIMIT characters, twice the limit for Telegram
    assert [utf16_len(part) for part in split_html(emoji)] == [TEXT_LIMIT, TEXT_LIMIT]


def test_the_cut_prefers_a_paragraph_then_a_line_then_a_word() -> None:
    paragraphs = "Первый абзац, в нём слова.\n\nВторой\nабзац и слова"
    assert cut_html(paragraphs, 40) == ("Первый абзац, в нём слова.", "Второй\nабзац и слова")
    assert cut_html("Строка первая\nстрока вторая и слова", 24)[0] == "Строка первая"
    assert cut_html("слово " * 10, 20)[0] == "слово слово слово"
    assert cut_html("x" * 30, 20) == ("x" * 20, "x" * 10)


def test_a_message_that_fits_is_left_as_it_is() -> None:
    html = "  <b>Готово</b>\n"
    assert cut_html(html, 10) == (html, "")
    assert split_html(html) == [html]


class Rows:
    """Stands in for the Outbox repository: keeps the rows the writer adds, in order."""

    def __init__(self) -> None:
        self.rows: list[OutboxMessage] = []

    async def add(self, row: OutboxMessage) -> OutboxMessage:
        self.rows.append(row)
        return row


def caption_and_texts(rows: list[OutboxMessage]) -> tuple[str, list[str]]:
    media, *texts = rows
    assert all(row.method == "sendMessage" and row.chat_id == media.chat_id for row in texts)
    assert all(row.priority == media.priority and row.ticket_id == media.ticket_id
               for row in texts)
    return media.payload["caption"], [row.payload["text"] for row in texts]


async def test_a_long_caption_is_cut_and_the_rest_follows_the_copy_as_text() -> None:
    repo = Rows()
    caption = "<b>Ответ поддержки</b>\n\n" + "".join(RICH.format(n=n) for n in range(40))
    copied = await OutboxWriter(cast(Outbox, repo), NOW).copy(
        CHAT, -100, 7, priority=20, ticket_id=3, topic_of=3, reply_to=9, caption_html=caption
    )
    assert copied is repo.rows[0] and copied.method == "copyMessage"
    first, rest = caption_and_texts(repo.rows)
    assert 0 < utf16_len(rendered(first)) <= CAPTION_LIMIT and rest
    assert_parts_say_it_all(caption, [first, *rest], TEXT_LIMIT)
    # The rest goes where the media went (the ticket's topic); only the media is a reply.
    assert all(row.payload["message_thread_id"] == {"$topic_of": 3} for row in repo.rows)
    assert [("reply_parameters" in row.payload) for row in repo.rows] == [True] + [False] * len(
        rest)


async def test_a_long_file_caption_is_cut_and_the_rest_follows_in_the_same_thread() -> None:
    repo = Rows()
    caption = "Акт: " + "работа выполнена; " * 200
    await OutboxWriter(cast(Outbox, repo), NOW).send_file(
        CHAT, "/tmp/act.html", caption_html=caption, priority=0, thread_id=42
    )
    first, rest = caption_and_texts(repo.rows)
    assert repo.rows[0].method == "sendDocument" and len(rest) == 1
    assert utf16_len(rendered(first)) <= CAPTION_LIMIT
    assert_parts_say_it_all(caption, [first, *rest], TEXT_LIMIT)
    assert all(row.payload["message_thread_id"] == 42 for row in repo.rows)


async def test_a_caption_that_fits_stays_one_row() -> None:
    repo = Rows()
    caption = "<b>" + "<i>подпись</i>" * 100 + "</b>"  # 1,900 characters of HTML, 700 visible
    await OutboxWriter(cast(Outbox, repo), NOW).copy(CHAT, -100, 7, priority=20,
                                                     caption_html=caption)
    assert [row.payload["caption"] for row in repo.rows] == [caption]
