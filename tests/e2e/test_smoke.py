from bot.app.runtime import App
from bot.sandbox.emulator import FakeTelegram
from tests.e2e.conftest import CLIENT, STAFF_CHAT, settle, texts_to


async def test_client_message_registers_incident(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "Не работает интернет во всём офисе")
    await settle(app, tg)
    print(texts_to(tg, CLIENT))
    print([ (m.get("message_thread_id"), m.get("plain")) for m in tg.sent(STAFF_CHAT)])
    assert "#1" in texts_to(tg, CLIENT)[0]
