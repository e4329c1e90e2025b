"""Monitoring end to end: an Alertmanager payload opens, updates and resolves a problem
(a replay changes nothing), a client who writes about it meanwhile is linked, the
"close" button closes it; bad payloads get 400 with the reason, a wrong token 401."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app.runtime import App
from bot.config import Config
from bot.sandbox.emulator import FakeTelegram
from storage.models import OutboxMessage, Problem, Ticket
from tests.e2e.cluster import new_app
from tests.e2e.conftest import CLIENT, STAFF, STAFF_CHAT, free_port, settle, texts_to

TOKEN = "monitoring-token-0123456789"


def alertmanager(status: str, summary: str = "Нет интернета: канал провайдера упал",
                 severity: str = "critical") -> dict[str, Any]:
    return {
        "version": "4", "groupKey": "{}:{alertname=\"UplinkDown\"}", "status": status,
        "receiver": "frontdesk", "groupLabels": {"alertname": "UplinkDown"},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": "UplinkDown", "severity": severity},
            "annotations": {"summary": summary},
            "startsAt": "2026-12-03T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prom:9090/graph", "fingerprint": "a1b2c3d4e5f60718",
        }],
    }


@pytest.fixture
async def monitored(make_config: Callable[..., Config]) -> AsyncIterator[tuple[App, str]]:
    port = free_port()
    config = make_config(monitoring={"token": TOKEN, "listen": f"127.0.0.1:{port}"})
    if config.telegram.mode == "webhook":  # the workers' webhook server takes it then
        port = config.telegram.port
    app = new_app(config)
    await app.start()
    yield app, f"http://127.0.0.1:{port}/monitoring"
    await app.stop()


async def post(url: str, body: object, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.post(
            url, json=body, headers=headers) as response:
        return response.status, await response.json()


async def counts(app: App) -> tuple[int, int]:
    async with app.db.transaction() as session:
        problems = await session.scalar(select(func.count()).select_from(Problem))
        rows = await session.scalar(select(func.count()).select_from(OutboxMessage))
    return problems or 0, rows or 0


async def test_an_alert_opens_updates_and_resolves_a_problem(
    monitored: tuple[App, str], tg: FakeTelegram
) -> None:
    app, url = monitored
    status, body = await post(f"{url}/alertmanager", alertmanager("firing"))
    assert (status, body) == (200, {"outcomes": ["opened"]})
    await settle(app, tg)
    alert = texts_to(tg, STAFF_CHAT)[-1]
    assert "Мониторинг: проблема #1" in alert and "канал провайдера упал" in alert
    async with app.db.transaction() as session:
        problem = await session.scalar(select(Problem))
        assert problem is not None and problem.ticket_id is None  # no client reporter

    before = await counts(app)
    assert (await post(f"{url}/alertmanager", alertmanager("firing")))[1] == {
        "outcomes": ["unchanged"]}  # a replay changes nothing
    assert await counts(app) == before

    # A client who writes about it now is told at once and linked.
    tg.send_message(CLIENT, "Нет интернета, канал провайдера упал?")
    await settle(app, tg)
    assert "Мы знаем об этой проблеме" in texts_to(tg, CLIENT)[-1]
    assert "#2" in texts_to(tg, CLIENT)[-1]

    # The update: a new summary edits the alert message and says so in its thread.
    status, body = await post(f"{url}/alertmanager",
                              alertmanager("firing", "Канал провайдера: чинят, ориентир 12:00"))
    assert body == {"outcomes": ["updated"]}
    await settle(app, tg)
    assert "ориентир 12:00" in tg.sent(STAFF_CHAT)[0]["plain"]

    # A staff reply to the alert message reaches the linked client.
    alert_id = tg.sent(STAFF_CHAT)[0]["message_id"]
    tg.send_message(STAFF, "Провайдер обещает к полудню", chat_id=STAFF_CHAT,
                    reply_to=alert_id)
    await settle(app, tg)
    assert "Провайдер обещает к полудню" in texts_to(tg, CLIENT)[-1]

    status, body = await post(f"{url}/alertmanager", alertmanager("resolved"))
    assert body == {"outcomes": ["resolved"]}
    await settle(app, tg)
    assert "устранена" in texts_to(tg, STAFF_CHAT)[-1]
    before = await counts(app)
    assert (await post(f"{url}/alertmanager", alertmanager("resolved")))[1] == {
        "outcomes": ["unchanged"]}
    assert await counts(app) == before

    message_id, data = tg.find_button(STAFF_CHAT, "✅ Закрыть проблему #1") or (0, "")
    tg.press_button(STAFF, STAFF_CHAT, message_id, data)
    await settle(app, tg)
    async with app.db.transaction() as session:
        problem = await session.scalar(select(Problem))
        ticket = await session.scalar(select(Ticket).where(Ticket.number == 2))
    assert problem is not None and problem.closed_at is not None
    assert ticket is not None and ticket.status == "closed"
    assert "Отлично" in str(tg.sent(CLIENT)[-1].get("reply_markup"))  # one rating request
    # Replayed after the close: still nothing.
    assert (await post(f"{url}/alertmanager", alertmanager("firing")))[1] == {
        "outcomes": ["unchanged"]}


async def test_the_generic_form(monitored: tuple[App, str], tg: FakeTelegram) -> None:
    app, url = monitored
    body = {"title": "Почта не отправляется", "severity": "high", "fingerprint": "mail-1",
            "status": "firing"}
    assert (await post(f"{url}/alert", body))[1] == {"outcomes": ["opened"]}
    assert (await post(f"{url}/alert", body))[1] == {"outcomes": ["unchanged"]}
    assert (await post(f"{url}/alert", {"fingerprint": "mail-1", "status": "resolved"}))[1] \
        == {"outcomes": ["resolved"]}
    await settle(app, tg)


@pytest.mark.parametrize(("path", "body", "reason"), [
    ("alertmanager", {"version": "4", "alerts": []}, "alerts must be a non-empty list"),
    ("alertmanager", {"version": "3", "alerts": [{}]}, "version 4"),
    ("alertmanager", {"alerts": [{"status": "firing", "labels": {"alertname": "X"}}]},
     "alerts[0].fingerprint is missing"),
    ("alertmanager", {"alerts": [{"status": "odd", "fingerprint": "f",
                                  "labels": {"alertname": "X"}}]}, "alerts[0].status"),
    ("alert", {"title": "x", "status": "firing"}, "fingerprint is missing"),
    ("alert", {"fingerprint": "f", "status": "firing"}, "title is missing"),
    ("alert", ["not", "an", "object"], "must be an object"),
])
async def test_bad_payloads_get_400_with_the_reason_and_write_nothing(
    monitored: tuple[App, str], path: str, body: object, reason: str
) -> None:
    app, url = monitored
    before = await counts(app)
    status, answer = await post(f"{url}/{path}", body)
    assert status == 400 and reason in answer["error"]
    assert await counts(app) == before


async def test_a_wrong_or_missing_token_gets_401_and_is_not_logged(
    monitored: tuple[App, str], caplog: pytest.LogCaptureFixture
) -> None:
    app, url = monitored
    caplog.set_level(logging.DEBUG)
    before = await counts(app)
    assert (await post(f"{url}/alertmanager", alertmanager("firing"), token="wrong"))[0] == 401
    assert (await post(f"{url}/alertmanager", alertmanager("firing"), token=None))[0] == 401
    assert (await post(f"{url}/alertmanager", alertmanager("firing")))[0] == 200
    assert before[0] == 0 and (await counts(app))[0] == 1
    assert TOKEN not in caplog.text
