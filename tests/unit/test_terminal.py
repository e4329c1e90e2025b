"""The sandbox terminal: line parsing, rendering, and a script against a tiny echo bot."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.sandbox.emulator import FakeTelegram
from bot.sandbox.terminal import HELP, Command, parse_line, render_message, run_terminal

CLIENT = 100
STAFF = 200
GROUP = -1001


def test_parse_line() -> None:
    assert parse_line("> hello") == Command("say", "client", "hello")
    assert parse_line("client>  hi there ") == Command("say", "client", "hi there")
    assert parse_line("staff> on it") == Command("say", "staff", "on it")
    assert parse_line("staff#12> ok") == Command("say", "staff", "ok", topic=12)
    assert parse_line("staff[#12]> ok") == Command("say", "staff", "ok", topic=12)
    assert parse_line("staff reply> yes") == Command("say", "staff", "yes", reply=True)
    assert parse_line("reply> yes") == Command("say", "client", "yes", reply=True)
    assert parse_line("client! Закрыть") == Command("press", "client", "Закрыть")
    assert parse_line("staff#3! Take") == Command("press", "staff", "Take", topic=3)
    assert parse_line("# note").action == "comment"
    assert parse_line("").action == "comment"
    assert parse_line("help").action == "help"
    assert parse_line("quit").action == "quit"
    assert parse_line("hello").action == "error"
    assert parse_line("client#3> x").action == "error"
    assert "staff#N> text" in HELP


def test_render_message() -> None:
    msg = {
        "message_id": 1,
        "chat": {"id": CLIENT, "type": "private"},
        "plain": "Заявка #12 принята\nждите",
        "reply_markup": {
            "inline_keyboard": [
                [{"text": "Take", "callback_data": "t"}, {"text": "Close", "callback_data": "c"}],
                [{"text": "Help", "url": "https://example.com"}],
            ]
        },
    }
    assert render_message(msg, "sent", "client") == (
        "[bot → client] Заявка #12 принята\n    ждите\n    [Take] [Close]\n    [Help]"
    )
    photo = {"chat": {"id": 1}, "photo": [{}], "plain": "screen"}
    assert render_message(photo, "edited", "staff #3") == "[bot → staff #3] (edited) [photo] screen"
    doc = {"chat": {"id": 1}, "document": {"file_name": "log.txt"}, "plain": ""}
    assert render_message(doc, "sent", "client") == "[bot → client] [document: log.txt]"


@pytest.fixture
async def echo_bot() -> AsyncIterator[FakeTelegram]:
    """The emulator with a tiny aiogram bot polling it: it echoes private messages
    with an [Again] button into the staff group's topic "#1 · echo", echoes staff
    messages back to the client, and answers button presses."""
    tg = FakeTelegram(token="42:abc")
    await tg.start()
    tg.add_user(CLIENT, "Anna")
    tg.add_user(STAFF, "Boris")
    tg.add_group(GROUP, "Staff", is_forum=True, members={STAFF: "administrator"})
    bot = Bot("42:abc", session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
    dp = Dispatcher()
    topic: dict[str, int] = {}

    @dp.message(F.chat.type == "private")
    async def on_client(message: Message) -> None:
        if "thread" not in topic:
            created = await bot.create_forum_topic(GROUP, "#1 · echo")
            topic["thread"] = created.message_thread_id
        again = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Again", callback_data="again")]]
        )
        await message.answer(f"echo: {message.text}", reply_markup=again)
        await bot.send_message(
            GROUP, f"client said: {message.text}", message_thread_id=topic["thread"]
        )

    @dp.message(F.chat.id == GROUP)
    async def on_staff(message: Message) -> None:
        await bot.send_message(CLIENT, f"staff: {message.text}")

    @dp.callback_query(F.data == "again")
    async def on_again(query: CallbackQuery) -> None:
        await query.answer()
        if isinstance(query.message, Message):
            await query.message.edit_text("pressed")

    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    yield tg
    await dp.stop_polling()
    await task
    await bot.session.close()
    await tg.stop()


async def test_script_against_echo_bot(echo_bot: FakeTelegram) -> None:
    script = io.StringIO(
        "# a short session\n> hello\nstaff> hi Anna\nclient! Again\nclient! Nope\n"
    )
    out = io.StringIO()
    code = await run_terminal(
        echo_bot,
        client_id=CLIENT,
        staff_id=STAFF,
        staff_chat_id=GROUP,
        script=script,
        out=out,
        quiet=0.15,
    )
    lines = out.getvalue().splitlines()
    assert lines == [
        "# a short session",
        "> hello",
        "[bot → client] echo: hello",
        "    [Again]",
        "[bot → staff #1] client said: hello",
        "staff> hi Anna",
        "[bot → client] staff: hi Anna",
        "client! Again",
        "[bot → client] (edited) pressed",
        "client! Nope",
        "! no button [Nope] in the client chat",
    ]
    assert code == 1  # a line failed
    assert echo_bot.callback_answers[0]["data"] == "again"
