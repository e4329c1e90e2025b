"""The Bot API emulator driven by a real aiogram Bot over loopback HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyParameters,
)
from aiohttp import web

from bot.sandbox.emulator import CallRecord, FakeTelegram, Fault, violations

TOKEN = "123456:TEST-token"
CLIENT = 100
STAFF = 200
GROUP = -1001234567890


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN) as emu:
        emu.add_user(CLIENT, "Anna", username="anna")
        emu.add_user(STAFF, "Boris")
        emu.add_group(GROUP, "Support staff", is_forum=True, members={STAFF: "administrator"})
        yield emu


def make_bot(tg: FakeTelegram, timeout: float = 5.0, token: str = TOKEN) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url), timeout=timeout)
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode="HTML"))


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    b = make_bot(tg)
    yield b
    await b.session.close()


def keyboard(*labels: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d) for t, d in labels]]
    )


async def test_get_me_and_wrong_token(tg: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456 and me.username == "frontdesk_bot" and me.first_name == "Frontdesk"
    other = make_bot(tg, token="999:other")
    with pytest.raises(TelegramUnauthorizedError):
        await other.get_me()
    await other.session.close()


async def test_unknown_method_is_404(tg: FakeTelegram) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{tg.base_url}/bot{TOKEN}/noSuchMethod") as resp,
    ):
        assert resp.status == 404
        assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_json_and_urlencoded_bodies(tg: FakeTelegram) -> None:
    url = f"{tg.base_url}/bot{TOKEN}/sendMessage"
    markup = {"inline_keyboard": [[{"text": "Ok", "callback_data": "ok"}]]}
    async with aiohttp.ClientSession() as s:
        async with s.post(
            url, json={"chat_id": CLIENT, "text": "json", "reply_markup": markup}
        ) as r:
            body = await r.json()
            assert body["ok"] is True
            assert body["result"]["reply_markup"] == markup
            assert "plain" not in body["result"]
        async with s.post(url, data={"chat_id": str(CLIENT), "text": "form"}) as r:
            assert (await r.json())["result"]["text"] == "form"
        async with s.get(url, params={"chat_id": str(CLIENT), "text": "get"}) as r:
            assert (await r.json())["result"]["message_id"] == 3
    assert [m["plain"] for m in tg.sent(CLIENT)] == ["json", "form", "get"]


async def test_send_message_html_and_keyboard(tg: FakeTelegram, bot: Bot) -> None:
    msg = await bot.send_message(
        CLIENT,
        "<b>Заявка #1</b> принята &lt;ok&gt; &#x27;",
        reply_markup=keyboard(("Закрыть", "close:1"), ("Срочно", "urgent:1")),
    )
    assert msg.message_id == 1 and msg.chat.id == CLIENT and msg.from_user is not None
    assert msg.text == "Заявка #1 принята <ok> '"
    assert msg.entities is not None and msg.entities[0].type == "bold"
    stored = tg.last(CLIENT)
    assert stored is not None and stored["plain"] == "Заявка #1 принята <ok> '"
    assert tg.find_button(CLIENT, "срочно") == (1, "urgent:1")
    second = await bot.send_message(CLIENT, "again")
    assert second.message_id == 2
    call = tg.calls_to("sendMessage")[0]
    assert call.chat_id == CLIENT and call.ok and call.params["parse_mode"] == "HTML"
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "Закрыть"


async def test_validation_errors(tg: FakeTelegram, bot: Bot) -> None:
    cases = [
        ({"text": ""}, "message text is empty"),
        ({"text": "   "}, "message text is empty"),
        ({"text": "x" * 4097}, "message is too long"),
        ({"text": "a < b"}, "can't parse entities"),
        ({"text": "AT&T"}, "can't parse entities"),
        ({"text": "<b>bold</i>"}, "can't parse entities"),
        ({"text": "<blink>x</blink>"}, "Unsupported start tag"),
        ({"text": "x", "message_thread_id": 999}, "message thread not found"),
        ({"text": "x", "reply_parameters": ReplyParameters(message_id=77)}, "replied not found"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(TelegramBadRequest) as exc:
            await bot.send_message(GROUP, **kwargs)  # type: ignore[arg-type]
        assert expected in exc.value.message, (kwargs, exc.value.message)
    # the limit counts characters after entity parsing
    ok = await bot.send_message(CLIENT, "<b>" + "x" * 4096 + "</b>")
    assert len(ok.text or "") == 4096
    ok = await bot.send_message(
        CLIENT,
        "x",
        reply_parameters=ReplyParameters(message_id=77, allow_sending_without_reply=True),
    )
    assert ok.reply_to_message is None
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(555, "who?")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(CLIENT, "x", reply_markup=keyboard(("Long", "d" * 65)))
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(
            CLIENT, BufferedInputFile(b"png", "a.png"), caption="c" * 1025, parse_mode=None
        )
    assert [c.error_code for c in tg.calls if not c.ok].count(400) == len(cases) + 3


async def test_long_poll_delivers_message_and_callback(tg: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(CLIENT, "Pick", reply_markup=keyboard(("Yes", "y")))

    async def inject_while_polled() -> None:
        await tg.wait_for(lambda: tg.polls_waiting, timeout=2)
        tg.send_message(CLIENT, "/start")

    started = time.monotonic()
    task = asyncio.create_task(inject_while_polled())
    updates = await bot.get_updates(timeout=5)
    await task
    assert time.monotonic() - started < 2  # answered when the update came, not at the timeout
    [upd] = updates
    assert upd.message is not None and upd.message.text == "/start"
    assert upd.message.entities is not None and upd.message.entities[0].type == "bot_command"
    assert upd.message.chat.type == "private" and upd.message.message_id == 2

    qid = tg.press_button(CLIENT, CLIENT, sent.message_id, "y")
    updates = await bot.get_updates(offset=upd.update_id + 1, timeout=1)
    [cb] = updates
    assert cb.callback_query is not None and cb.callback_query.data == "y"
    assert cb.callback_query.id == qid
    assert await bot.answer_callback_query(qid, text="Done")
    assert tg.callback_answers[-1]["text"] == "Done"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(qid)
    with pytest.raises(ValueError):
        tg.press_button(CLIENT, CLIENT, sent.message_id, "forged")
    tg.press_button(CLIENT, CLIENT, sent.message_id, "forged", check=False)
    # offset confirms earlier updates
    updates = await bot.get_updates(offset=cb.update_id + 1, timeout=0)
    assert [u.callback_query.data for u in updates if u.callback_query] == ["forged"]
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == []
    await tg.wait_idle(timeout=2)


async def test_edits_and_not_modified(tg: FakeTelegram, bot: Bot) -> None:
    events: list[tuple[str, str]] = []
    tg.on_bot_message(lambda m, kind: events.append((kind, m["plain"])))
    msg = await bot.send_message(CLIENT, "one", reply_markup=keyboard(("A", "a")))
    edited = await bot.edit_message_text(
        text="<i>two</i>", chat_id=CLIENT, message_id=msg.message_id
    )
    assert not isinstance(edited, bool) and edited.text == "two"
    stored = tg.last(CLIENT)
    assert stored is not None and "reply_markup" not in stored  # keyboard dropped
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(text="<i>two</i>", chat_id=CLIENT, message_id=msg.message_id)
    await bot.edit_message_reply_markup(
        chat_id=CLIENT, message_id=msg.message_id, reply_markup=keyboard(("B", "b"))
    )
    assert tg.find_button(CLIENT, "B") == (msg.message_id, "b")
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=CLIENT, message_id=99)
    assert await bot.delete_message(CLIENT, msg.message_id)
    assert tg.sent(CLIENT) == []
    assert events == [("sent", "one"), ("edited", "two"), ("edited", "two"), ("deleted", "two")]


async def test_copy_photo_and_forum_topics(tg: FakeTelegram, bot: Bot) -> None:
    photo = tg.send_message(CLIENT, None, photo=True, caption="screen")
    topic = await bot.create_forum_topic(GROUP, "#1 · Anna: printer")
    assert topic.message_thread_id == 1
    assert tg.topics(GROUP)[0]["name"] == "#1 · Anna: printer"
    copied = await bot.copy_message(
        GROUP, CLIENT, photo["message_id"], message_thread_id=topic.message_thread_id
    )
    stored = tg.last(GROUP)
    assert stored is not None and stored["message_id"] == copied.message_id
    assert stored["photo"] == photo["photo"] and stored["caption"] == "screen"
    assert stored["message_thread_id"] == topic.message_thread_id
    assert stored["is_topic_message"] is True
    msg = await bot.send_message(GROUP, "new ticket", message_thread_id=topic.message_thread_id)
    assert msg.message_thread_id == topic.message_thread_id and msg.is_topic_message
    assert len(tg.sent(GROUP, thread_id=topic.message_thread_id)) == 2
    # staff answer in the topic arrives as an update with the thread id
    tg.send_message(STAFF, "on it", chat_id=GROUP, thread_id=topic.message_thread_id)
    upd = (await bot.get_updates(timeout=0))[-1]
    assert upd.message is not None and upd.message.message_thread_id == topic.message_thread_id
    assert await bot.close_forum_topic(GROUP, topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="TOPIC_NOT_MODIFIED"):
        await bot.close_forum_topic(GROUP, topic.message_thread_id)
    assert tg.topics(GROUP)[0]["closed"] is True
    assert await bot.reopen_forum_topic(GROUP, topic.message_thread_id)
    assert await bot.edit_forum_topic(GROUP, topic.message_thread_id, name="#1 · done")
    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await bot.copy_message(GROUP, CLIENT, 999)
    with pytest.raises(TelegramBadRequest, match="not a forum"):
        await bot.create_forum_topic(CLIENT, "x")
    # uploaded photo gets a file id that can be re-sent
    up = await bot.send_photo(CLIENT, BufferedInputFile(b"\x89PNG", "s.png"), caption="<b>c</b>")
    assert up.photo is not None and up.caption == "c"
    again = await bot.send_photo(GROUP, up.photo[-1].file_id)
    assert again.photo is not None
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_document(CLIENT, "nonsense")


async def test_members_commands_and_chat(tg: FakeTelegram, bot: Bot) -> None:
    member = await bot.get_chat_member(GROUP, STAFF)
    assert member.status == "administrator"
    tg.set_member(GROUP, STAFF, "left")
    assert (await bot.get_chat_member(GROUP, STAFF)).status == "left"
    admins = await bot.get_chat_administrators(GROUP)
    assert [a.user.id for a in admins] == [123456]
    chat = await bot.get_chat(GROUP)
    assert chat.is_forum and chat.title == "Support staff"
    assert await bot.set_my_commands([BotCommand(command="start", description="Start")])
    assert tg.commands["default"] == [{"command": "start", "description": "Start"}]
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert await bot.send_chat_action(CLIENT, "typing")
    assert await bot.delete_webhook(drop_pending_updates=True)
    info = await bot.get_webhook_info()
    assert info.url == ""


async def test_faults_map_to_aiogram_exceptions(tg: FakeTelegram, bot: Bot) -> None:
    tg.inject(Fault.too_many_requests(retry_after=7), count=1)
    with pytest.raises(TelegramRetryAfter) as exc:
        await bot.send_message(CLIENT, "a")
    assert exc.value.retry_after == 7
    await bot.send_message(CLIENT, "b")  # count=1: gone

    tg.inject(Fault.server_error(502), on_calls={2})
    await bot.send_message(CLIENT, "c")
    with pytest.raises(TelegramServerError):
        await bot.send_message(CLIENT, "d")
    await bot.send_message(CLIENT, "e")

    rule = tg.inject(Fault.forbidden_blocked(), chat_id=CLIENT)
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await bot.send_message(CLIENT, "f")
    await bot.send_message(GROUP, "other chats still work")
    assert await bot.get_me()  # not a send method
    tg.remove_fault(rule)
    await bot.send_message(CLIENT, "g")
    assert [m["plain"] for m in tg.sent(CLIENT)] == ["b", "c", "e", "g"]
    assert [c.fault for c in tg.calls if c.fault] == [
        "too_many_requests",
        "server_error",
        "forbidden_blocked",
    ]


async def test_timeout_fault_delivers_and_client_times_out(tg: FakeTelegram) -> None:
    bot = make_bot(tg, timeout=0.3)
    tg.inject(Fault.timeout(seconds=2), count=1)
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(CLIENT, "slow")
    await bot.send_message(CLIENT, "slow")  # the retry
    assert [m["plain"] for m in tg.sent(CLIENT)] == ["slow", "slow"]  # a visible duplicate
    await bot.session.close()


async def test_refuse_connections_window(tg: FakeTelegram, bot: Bot) -> None:
    await bot.get_me()  # a keep-alive connection exists
    await tg.refuse_connections(0.5)
    assert tg.refusing
    with pytest.raises(TelegramNetworkError):
        await bot.get_me()
    await tg.wait_for(lambda: not tg.refusing, timeout=3)
    assert (await bot.get_me()).id == 123456


async def test_enforced_limits(tg: FakeTelegram, bot: Bot) -> None:
    tg.enforce_limits(global_per_second=30, per_chat_per_second=1, per_group_per_minute=20)
    await bot.send_message(CLIENT, "1")
    with pytest.raises(TelegramRetryAfter) as exc:
        await bot.send_message(CLIENT, "2")
    assert exc.value.retry_after >= 1
    assert tg.limit_violations == 1 and tg.limit_violation_log[0].kind == "chat"
    tg.add_user(101, "Other")
    await bot.send_message(101, "other chat is fine")
    tg.disable_limits()
    await bot.send_message(CLIENT, "3")


def test_violations_after_the_fact() -> None:
    def call(t: float, chat: int) -> CallRecord:
        return CallRecord("sendMessage", {}, t, t, chat)

    calls = [call(0.0, 1), call(0.5, 1), call(1.6, 1)]
    calls += [call(3 + i * 0.01, -100 - i) for i in range(31)]
    calls += [call(10 + i, -5) for i in range(21)]
    found = violations(calls)
    kinds = [v.kind for v in found]
    assert kinds.count("chat") == 1 and found[0].time == 0.5
    assert kinds.count("global") == 1
    assert kinds.count("group") == 1


async def test_webhook_delivery_with_secret(tg: FakeTelegram, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, object]]] = []
    fail_first = [True]

    async def hook(request: web.Request) -> web.Response:
        if fail_first.pop() if fail_first else False:
            return web.Response(status=500)  # Telegram retries
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        with pytest.raises(TelegramConflictError):
            await bot.get_updates(timeout=0)
        tg.send_message(CLIENT, "via webhook")
        await tg.wait_for(lambda: received, timeout=3)
        secret, update = received[0]
        assert secret == "s3cret"
        assert update["message"]["text"] == "via webhook"  # type: ignore[index]
        await tg.wait_idle(timeout=2)
        assert tg.pending_updates == []
        assert (await bot.get_webhook_info()).url.endswith("/hook")
        assert await bot.delete_webhook()
        tg.send_message(CLIENT, "polled again")
        [upd] = await bot.get_updates(timeout=0)
        assert upd.message is not None and upd.message.text == "polled again"
    finally:
        await runner.cleanup()


async def test_disconnect_fault_and_prompt_stop(tg: FakeTelegram, bot: Bot) -> None:
    tg.inject(Fault.disconnect(deliver=True), count=1)
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(CLIENT, "lost answer")
    assert [m["plain"] for m in tg.sent(CLIENT)] == ["lost answer"]
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await tg.wait_for(lambda: tg.polls_waiting, timeout=2)
    started = time.monotonic()
    await tg.stop()
    assert time.monotonic() - started < 2
    [result] = await asyncio.gather(poll, return_exceptions=True)
    assert result == [] or isinstance(result, TelegramNetworkError)
