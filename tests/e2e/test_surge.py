"""A mass outage in the staff group: a digest instead of a card per incident."""

from __future__ import annotations

from collections.abc import Callable

from bot.config import Config
from bot.sandbox.emulator import FakeTelegram
from tests.e2e.cluster import new_app
from tests.e2e.conftest import STAFF, STAFF_CHAT, settle, texts_to

FIRST_CLIENT = 600_000


async def test_surge_posts_a_digest_and_topics_appear_on_demand(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    app = new_app(make_config(desk={"surge_threshold": 5}))
    await app.start()
    try:
        for offset in range(12):
            tg.add_user(FIRST_CLIENT + offset, f"Клиент {offset}")
            tg.send_message(FIRST_CLIENT + offset, f"Нет интернета в офисе, дом {offset}")
            await settle(app, tg)
        assert [t["name"].split(" ·")[0] for t in tg.topics(STAFF_CHAT)] == [
            "#1", "#2", "#3", "#4", "#5"]
        assert all("#" in texts_to(tg, FIRST_CLIENT + i)[0] for i in range(12))

        await app.run_job("surge")
        await settle(app, tg)
        digest = texts_to(tg, STAFF_CHAT)[-1]
        assert "Наплыв обращений: 7" in digest
        assert all(f"#{n} ·" in digest for n in range(6, 13))
        await app.run_job("surge")  # nothing new: nothing posted
        await settle(app, tg)
        assert texts_to(tg, STAFF_CHAT)[-1] == digest

        tg.send_message(STAFF, "/take 8", chat_id=STAFF_CHAT)
        await settle(app, tg)  # two chats are handled in parallel: fix the topics' order
        tg.send_message(FIRST_CLIENT + 10, "всё ещё нет связи")
        await settle(app, tg)
        names = [t["name"].split(" ·")[0] for t in tg.topics(STAFF_CHAT)]
        assert names[5:] == ["#8", "#11"]
        topic_11 = int(tg.topics(STAFF_CHAT)[-1]["message_thread_id"])
        in_topic = texts_to(tg, STAFF_CHAT, topic_11)
        assert "Нет интернета в офисе, дом 10" in in_topic[0]  # the card: the first message
        assert "всё ещё нет связи" in in_topic[1]
    finally:
        await app.stop()
