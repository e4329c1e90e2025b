"""Dialog state in memory is forgotten after `[security] dialog_ttl_seconds`."""

from __future__ import annotations

from aiogram.fsm.storage.base import StorageKey

from bot.telegram.dialogs import ExpiringMemoryStorage

KEY = StorageKey(bot_id=1, chat_id=7001, user_id=7001)


async def test_a_dialog_left_alone_expires_and_asking_stores_nothing() -> None:
    now = [0.0]
    storage = ExpiringMemoryStorage(60, monotonic=lambda: now[0])
    await storage.set_state(KEY, "KbDialog:answer")
    await storage.set_data(KEY, {"question": "q"})
    now[0] = 59
    assert await storage.get_state(KEY) == "KbDialog:answer"
    await storage.set_data(KEY, {"question": "q", "alt": []})  # an answer: 60 s more
    now[0] = 118
    assert await storage.get_value(KEY, "question") == "q"
    now[0] = 119.5
    assert await storage.get_state(KEY) is None and await storage.get_data(KEY) == {}
    await storage.set_data(KEY, {"x": 1})  # an expired dialog lends no state to new data
    assert await storage.get_state(KEY) is None
    await storage.set_state(KEY, None)
    await storage.set_data(KEY, {})
    other = StorageKey(bot_id=1, chat_id=5, user_id=5)
    assert await storage.get_state(other) is None
    assert storage.storage == {}
