"""Webhook mode, [redis] and --workers: validated at start, every error naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.cli.main import main
from bot.config import ConfigError, parse_config

TELEGRAM = {"token": "1:x", "staff_chat_id": -100}
SECRET = "0123456789abcdef0123"


def config(**telegram: Any) -> dict[str, Any]:
    return {"telegram": {**TELEGRAM, **telegram}}


def test_polling_needs_no_webhook_settings() -> None:
    assert parse_config(config()).telegram.mode == "polling"


def test_webhook_mode_needs_a_url_and_a_secret() -> None:
    with pytest.raises(ConfigError, match=r"\[telegram\].*webhook_url"):
        parse_config(config(mode="webhook", secret_token=SECRET))
    with pytest.raises(ConfigError, match=r"\[telegram\].*secret_token"):
        parse_config(config(mode="webhook", webhook_url="https://desk.example.com/tg"))
    with pytest.raises(ConfigError, match=r"\[telegram.secret_token\]"):
        parse_config(config(mode="webhook", webhook_url="https://desk.example.com/tg",
                            secret_token="no spaces or dots allowed."))
    with pytest.raises(ConfigError, match=r"\[telegram.path\]"):
        parse_config(config(path="telegram"))
    ok = parse_config(config(mode="webhook", webhook_url="https://desk.example.com/tg",
                             secret_token=SECRET, port=8443, path="/tg"))
    assert ok.telegram.secret_token.get_secret_value() == SECRET
    assert SECRET not in repr(ok)


def test_redis_url_is_checked() -> None:
    assert parse_config({**config(), "redis": {"url": "redis://127.0.0.1:6379/0"}}).redis.url
    with pytest.raises(ConfigError, match=r"\[redis.url\]"):
        parse_config({**config(), "redis": {"url": "127.0.0.1:6379"}})


def _write(tmp_path: Path, database: str, mode: str = "webhook") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[telegram]\ntoken = "1:x"\nstaff_chat_id = -100\nmode = "{mode}"\n'
        f'webhook_url = "https://desk.example.com/tg"\nsecret_token = "{SECRET}"\n'
        f'[database]\nurl = "{database}"\n', encoding="utf-8")
    return path


def test_several_workers_refuse_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRONTDESK_TELEGRAM_TOKEN", raising=False)
    path = _write(tmp_path, "sqlite+aiosqlite:///x.db")
    assert main(["run", "--workers", "3", "--config", str(path)]) == 2
    assert "needs PostgreSQL" in capsys.readouterr().err


def test_several_workers_need_webhook_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRONTDESK_TELEGRAM_TOKEN", raising=False)
    path = _write(tmp_path, "postgresql+asyncpg://u@127.0.0.1/x", mode="polling")
    assert main(["run", "--workers", "2", "--config", str(path)]) == 2
    assert 'mode = "webhook"' in capsys.readouterr().err
