"""The sentence model in the bot: a paraphrase finds its article, a calm outage gets the
critical promise, a greeting gets no article, and without the model the bot works on words
(FRONTDESK_NO_MODEL=1 makes the model's loading fail as a missing package would)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bot.app.runtime import App
from bot.config import Config
from bot.sandbox.emulator import FakeTelegram
from kb import encoder as encoder_module
from tests.e2e.cluster import new_app
from tests.e2e.conftest import CLIENT, KB, STAFF, STAFF_CHAT, settle, texts_to

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
