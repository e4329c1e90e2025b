"""Companies: contract notes parsing, finding by name, linking, config sync, and the
migration that turns the free-text `clients.company` into companies."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from bot.config import parse_config
from bot.services import companies as org
from storage.db import Database
from storage.migrate import alembic_config, upgrade_async
from storage.models import Client, Company

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def test_parse_works() -> None:
    assert org.parse_works("антивирус — еженедельно; бэкапы: monthly\nАудит - раз в квартал;"
                           " Замена картриджа") == [
        {"work": "антивирус", "every": "weekly"}, {"work": "бэкапы", "every": "monthly"},
        {"work": "Аудит", "every": "quarterly"}, {"work": "Замена картриджа", "every": "monthly"}]
    with pytest.raises(org.CompanyError) as error:
        org.parse_works("антивирус — иногда")
    assert error.value.code == "bad_periodicity"


async def test_find_link_rename_and_sync(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'org.db'}"
    await upgrade_async(url)
    db = Database(url)
    try:
        async with db.transaction() as s:
            horns = await org.create(s, "  Рога   и копыта ", NOW)
            await org.create(s, "Ромашка", NOW)
            await org.create(s, "Ромашка-Плюс", NOW)
            assert horns.name == "Рога и копыта" and horns.invite_code.startswith("org-")
            with pytest.raises(org.CompanyError, match="exists"):
                await org.create(s, "РОГА И КОПЫТА", NOW)
            assert (await org.find(s, "рога и КОПЫТА")).id == horns.id  # Cyrillic case
            assert (await org.find(s, "ромашка")).name == "Ромашка"  # exact beats prefix
            assert (await org.find(s, "плюс")).name == "Ромашка-Плюс"  # a unique part
            with pytest.raises(org.CompanyError) as ambiguous:
                await org.find(s, "ром")
            assert ambiguous.value.context["names"] == ["Ромашка", "Ромашка-Плюс"]

            client = Client(user_id=1, chat_id=1, language="ru", created_at=NOW,
                            last_seen_at=NOW)
            s.add(client)
            await s.flush()
            assert await org.join_by_invite(s, client, "nonsense", NOW) is None
            assert await org.join_by_invite(s, client, horns.invite_code, NOW) == \
                org.Join("joined", horns)
            assert (client.company_id, client.company) == (horns.id, "Рога и копыта")
            await org.rename(s, horns, "Рога и Копыта ООО")
            await s.refresh(client)
            assert client.company == "Рога и Копыта ООО"

            horns.maintenance = org.parse_works("Антивирус — weekly")
            done = await org.mark_done(s, horns, "анти", NOW, 7, "Иван")
            assert done.work == "Антивирус"
            with pytest.raises(org.CompanyError, match="unknown_work"):
                await org.mark_done(s, horns, "бэкап", NOW, 7, "Иван")

        config = parse_config({"telegram": {"token": "1:A", "staff_chat_id": -1}, "companies": [
            {"name": "ромашка", "services": ["1С", "почта"],
             "maintenance": [{"work": "Бэкапы", "every": "monthly"}]},
            {"name": "Новая"}]})
        assert await org.sync_from_config(db, config.companies, NOW) == 1
        assert await org.sync_from_config(db, config.companies, NOW) == 0
        async with db.transaction() as s:
            daisy = await org.find(s, "Ромашка")
            assert (daisy.services, daisy.source) == ("1С; почта", "config")
            assert daisy.maintenance == [{"work": "Бэкапы", "every": "monthly"}]
            assert (await org.find(s, "Новая")).source == "config"
    finally:
        await db.dispose()


def test_migration_turns_typed_company_names_into_companies(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    config = alembic_config(f"sqlite+aiosqlite:///{path}")
    command.upgrade(config, "0004")
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        for user, company in [(1, "Рога и копыта"), (2, " Рога и копыта "), (3, None), (4, "")]:
            connection.execute(sa.text(
                "INSERT INTO clients (user_id, chat_id, first_name, language, company, "
                "contact_asked, wants_new_ticket, created_at, last_seen_at) VALUES "
                "(:u, :u, 'x', 'ru', :c, 0, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"),
                {"u": user, "c": company})
    command.upgrade(config, "0005")
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT user_id, company_id, company FROM clients ORDER BY user_id")).all()
        names = connection.execute(sa.text("SELECT id, name FROM companies")).all()
    engine.dispose()
    assert [name for _, name in names] == ["Рога и копыта"]
    company_id = names[0][0]
    assert rows == [(1, company_id, "Рога и копыта"), (2, company_id, "Рога и копыта"),
                    (3, None, None), (4, None, "")]
    assert Company.__tablename__ == "companies"
