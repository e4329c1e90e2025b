"""Companies, /stats, /report and the monthly acts: the real bot against the emulator.

Files (the chart, the acts) travel through the outbox as paths under [reports] directory;
the delivery worker uploads them, and the emulator records each upload's name and size.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app.runtime import App
from bot.config import Config
from bot.messaging.outbox import PRIORITY_NOTICE
from bot.sandbox.emulator import CallRecord, FakeTelegram
from bot.services.reports.jobs import monthly_acts
from bot.services.reports.render import reports_directory
from storage.models import Client, Company, OutboxMessage
from tests.conftest import ACT_FORMATS
from tests.e2e.cluster import new_app
from tests.e2e.conftest import CLIENT, CLIENT_EN, STAFF, STAFF_CHAT, settle, texts_to

COMPANIES = [{"name": "Рога и копыта", "services": ["1С", "почта"],
              "maintenance": [{"work": "Антивирус", "every": "weekly"},
                              {"work": "Тест бэкапов", "every": "monthly"}]}]


@pytest.fixture
async def app(make_config: Callable[..., Config], tmp_path: Path) -> AsyncIterator[App]:
    config = make_config(reports={"directory": str(tmp_path / "reports")})
    config = config.model_copy(update={"companies": Config.model_validate(
        {"telegram": {"staff_chat_id": 1}, "companies": COMPANIES}).companies})
    bot_app = new_app(config)
    await bot_app.start()
    yield bot_app
    await bot_app.stop()


def uploaded(call: CallRecord) -> dict[str, Any]:
    """The one file a send call uploaded (aiogram names the multipart field at random)."""
    (upload,) = call.params["_files"].values()
    return dict(upload)


async def staff_says(app: App, tg: FakeTelegram, text: str, thread: int | None = None) -> list[str]:
    before = len(tg.sent(STAFF_CHAT))
    tg.send_message(STAFF, text, chat_id=STAFF_CHAT, thread_id=thread)
    await settle(app, tg)
    return [m.get("plain", "") for m in tg.sent(STAFF_CHAT)[before:]]


async def test_org_add_invite_link_and_start(app: App, tg: FakeTelegram) -> None:
    answer = await staff_says(app, tg, "/org add ООО Ромашка")
    assert "Компания ООО Ромашка добавлена" in answer[0]
    link = re.search(r"https://t\.me/frontdesk_bot\?start=(org-[\w-]+)", answer[0])
    assert link is not None

    tg.send_message(CLIENT, f"/start {link[1]}")
    await settle(app, tg)
    assert any("сотрудник компании ООО Ромашка" in t for t in texts_to(tg, CLIENT))
    async with app.db.transaction() as session:
        client = await session.scalar(select(Client).where(Client.user_id == CLIENT))
        company = await session.scalar(select(Company).where(Company.name == "ООО Ромашка"))
    assert client is not None and company is not None
    assert (client.company_id, client.company) == (company.id, "ООО Ромашка")

    # The incident's card and topic show the company.
    tg.send_message(CLIENT, "Не печатает принтер")
    await settle(app, tg)
    topic = tg.topics(STAFF_CHAT)[-1]["message_thread_id"]
    assert "ООО Ромашка" in tg.sent(STAFF_CHAT, topic)[0]["plain"]

    # An unknown code is just a start.
    tg.send_message(CLIENT_EN, "/start org-nonsense")
    await settle(app, tg)
    assert len(texts_to(tg, CLIENT_EN)) == 1


async def test_link_from_the_topic_and_org_overview(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "Не работает почта у всего отдела")
    await settle(app, tg)
    topic = tg.topics(STAFF_CHAT)[-1]["message_thread_id"]
    answer = await staff_says(app, tg, "/org link рога", thread=topic)
    assert "Анна — сотрудник компании Рога и копыта" in answer[0]
    assert "Рога и копыта" in tg.sent(STAFF_CHAT, topic)[0]["plain"]  # the card, edited

    text = (await staff_says(app, tg, "/org Рога и копыта"))[0]
    assert "Рога и копыта · сотрудников 1" in text
    assert "Услуги: 1С; почта" in text
    assert "Антивирус — еженедельно" in text
    assert "https://t.me/frontdesk_bot?start=org-" in text
    assert "#1 ·" in text and "поступило 1" in text

    assert "отмечено выполненным" in (await staff_says(app, tg, "/org done Рога: антив"))[0]
    assert "Компании" in (await staff_says(app, tg, "/org"))[0]
    assert "не найдена" in (await staff_says(app, tg, "/org link 1 Никакая"))[0]
    assert "Укажите номер" in (await staff_says(app, tg, "/org link Рога"))[0]
    works = await staff_says(app, tg, "/org works Рога: Антивирус — ежедневно; Аудит — quarterly")
    assert "Антивирус — ежедневно; Аудит — ежеквартально" in works[0]


async def test_stats_sends_a_chart_and_the_summary(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "Не работает 1С ни у кого в офисе")
    await settle(app, tg)
    topic = tg.topics(STAFF_CHAT)[-1]["message_thread_id"]
    await staff_says(app, tg, "Смотрим", thread=topic)
    await staff_says(app, tg, "/close 1 Починили")

    answer = await staff_says(app, tg, "/stats")
    photos = tg.calls_to("sendPhoto", STAFF_CHAT)
    assert len(photos) == 1 and photos[0].ok
    upload = uploaded(photos[0])
    assert upload["filename"].startswith("stats-") and upload["size"] > 10_000
    assert answer[0].startswith("📊 Статистика за")  # the photo's caption
    summary = answer[1]
    assert "Поступило: 1 (🔴 1 · 🟡 0 · 🟢 0)" in summary  # down for everyone: critical
    assert "Закрыто: 1" in summary and "Иван Петров: закрыто 1" in summary

    assert "не понят" in (await staff_says(app, tg, "/stats yesterday"))[0]
    tg.send_message(STAFF, "/stats")  # not in the staff group: not answered there
    await settle(app, tg)
    assert not any("Статистика" in t for t in texts_to(tg, STAFF))


async def test_report_sends_the_act_as_html_and_csv(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "Не работает 1С")
    await settle(app, tg)
    await staff_says(app, tg, "/org link 1 Рога и копыта")
    await staff_says(app, tg, "/close 1 Переустановили клиент")
    month = app.clock().astimezone(app.container.texts.zone).strftime("%Y-%m")

    answer = await staff_says(app, tg, f"/report рога {month}")
    documents = tg.calls_to("sendDocument", STAFF_CHAT)
    names = [uploaded(d)["filename"] for d in documents]
    assert names == [f"act-Рога_и_копыта-{month}.{ext}" for ext in ACT_FORMATS]
    assert all(d.ok and uploaded(d)["size"] > 0 for d in documents)
    assert answer[0].startswith("📄 Акт выполненных работ: Рога и копыта")
    assert "решено обращений: 1" in answer[0]
    html = (reports_directory(app.config) / "acts" / month
            / f"act-Рога_и_копыта-{month}.html").read_text(encoding="utf-8")
    assert "#1" in html and "Не работает 1С" in html and "запланировано" in html

    assert "не найдена" in (await staff_says(app, tg, "/report Никакая"))[0]
    assert "/report Компания" in (await staff_says(app, tg, "/report"))[0]


async def test_outbox_uploads_files_and_fails_a_missing_one(
    app: App, tg: FakeTelegram, tmp_path: Path
) -> None:
    present = tmp_path / "note.txt"
    present.write_text("hello", encoding="utf-8")
    async with app.db.transaction() as session:
        out = app.container.scope(session).out
        gone = await out.send_file(STAFF_CHAT, tmp_path / "gone.csv", priority=PRIORITY_NOTICE)
        await out.send_file(STAFF_CHAT, present, filename="Отчёт.txt", caption_html="<b>x</b>",
                            priority=PRIORITY_NOTICE)
    app.delivery.wake()
    await settle(app, tg)
    documents = tg.calls_to("sendDocument", STAFF_CHAT)
    assert [uploaded(d) for d in documents] == [
        {"filename": "Отчёт.txt", "size": 5}]
    assert tg.sent(STAFF_CHAT)[-1]["plain"] == "x"
    async with app.db.transaction() as session:
        row = await session.get(OutboxMessage, gone.id)
    assert row is not None and row.status == "failed" and "does not exist" in (row.last_error or "")


async def test_monthly_acts_job(app: App, tg: FakeTelegram) -> None:
    config = app.config.model_copy(update={"reports": app.config.reports.model_copy(
        update={"monthly_acts": True})})
    # 1 June 2026 is a Monday: the first working day; acts go from 10:00 Moscow time.
    early = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)  # 09:30 in Moscow
    notifier_for = app.container.notifier_for
    assert await monthly_acts(app.db, notifier_for, config, early) == 0
    due = datetime(2026, 6, 1, 7, 5, tzinfo=UTC)
    assert await monthly_acts(app.db, notifier_for, config, due) == 1  # has works
    assert await monthly_acts(app.db, notifier_for, config, due) == 0  # once
    app.delivery.wake()
    await settle(app, tg)
    names = [uploaded(d)["filename"] for d in tg.calls_to("sendDocument", STAFF_CHAT)]
    assert names == [f"act-Рога_и_копыта-2026-05.{ext}" for ext in ACT_FORMATS]
    assert "Акты выполненных работ за 2026-05: 1" in texts_to(tg, STAFF_CHAT)[-1]
    off = app.config  # monthly_acts is off by default
    assert await monthly_acts(app.db, app.container.notifier_for, off,
                                      datetime(2026, 7, 1, 9, tzinfo=UTC)) == 0
