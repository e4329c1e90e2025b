"""Generated updates through the real dispatcher against the emulator (issue 14).

Random Unicode (whitespace-only, control characters, 10,000-character words), entities,
captions, unknown fields, edited messages, callback data of random bytes, chat types and
member updates. Properties, for every update: no unhandled exception (no inbox row with an
error), every client message in a private chat answered, nothing written for a non-client
(a group that is neither the staff group nor a client's: no client, incident or message
out). Each example comes from a new person, so "answered" does not depend on the earlier
ones (a follow-up within two minutes is acknowledged once per burst, by design).

Bounded for CI: a fixed number of examples, derandomized (the same ones every run).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app.runtime import App
from bot.sandbox.emulator import FakeTelegram
from storage.models import Client, InboxUpdate, OutboxMessage, Ticket
from tests.e2e.conftest import due_outbox, settle

FIRST_PERSON = 900_000
FOREIGN_GROUP = -1009999
people = itertools.count(FIRST_PERSON)
ENTITY_TYPES = ["bold", "italic", "code", "pre", "url", "bot_command", "mention",
                "text_link", "spoiler", "custom_emoji", "nonsense_type"]

words = st.one_of(
    st.text(min_size=1, max_size=200),
    st.sampled_from(["\u3000", " ", "\t\n", "\u200b", "\x00", "\x1b[31m", "\ufeff", "/",
                     "/new", "/faq", "/start x", "/status #1", "/take 1", "/health"]),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs"]), min_size=1, max_size=20),
    st.builds(lambda c, n: c * n, st.characters(), st.integers(5_000, 10_000)),
    st.builds(lambda a, b: a + " " + b, st.text(max_size=30), st.text(max_size=30)),
)


@st.composite
def entities(draw: Any, text: str) -> list[dict[str, Any]]:
    found = []
    for _ in range(draw(st.integers(0, 3))):
        offset = draw(st.integers(0, max(len(text) + 2, 0)))
        entity: dict[str, Any] = {"type": draw(st.sampled_from(ENTITY_TYPES)),
                                  "offset": offset, "length": draw(st.integers(0, 50))}
        if entity["type"] == "text_link":
            entity["url"] = "https://example.org/" + draw(st.text(max_size=10))
        found.append(entity)
    return found


@st.composite
def updates(draw: Any) -> tuple[str, dict[str, Any]]:
    """(what kind of sender: client | foreign, the update without its person)."""
    kind = draw(st.sampled_from(["text", "caption", "edited", "callback", "group", "member"]))
    text = draw(words)
    extra = draw(st.dictionaries(st.sampled_from(["future_field", "x_unknown_flag",
                                                  "new_thing"]),
                                 st.one_of(st.integers(), st.text(max_size=10), st.booleans()),
                                 max_size=2))
    return kind, {"text": text, "entities": draw(entities(text)), "extra": extra,
                  "data": draw(st.binary(max_size=80)).decode("utf-8", "replace")[:64]}


def message(person: dict[str, Any], chat: dict[str, Any], body: dict[str, Any],
            message_id: int, *, caption: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {"message_id": message_id, "date": int(time.time()),
                               "from": person, "chat": chat, **body["extra"]}
    if caption:
        payload["photo"] = [{"file_id": f"ph{message_id}", "file_unique_id": f"u{message_id}",
                             "width": 90, "height": 51}]
        payload["caption"], key = body["text"], "caption_entities"
    else:
        payload["text"], key = body["text"], "entities"
    if body["entities"]:
        payload[key] = body["entities"]
    return payload


async def counts(app: App) -> tuple[int, ...]:
    async with app.db.transaction() as session:
        return tuple([await session.scalar(select(func.count()).select_from(model)) or 0
                      for model in (Client, Ticket, OutboxMessage)])


async def errors(app: App) -> list[str]:
    async with app.db.transaction() as session:
        return [e for e in await session.scalars(
            select(InboxUpdate.error).where(InboxUpdate.error.is_not(None))) if e]


@settings(max_examples=80, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(update=updates())
async def test_generated_updates_break_nothing(
    app: App, tg: FakeTelegram, update: tuple[str, dict[str, Any]]
) -> None:
    kind, body = update
    user_id = next(people)
    tg.add_user(user_id, "Гость", language_code="ru")
    person = {"id": user_id, "is_bot": False, "first_name": "Гость", "language_code": "ru"}
    private = {"id": user_id, "type": "private", "first_name": "Гость"}
    group = {"id": FOREIGN_GROUP, "type": "supergroup", "title": "Чужая группа"}
    message_id = 10_000_000 + user_id
    before = await counts(app)
    answered_by = "message"
    query_id = ""
    if kind in ("text", "caption"):
        tg.raw_update({"message": message(person, private, body, message_id,
                                          caption=kind == "caption")})
    elif kind == "edited":
        edited = message(person, private, body, message_id)
        edited["edit_date"] = int(time.time())
        tg.raw_update({"edited_message": edited})
        if body["text"].startswith("/"):
            answered_by = "nothing"  # an edited command is not run again
    elif kind == "callback":
        answered_by = "callback"
        query_id = tg.press_button(user_id, user_id, 1, body["data"], check=False)
    elif kind == "group":
        tg.raw_update({"message": message(person, group, body, message_id)})
    elif kind == "member":
        tg.raw_update({"my_chat_member": {
            "chat": group, "from": person, "date": int(time.time()),
            "old_chat_member": {"status": "left", "user": {"id": tg.bot_id, "is_bot": True,
                                                           "first_name": "bot"}},
            "new_chat_member": {"status": "member", "user": {"id": tg.bot_id, "is_bot": True,
                                                             "first_name": "bot"}}}})
    await settle(app, tg, timeout=10, undelivered=due_outbox)  # a foreign group's leave waits

    assert await errors(app) == []
    if kind in ("group", "member"):  # a foreign group: no client, no incident; the bot leaves
        clients, tickets, sent = await counts(app)
        assert (clients, tickets) == before[:2] and sent - before[2] <= 1
        assert {call.method for call in tg.calls if call.chat_id == FOREIGN_GROUP} <= {"leaveChat"}
    elif answered_by == "message":
        assert tg.sent(user_id), f"no answer to {kind} {body['text'][:80]!r}"
    elif answered_by == "callback":
        assert any(call.params.get("callback_query_id") == query_id
                   for call in tg.calls_to("answerCallbackQuery"))
