"""Running the bot: the contact question, config errors, the token kept out of logs, the sandbox."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.app.runtime import App
from bot.config import Config
from bot.sandbox.emulator import FakeTelegram
from tests.e2e.cluster import new_app
from tests.e2e.conftest import CLIENT, ROOT_DIR, TOKEN, settle, texts_to


async def test_contact_is_asked_once_and_skippable(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    app = new_app(make_config(desk={"ask_contact": True}))
    await app.start()
    try:
        tg.send_message(CLIENT, "/start")
        await settle(app, tg)
        assert "номер телефона" in texts_to(tg, CLIENT)[1]
        assert tg.reply_keyboards[CLIENT]["keyboard"][0][0]["request_contact"] is True
        tg.send_message(CLIENT, contact={"phone_number": "+79001234567", "user_id": CLIENT})
        await settle(app, tg)
        assert "номер сохранили" in texts_to(tg, CLIENT)[-1]
        tg.send_message(CLIENT, "/start")
        await settle(app, tg)
        assert len(texts_to(tg, CLIENT)) == 5  # greeting only, no second question
        tg.send_message(CLIENT, "Не работает сканер")
        await settle(app, tg)
        assert "+79001234567" in tg.sent(-1001000)[0]["plain"]
    finally:
        await app.stop()


async def test_token_never_reaches_the_logs(
    app: App, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.app.logs import RedactToken

    caplog.handler.addFilter(RedactToken(TOKEN))
    caplog.set_level(logging.DEBUG)
    await tg.refuse_connections(1.0)
    tg.send_message(CLIENT, "Не работает почта")
    await settle(app, tg)
    logging.getLogger("test").warning("url was https://x/bot%s/getMe", TOKEN)
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[telegram]\ntoken='1:x'\n", "[telegram.staff_chat_id] is required but missing"),
        ("[telegram]\ntoken='1:x'\nstaff_chat_id='abc'\n", "[telegram.staff_chat_id]"),
        ("[telegram]\ntoken='1:x'\nstaff_chat_id=-1\n[desk]\nlanguag='ru'\n",
         "[desk.languag] is not a known setting"),
        ("[telegram\n", "not valid TOML"),
        ("[telegram]\nstaff_chat_id=-1\n", "[telegram.token] is empty"),
    ],
)
def test_bad_config_names_file_and_key_and_exits_2(
    tmp_path: Path, content: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli.main import main

    path = tmp_path / "config.toml"
    path.write_text(content, encoding="utf-8")
    assert main(["run", "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert str(path) in error and expected in error


@pytest.mark.own_sqlite
def test_sandbox_script_from_the_readme_shows_a_whole_lifecycle() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "sandbox", "--script",
         str(ROOT_DIR / "examples" / "sandbox-lifecycle.txt")],
        capture_output=True, text=True, timeout=120, cwd=ROOT_DIR, check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in ("Обращение #1 зарегистрировано", "Иван взял обращение #1",
                     "нам нужен ваш ответ", "#1 закрыто", "#1 снова открыто", "открыто снова"):
        assert expected in out, expected
    assert out.count("картридж") == 1  # the echoed script line: the note reached nobody
