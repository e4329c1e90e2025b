"""What a hostile client or a former member of staff tried, through the real bot against
the emulator (issue 14): drafts, formulas in CSV files, stale staff rights, images outside
the KB, the token in stored errors, staff commands out of place, invite links (rotated,
expiring, used up, moving a client only when staff confirm)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app.runtime import App
from bot.app.scheduler import job_table
from bot.cli.main import main as cli_main
from bot.config import Config
from bot.messaging.callbacks import CompanyMove, FaqShow, TicketAction
from bot.messaging.outbox import PRIORITY_NOTICE
from bot.sandbox.emulator import FakeTelegram, Fault
from bot.services.reports.render import reports_directory
from bot.services.retention import retention_sweep
from storage.models import Client, Company, FaqArticle, InboxUpdate, OutboxMessage, Ticket
from tests.e2e.cluster import WORKERS, new_app
from tests.e2e.conftest import (
    ADMIN,
    CLIENT,
    CLIENT_EN,
    STAFF,
    STAFF_2,
    STAFF_CHAT,
    STRANGER,
    TOKEN,
    settle,
    start_with_kb,
    texts_to,
)
from tests.e2e.test_contracts import (
    CLIENT_B,
    WEDNESDAY,
    join,
    running,
    staff_says,
    with_companies,
)

HOSTILE = 5066
SECRET = "временный пароль Qwerty-2026"


async def test_a_draft_is_never_shown_to_a_client(faq_app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "Сканер сохраняет файлы непонятно куда")
    await settle(faq_app, tg)
    tg.send_message(STAFF, f"/close 1 faq Ваш {SECRET}, папка \\\\server\\scan",
                    chat_id=STAFF_CHAT)
    await settle(faq_app, tg)
    async with faq_app.db.transaction() as session:
        draft = (await session.scalars(select(FaqArticle))).one()
    assert draft.draft
    # Not a slug of the client's words: nobody can guess it from them.
    assert "skaner" not in draft.id and draft.id.startswith("draft-") and len(draft.id) > 14
    before = len(texts_to(tg, CLIENT_EN))
    for query in (f"/faq {draft.id}", f"/faq {draft.id.upper()}",
                  "/faq Сканер сохраняет файлы непонятно куда", "/faq"):
        tg.send_message(CLIENT_EN, query)
        await settle(faq_app, tg)
    tg.press_button(CLIENT_EN, CLIENT_EN, 1, FaqShow(article=draft.id).pack(), check=False)
    await settle(faq_app, tg)
    answers = texts_to(tg, CLIENT_EN)[before:]
    assert len(answers) == 4
    assert not any(SECRET in text or "scan" in text for text in answers), answers
    assert tg.callback_answers[-1].get("show_alert")


@pytest.fixture
async def report_app(make_config: Callable[..., Config], tmp_path: Path) -> AsyncIterator[App]:
    config = make_config(reports={"directory": str(tmp_path / "reports")})
    config = config.model_copy(update={"companies": Config.model_validate(
        {"telegram": {"staff_chat_id": 1}, "companies": [{"name": "Рога и копыта"}]}).companies})
    bot_app = new_app(config)
    await bot_app.start()
    yield bot_app
    await bot_app.stop()


async def test_formulas_in_the_act_csv_are_written_as_text(
    report_app: App, tg: FakeTelegram
) -> None:
    tg.add_user(HOSTILE, '=HYPERLINK("http://evil.example","Click")', language_code="ru")
    tg.send_message(HOSTILE, "=cmd|' /C calc'!A0 не работает принтер")
    await settle(report_app, tg)
    for text in ("/org link 1 Рога и копыта", "/close 1 @SUM(1+1) переустановили"):
        tg.send_message(STAFF, text, chat_id=STAFF_CHAT)
        await settle(report_app, tg)
    month = report_app.clock().astimezone(report_app.container.texts.zone).strftime("%Y-%m")
    tg.send_message(STAFF, f"/report рога {month}", chat_id=STAFF_CHAT)
    await settle(report_app, tg)
    table = (reports_directory(report_app.config) / "acts" / month
             / f"act-Рога_и_копыта-{month}.csv").read_text(encoding="utf-8-sig")
    cells = [cell for row in csv.reader(io.StringIO(table)) for cell in row]
    assert "'=cmd|' /C calc'!A0 не работает принтер" in cells
    assert any(c.startswith("'=HYPERLINK(") for c in cells)
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]


async def test_a_removed_member_loses_staff_rights_at_once(faq_app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "Не работает принтер")
    await settle(faq_app, tg)
    # An administrator of the staff group: staff in their private chat with the bot too.
    for text in ("/kb add", "Как сбросить пароль от почты?"):
        tg.send_message(STAFF_2, text)
        await settle(faq_app, tg)
    tg.set_member(STAFF_CHAT, STAFF_2, "kicked")
    for text in ("-", "Пришлите старый пароль на scam@example.com", "-", "/close 1"):
        tg.send_message(STAFF_2, text)
        await settle(faq_app, tg)
    async with faq_app.db.transaction() as session:
        assert list(await session.scalars(select(FaqArticle))) == []
        first = await session.scalar(select(Ticket).where(Ticket.number == 1))
    assert first is not None and first.status == "new"
    assert sum("только для сотрудников" in t for t in texts_to(tg, STAFF_2)) == 2


ESCAPING = "- id: passwd\n  lang: ru\n  question: Где пароль\n  answer: Вот он\n  image: {image}\n"


@pytest.mark.own_sqlite
@pytest.mark.parametrize("image", ["../../../../etc/passwd", "/etc/passwd", "link.png"])
def test_an_image_outside_the_kb_folder_stops_start_up_and_import(
    tmp_path: Path, image: str
) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "link.png").symlink_to("/etc/passwd")  # a link out of the folder counts too
    kb = folder / "faq.yaml"
    kb.write_text(ESCAPING.format(image=image), encoding="utf-8")
    run = start_with_kb(tmp_path, folder)
    assert run.returncode == 2, run.stderr
    assert str(kb) in run.stderr and "'passwd'" in run.stderr and image in run.stderr
    other = tmp_path / "import.yaml"
    other.write_text(ESCAPING.format(image=image), encoding="utf-8")
    config = tmp_path / "config.toml"  # the one start_with_kb wrote
    assert cli_main(["kb", "import", str(other), "--config", str(config)]) == 2


async def test_the_token_is_in_no_stored_error_nor_in_health(app: App, tg: FakeTelegram) -> None:
    # What a redirect loop on api_base put into the error: the request's URL.
    loop = f"Bad Gateway: redirect loop at {tg.base_url}/bot{TOKEN}/sendMessage"
    tg.inject(Fault.error(502, loop), chat_id=CLIENT_EN)
    async with app.db.transaction() as session:
        await app.container.scope(session).out.send_text(
            CLIENT_EN, "stuck", priority=PRIORITY_NOTICE)
    app.delivery.wake()
    await tg.wait_for(lambda: len(tg.calls_to("sendMessage", CLIENT_EN)) >= 2, timeout=10)
    tg.send_message(STAFF, "/health", chat_id=STAFF_CHAT)
    health = await tg.wait_for(lambda: next(
        (t for t in texts_to(tg, STAFF_CHAT) if "redirect loop" in t), None), timeout=10)
    assert TOKEN not in str(health) and "<token>" in str(health)
    async with app.db.transaction() as session:
        errors = list(await session.scalars(select(OutboxMessage.last_error)))
    assert errors and not any(TOKEN in (e or "") for e in errors)


OTHER_GROUP = -1009999


async def test_staff_commands_only_where_staff_are(app: App, tg: FakeTelegram) -> None:
    tg.send_message(CLIENT, "Не работает принтер")
    await settle(app, tg)
    # A plain member of the staff group, in private: refused.
    tg.send_message(STAFF, "/tickets")
    await settle(app, tg)
    assert "только для сотрудников" in texts_to(tg, STAFF)[-1]
    # An admin's private /tickets; replying /close to that answer names no incident.
    tg.send_message(ADMIN, "/tickets")
    await settle(app, tg)
    answer = tg.sent(ADMIN)[-1]
    assert "#1" in answer.get("plain", "")
    tg.send_message(ADMIN, "/close", reply_to=answer["message_id"])
    await settle(app, tg)
    async with app.db.transaction() as session:
        statuses = list(await session.scalars(select(Ticket.status).order_by(Ticket.number)))
    assert statuses == ["new"]
    assert "номер" in texts_to(tg, ADMIN)[-1]
    # A third-party group with a staff member in it: silence, and the bot leaves.
    tg.add_group(OTHER_GROUP, "Чужая группа", is_forum=False, members={STAFF: "member"},
                 bot_status="left")
    tg.set_member(OTHER_GROUP, tg.bot_id, "member")
    tg.send_message(STAFF, "/tickets", chat_id=OTHER_GROUP)
    await settle(app, tg)
    assert tg.sent(OTHER_GROUP) == []
    assert tg.calls_to("leaveChat", OTHER_GROUP)


async def test_a_public_staff_group_gives_no_staff_rights_to_buttons(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    tg.chats[STAFF_CHAT].info["username"] = "our_support_desk"  # anyone may join it
    bot_app = new_app(make_config())
    await bot_app.start()
    try:
        tg.send_message(CLIENT, "Не работает принтер")
        await settle(bot_app, tg)
        card = tg.sent(STAFF_CHAT)[0]["message_id"]
        tg.press_button(STRANGER, STAFF_CHAT, card, TicketAction(action="take", number=1).pack(),
                        check=False)
        await settle(bot_app, tg)
        assert "только для сотрудников" in tg.callback_answers[-1].get("text", "")
        async with bot_app.db.transaction() as session:
            taken = await session.scalar(select(Ticket.assignee_id))
        assert taken is None
        tg.send_message(STAFF, "/health", chat_id=STAFF_CHAT)
        await settle(bot_app, tg)
        assert any("публичная" in t for t in texts_to(tg, STAFF_CHAT))
    finally:
        await bot_app.stop()


OLD_GROUP, NEW_GROUP = -4001, -1004001


async def test_a_migrated_group_is_followed_and_what_cannot_be_sent_is_parked(
    app: App, tg: FakeTelegram
) -> None:
    tg.add_group(OLD_GROUP, "Клиенты", is_forum=False)
    tg.add_group(NEW_GROUP, "Клиенты", is_forum=False)
    tg.inject(Fault.error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                          {"migrate_to_chat_id": NEW_GROUP}), chat_id=OLD_GROUP)
    tg.inject(Fault.error(404, "Not Found"), chat_id=CLIENT_EN, count=1)
    async with app.db.transaction() as session:
        out = app.container.scope(session).out
        for text in ("первое", "второе"):
            await out.send_text(OLD_GROUP, text, priority=PRIORITY_NOTICE)
        await out.send_text(CLIENT_EN, "lost", priority=PRIORITY_NOTICE)
        await out.send_text(CLIENT_EN, "after it", priority=PRIORITY_NOTICE)
    app.delivery.wake()
    await settle(app, tg)
    assert texts_to(tg, NEW_GROUP) == ["первое", "второе"]
    assert texts_to(tg, CLIENT_EN) == ["after it"]  # the chat's queue is not blocked
    async with app.db.transaction() as session:
        failed = list(await session.scalars(
            select(OutboxMessage.last_error).where(OutboxMessage.status == "failed")))
    assert len(failed) == 1 and "Not Found" in (failed[0] or "")
    tg.send_message(STAFF, "/health", chat_id=STAFF_CHAT)
    await settle(app, tg)
    health = texts_to(tg, STAFF_CHAT)[-1]
    assert "Не удалось отправить совсем: 1, самое старое с " in health
    assert "Не удалось обработать входящих" not in health


async def test_old_inbox_and_outbox_rows_are_pruned_payloads_first(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    config = make_config(retention={"days": 30, "payload_days": 10})
    bot_app = new_app(config)
    await bot_app.start()
    try:
        assert "retention" in [job.id for job in job_table(bot_app.container)]
        tg.send_message(CLIENT, "Не работает принтер")
        await settle(bot_app, tg)
        now = bot_app.clock()

        async def rows() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
            async with bot_app.db.transaction() as session:
                inbox = list(await session.scalars(select(InboxUpdate.payload)))
                outbox = list(await session.scalars(select(OutboxMessage.payload)))
            return inbox, outbox

        inbox, outbox = await rows()
        assert inbox and outbox and all(inbox) and all(outbox)
        await retention_sweep(bot_app.db, config.retention, now + timedelta(days=9))
        assert await rows() == (inbox, outbox)
        for _ in range(2):  # idempotent
            await retention_sweep(bot_app.db, config.retention, now + timedelta(days=11))
            inbox, outbox = await rows()
            assert inbox and outbox and not any(inbox) and not any(outbox)
        await retention_sweep(bot_app.db, config.retention, now + timedelta(days=31))
        inbox, outbox = await rows()
        assert inbox == [] and len(outbox) == 1  # the incident's card is still replied to
        tg.send_message(CLIENT, "И сканер тоже")
        await settle(bot_app, tg)
        assert "И сканер тоже" in texts_to(tg, STAFF_CHAT)[-1]
    finally:
        await bot_app.stop()


async def test_plain_text_fields_show_what_was_written(app: App, tg: FakeTelegram) -> None:
    tg.add_user(HOSTILE, "<Вася & Co>", language_code="ru")
    tg.send_message(HOSTILE, "Ошибка <1С> & почта")
    await settle(app, tg)
    (topic,) = tg.calls_to("createForumTopic", STAFF_CHAT)
    name = topic.params["name"]
    assert "<Вася & Co>" in name and "<1С> & почта" in name and "&lt;" not in name
    tg.press_button(STRANGER, STRANGER, 1, "t:take:1", check=False)
    await settle(app, tg)
    alert = tg.callback_answers[-1].get("text", "")
    assert alert and "&" not in alert and "<" not in alert


async def test_an_invite_link_is_rotated_and_the_old_one_stops_working(
    app: App, tg: FakeTelegram
) -> None:
    links = []
    for text in ("/org add ООО Ромашка", "/org invite ООО Ромашка rotate"):
        tg.send_message(STAFF, text, chat_id=STAFF_CHAT)
        await settle(app, tg)
        found = re.search(r"\?start=(org-[\w-]+)", texts_to(tg, STAFF_CHAT)[-1])
        assert found is not None
        links.append(found[1])
    old, new = links
    assert old != new and "Старая больше не действует" in texts_to(tg, STAFF_CHAT)[-1]
    tg.send_message(CLIENT, f"/start {old}")
    await settle(app, tg)
    assert not any("Ромашка" in t for t in texts_to(tg, CLIENT))
    tg.send_message(CLIENT, f"/start {new}")
    await settle(app, tg)
    assert any("сотрудник компании ООО Ромашка" in t for t in texts_to(tg, CLIENT))


LIMITED: list[dict[str, Any]] = [
    {"name": "Ромашка", "invite_uses": 1},
    {"name": "Лютик", "invite_expires": "2026-12-01"},  # the day before WEDNESDAY
]


async def test_an_invite_link_expires_and_stops_after_its_uses(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    tg.add_user(HOSTILE, "Гость", language_code="ru")
    tg.add_user(CLIENT_B, "Борис", language_code="ru")
    config = with_companies(make_config, LIMITED)
    async with running(config) as app:
        await join(app, tg, CLIENT, "Ромашка")
        assert "сотрудник компании Ромашка" in texts_to(tg, CLIENT)[-1]
        await join(app, tg, HOSTILE, "Ромашка")  # one use only: taken
        assert "уже подключились все, для кого она была" in texts_to(tg, HOSTILE)[-1]
        await join(app, tg, CLIENT_B, "Лютик")  # worked through 1 December
        assert "Срок действия этой ссылки-приглашения закончился" in texts_to(tg, CLIENT_B)[-1]
        assert await company_of(app, HOSTILE) is None and await company_of(app, CLIENT_B) is None
        assert "подключились 1 из 1" in await staff_says(app, tg, "/org invite Ромашка")
        await staff_says(app, tg, "/org add Мак")
        answer = await staff_says(app, tg, "/org invite Мак expires 1h")
        assert "Действует до 02.12 11:00" in answer
        assert "Не понимаю «soon»" in await staff_says(app, tg, "/org invite Мак expires soon")
        assert "без ограничения" in await staff_says(app, tg, "/org invite Ромашка uses off")
        await join(app, tg, HOSTILE, "Ромашка")
        assert await company_of(app, HOSTILE) == "Ромашка"
    async with running(config, WEDNESDAY + timedelta(hours=2)) as app:
        await join(app, tg, CLIENT_B, "Мак")  # an hour late
        assert "Срок действия этой ссылки-приглашения закончился" in texts_to(tg, CLIENT_B)[-1]
        assert await company_of(app, CLIENT_B) is None
        assert "истекла" in await staff_says(app, tg, "/org Мак")


async def company_of(app: App, user_id: int) -> str | None:
    async with app.db.transaction() as session:
        return await session.scalar(select(Client.company).where(Client.user_id == user_id))


async def test_a_client_moves_company_through_an_invite_only_when_staff_confirm(
    make_config: Callable[..., Config], tg: FakeTelegram
) -> None:
    config = with_companies(make_config, [{"name": "Альфа"}, {"name": "Бета"}])
    async with running(config) as app:
        await join(app, tg, CLIENT, "Альфа")
        await join(app, tg, CLIENT, "Бета")  # another company's link: staff are asked
        assert "нам нужно подтверждение" in texts_to(tg, CLIENT)[-1]
        asked = texts_to(tg, STAFF_CHAT)[-1]
        assert "Анна" in asked and "сотрудник компании Альфа" in asked
        assert "по ссылке-приглашению компании Бета. Перевести?" in asked
        assert await company_of(app, CLIENT) == "Альфа"  # pending until confirmed
        confirm = tg.find_button(STAFF_CHAT, "Перевести")
        keep = tg.find_button(STAFF_CHAT, "Оставить как было")
        assert confirm is not None and keep is not None
        # Not staff (the button's data pressed elsewhere): refused. Forged data: refused.
        tg.press_button(STRANGER, STRANGER, 1, confirm[1], check=False)
        await settle(app, tg)
        assert "только для сотрудников" in tg.callback_answers[-1].get("text", "")
        async with app.db.transaction() as session:
            client_id = await session.scalar(select(Client.id).where(Client.user_id == CLIENT))
            alpha = await session.scalar(select(Company.id).where(Company.name == "Альфа"))
        assert client_id is not None and alpha is not None
        forged = CompanyMove(action="confirm", client=client_id, company=alpha).pack()
        tg.press_button(STAFF, STAFF_CHAT, confirm[0], forged, check=False)
        await settle(app, tg)
        assert "уже решён или отменён" in tg.callback_answers[-1].get("text", "")
        assert await company_of(app, CLIENT) == "Альфа"
        # "Keep": they stay; the old button is stale now.
        tg.press_button(STAFF, STAFF_CHAT, keep[0], keep[1])
        await settle(app, tg)
        assert "Вы остаётесь сотрудником компании Альфа" in texts_to(tg, CLIENT)[-1]
        assert "Анна остаётся в компании Альфа" in texts_to(tg, STAFF_CHAT)[-1]
        tg.press_button(STAFF, STAFF_CHAT, confirm[0], confirm[1], check=False)
        await settle(app, tg)
        assert "уже решён или отменён" in tg.callback_answers[-1].get("text", "")
        assert await company_of(app, CLIENT) == "Альфа"
        # Asked again and confirmed: moved.
        await join(app, tg, CLIENT, "Бета")
        confirm = tg.find_button(STAFF_CHAT, "Перевести")
        assert confirm is not None
        tg.press_button(STAFF, STAFF_CHAT, confirm[0], confirm[1])
        await settle(app, tg)
        assert await company_of(app, CLIENT) == "Бета"
        assert "сотрудник компании Бета" in texts_to(tg, CLIENT)[-1]
        assert "Анна переведен(а) в компанию Бета (была: Альфа)" in texts_to(tg, STAFF_CHAT)[-1]


NEW_STAFF_CHAT = -1009002


async def test_the_staff_group_upgraded_to_a_supergroup_is_followed_across_a_restart(
    make_config: Callable[..., Config], tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram answers a send to the old group with "migrated": the card goes to the new
    id, the desk works there, and after a restart with the old id still in the config."""
    tg.add_group(NEW_STAFF_CHAT, "Поддержка", is_forum=True,
                 members={STAFF: "member", STAFF_2: "administrator"})
    config = make_config()
    bot_app = new_app(config)
    await bot_app.start()
    try:
        tg.inject(Fault.error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                              {"migrate_to_chat_id": NEW_STAFF_CHAT}), chat_id=STAFF_CHAT)
        tg.send_message(CLIENT, "Не работает принтер")
        await settle(bot_app, tg)
        assert tg.sent(STAFF_CHAT) == []
        assert "Не работает принтер" in "\n".join(texts_to(tg, NEW_STAFF_CHAT))
        assert f"set [telegram] staff_chat_id = {NEW_STAFF_CHAT}" in caplog.text
        tg.send_message(STAFF, "/close 1 заменили картридж", chat_id=NEW_STAFF_CHAT)
        await settle(bot_app, tg)
        assert "закрыто" in texts_to(tg, CLIENT)[-1]
    finally:
        await bot_app.stop()
    caplog.clear()
    bot_app = new_app(config)  # the config still names the old group
    await bot_app.start()
    try:
        assert f"set [telegram] staff_chat_id = {NEW_STAFF_CHAT}" in caplog.text
        tg.send_message(CLIENT_EN, "The scanner is broken")
        await settle(bot_app, tg)
        assert "The scanner is broken" in "\n".join(texts_to(tg, NEW_STAFF_CHAT))
        tg.send_message(STAFF, "/health", chat_id=NEW_STAFF_CHAT)
        await settle(bot_app, tg)
        assert "Доставка сообщений" in texts_to(tg, NEW_STAFF_CHAT)[-1]
    finally:
        await bot_app.stop()


