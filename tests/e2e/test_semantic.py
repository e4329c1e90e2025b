"""The sentence model in the bot: a paraphrase finds its article, a calm outage gets the
critical promise, a greeting gets no article, a level staff set and a retrain change the
promise for a similar message, and without the model the bot works on words
(FRONTDESK_NO_MODEL=1 makes the model's loading fail as a missing package would)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.app.runtime import App
from bot.cli.classify import staff_corrections
from bot.cli.retrain import retrain
from bot.config import Config
from bot.sandbox.emulator import FakeTelegram
from kb import encoder as encoder_module
from tests.e2e.cluster import new_app
from tests.e2e.conftest import CLIENT, CLIENT_EN, KB, STAFF, STAFF_CHAT, STRANGER, settle, texts_to

# No word of the article's phrasings ("Не подключается VPN из дома", ...):
PARAPHRASE = "Работаю удалённо, а к рабочей сети никак не пробиться: туннель не поднимается"
CALM_OUTAGE = ("Здравствуйте. Сегодня с утра ни один сотрудник не может оформить продажу: "
               "программа учёта не открывается ни на одном компьютере.")
CRITICAL_PROMISE = "Важность: критическая"


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(encoder_module.DISABLE_ENV, "1")
    encoder_module.reset_for_tests()
    yield
    monkeypatch.delenv(encoder_module.DISABLE_ENV)
    encoder_module.reset_for_tests()


async def test_a_paraphrase_gets_the_right_article(faq_app: App, tg: FakeTelegram) -> None:
    assert faq_app.container.semantic.available
    tg.send_message(CLIENT, PARAPHRASE)
    await settle(faq_app, tg)
    registered, suggestion = texts_to(tg, CLIENT)
    assert "#1" in registered
    assert "Не подключается VPN из дома" in suggestion


async def test_a_calm_outage_gets_the_critical_promise(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, CALM_OUTAGE)
    await settle(app, tg)
    assert CRITICAL_PROMISE in texts_to(tg, CLIENT)[0]


async def test_a_greeting_gets_no_article(faq_app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "Добрый день!")
    await settle(faq_app, tg)
    assert len(texts_to(tg, CLIENT)) == 1


async def test_the_bot_works_on_words_without_the_model(
    no_model: None, make_config: Callable[..., Config], tg: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot_app = new_app(make_config(kb={"path": str(KB)}))
    await bot_app.start()
    try:
        assert not bot_app.container.semantic.available
        assert "FRONTDESK_NO_MODEL" in caplog.text
        tg.send_message(CLIENT, "Добрый день, у меня дома не подключается VPN, ошибка 809")
        await settle(bot_app, tg)
        registered, suggestion = texts_to(tg, CLIENT)
        assert "#1" in registered and "Не подключается VPN из дома" in suggestion
        before = len(tg.sent(STAFF_CHAT))
        tg.send_message(STAFF, "/health", chat_id=STAFF_CHAT)
        await settle(bot_app, tg)
        health = [m.get("plain", "") for m in tg.sent(STAFF_CHAT)[before:]]
        assert any("Смысловая модель выключена" in text for text in health)
    finally:
        await bot_app.stop()


# The desk of a warehouse: its label printer stopping is an outage there, which no bundled
# example says; staff raise one such incident by hand, and a retrain teaches the model.
SEEN = "принтер этикеток на складе перестал печатать наклейки"
SIMILAR = "на складе не печатает принтер наклеек для коробок"


async def test_a_level_set_by_staff_and_a_retrain_change_the_promise(
    make_config: Callable[..., Config], tg: FakeTelegram, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    config = make_config(severity={"models": str(models)})
    before = new_app(config)
    await before.start()
    try:
        tg.send_message(CLIENT, SEEN)
        await settle(before, tg)  # #1 (several workers would number two at once either way)
        tg.send_message(CLIENT_EN, SIMILAR)
        await settle(before, tg)
        assert CRITICAL_PROMISE not in texts_to(tg, CLIENT_EN)[0]
        tg.send_message(STAFF, "/sev 1 critical", chat_id=STAFF_CHAT)
        await settle(before, tg)
        async with before.container.db.transaction() as session:
            corrections = await staff_corrections(session)
        assert corrections == [{"text": SEEN, "severity": "critical"}]
        model = encoder_module.encoder()
        assert model is not None
        await asyncio.to_thread(retrain, model, corrections, models)
    finally:
        await before.stop()
    after = new_app(config)
    await after.start()
    try:
        tg.send_message(STRANGER, SIMILAR)
        await settle(after, tg)
        assert CRITICAL_PROMISE in texts_to(tg, STRANGER)[0]
    finally:
        await after.stop()