async def test_the_service_message_of_the_upgrade_moves_the_desk_at_once(
    app: App, tg: FakeTelegram
) -> None:
    tg.add_group(NEW_STAFF_CHAT, "Поддержка", is_forum=True, members={STAFF: "member"})
    tg.raw_update({"message": {"message_id": 900, "date": 1_800_000_000,
                               "chat": {"id": STAFF_CHAT, "type": "group", "title": "Поддержка"},
                               "from": {"id": STAFF, "is_bot": False, "first_name": "Иван"},
                               "migrate_to_chat_id": NEW_STAFF_CHAT}})
    await settle(app, tg)
    if WORKERS > 1:  # the old group refuses sends, as Telegram's does: a worker that has
        # not heard of the upgrade yet has its card moved by the delivery worker
        tg.inject(Fault.error(400, "Bad Request: group chat was upgraded to a supergroup "
                              "chat", {"migrate_to_chat_id": NEW_STAFF_CHAT}), chat_id=STAFF_CHAT)
    tg.send_message(CLIENT, "Не работает принтер")
    await settle(app, tg)
    if WORKERS == 1:  # one process: the card goes to the new group straight away
        assert tg.calls_to("createForumTopic", STAFF_CHAT) == []
        assert tg.calls_to("sendMessage", STAFF_CHAT) == []
    assert tg.sent(STAFF_CHAT) == []
    assert "Не работает принтер" in "\n".join(texts_to(tg, NEW_STAFF_CHAT))
    tg.send_message(STAFF, "/tickets", chat_id=NEW_STAFF_CHAT)
    await settle(app, tg)
    assert "#1" in texts_to(tg, NEW_STAFF_CHAT)[-1]
