"""Report numbers against a seeded history with a fixed clock.

Every expected figure below is computed by hand from the history in `history` (the
comments say how); the desk's time zone is Europe/Moscow (UTC+3, no DST), so the month
March 2026 is [2026-02-28 21:00, 2026-03-31 21:00) in UTC.
"""

from __future__ import annotations

import csv
import io
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import parse_config
from bot.domain.periods import PeriodError, parse_month, parse_period, previous_month
from bot.messaging.texts import Texts
from bot.services.reports.act import build_act
from bot.services.reports.render import (
    act_csv,
    chart_labels,
    csv_cell,
    render_act_html,
    render_chart,
    template_path,
    write_act,
)
from bot.services.reports.stats import Compliance, Durations, compute_stats
from storage.db import Database
from storage.migrate import upgrade_async
from storage.models import (
    Client,
    Company,
    MaintenanceDone,
    QualityCampaign,
    QualityDelivery,
    Rating,
    RatingAgent,
    Ticket,
)
from tests.conftest import ACT_FORMATS

ZONE = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
IVAN, MARIA = 7001, 7002


def utc(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'reports.db'}"
    await upgrade_async(url)
    database = Database(url)
    yield database
    await database.dispose()


async def history(db: Database) -> dict[str, Any]:
    """Two companies, four clients, ten incidents, ratings, works done, one quality check."""
    async with db.transaction() as s:
        horns = Company(name="Рога и копыта", invite_code="org-horns", services="1С, почта",
                        maintenance=[{"work": "Антивирус", "every": "weekly"},
                                     {"work": "Тест бэкапов", "every": "monthly"},
                                     {"work": "Аудит", "every": "quarterly"}],
                        source="chat", created_at=utc(1, 1))
        daisy = Company(name="Ромашка", invite_code="org-daisy", maintenance=[], source="chat",
                        created_at=utc(1, 1))
        s.add_all([horns, daisy])
        await s.flush()
        clients = []
        for n, company in enumerate([horns, horns, daisy, None], start=1):
            client = Client(user_id=5000 + n, chat_id=5000 + n, first_name=f"Клиент{n}",
                            language="ru", company_id=company.id if company else None,
                            company=company.name if company else None,
                            created_at=utc(1, 1), last_seen_at=utc(1, 1))
            s.add(client)
            clients.append(client)
        await s.flush()
        c1, c2, c3, c4 = clients

        def ticket(number: int, client: Client, severity: str, status: str, opened: datetime,
                   **fields: Any) -> Ticket:
            row = Ticket(number=number, client_id=client.id, severity=severity, status=status,
                         subject=f"Инцидент {number}", reopen_count=fields.pop("reopen", 0),
                         opened_at=opened, updated_at=opened, **fields)
            s.add(row)
            return row

        t1 = ticket(1, c1, "critical", "closed", utc(3, 2, 10),
                    first_response_at=utc(3, 2, 10, 30), resolved_at=utc(3, 2, 14),
                    closed_at=utc(3, 2, 14), first_response_met=True, resolution_met=True,
                    resolution_seconds=14400, assignee_id=IVAN, assignee_name="Иван")
        t2 = ticket(2, c1, "normal", "closed", utc(3, 3, 9), reopen=1,
                    first_response_at=utc(3, 3, 10), resolved_at=utc(3, 5, 9),
                    first_response_met=True, resolution_met=False, resolution_seconds=30000,
                    assignee_id=IVAN, assignee_name="Иван")
        t3 = ticket(3, c2, "low", "resolved", utc(3, 10, 12),
                    first_response_at=utc(3, 10, 14), resolved_at=utc(3, 11, 12),
                    first_response_met=True, resolution_met=True,
                    assignee_id=MARIA, assignee_name="Мария")
        ticket(4, c3, "normal", "resolved", utc(3, 15, 8), resolved_at=utc(3, 15, 8, 20),
               resolution_kind="faq")
        ticket(5, c3, "critical", "in_progress", utc(3, 20, 10),
               first_response_at=utc(3, 20, 13), first_response_met=False,
               resolution_breached_at=utc(3, 20, 18), assignee_id=MARIA, assignee_name="Мария")
        # 2026-03-31 21:30 UTC is 1 April 00:30 in Moscow: an April incident.
        ticket(6, c4, "normal", "new", utc(3, 31, 21, 30))
        # 2026-02-28 22:00 UTC is 1 March in Moscow: a March incident.
        t7 = ticket(7, c4, "low", "closed", utc(2, 28, 22),
                    first_response_at=utc(2, 28, 22, 10), resolved_at=utc(3, 1, 0),
                    first_response_met=True, resolution_met=True,
                    assignee_id=IVAN, assignee_name="Иван")
        # Opened in February, resolved in March.
        t8 = ticket(8, c1, "normal", "closed", utc(2, 10, 10),
                    first_response_at=utc(2, 10, 11), resolved_at=utc(3, 4, 10),
                    first_response_met=True, resolution_met=True, resolution_seconds=50000,
                    assignee_id=MARIA, assignee_name="Мария")
        ticket(9, c2, "normal", "new", utc(3, 25, 10))
        t10 = ticket(10, c3, "low", "closed", utc(2, 5, 10), first_response_at=utc(2, 5, 11),
                     resolved_at=utc(2, 6, 10), assignee_id=IVAN, assignee_name="Иван")
        await s.flush()

        def rate(t: Ticket, client: Client, score: int, at: datetime, agents: list[tuple[int, str]],
                 counted: bool = True) -> None:
            rating = Rating(ticket_id=t.id, client_id=client.id, state="requested", score=score,
                            counted=counted, rated_at=at, question_open=False)
            s.add(rating)
            pending.append((rating, agents))

        pending: list[tuple[Rating, list[tuple[int, str]]]] = []
        rate(t1, c1, 5, utc(3, 2, 15), [(IVAN, "Иван")])
        rate(t2, c1, 2, utc(3, 5, 10), [(IVAN, "Иван")])
        rate(t7, c4, 4, utc(3, 1, 1), [(IVAN, "Иван")])
        rate(t8, c1, 3, utc(3, 5, 12), [(MARIA, "Мария")])
        rate(t3, c2, 1, utc(3, 12), [(MARIA, "Мария")], counted=False)  # a staff member's
        rate(t10, c3, 1, utc(2, 6, 12), [(IVAN, "Иван")])  # February
        await s.flush()
        for rating, agents in pending:
            for agent_id, name in agents:
                s.add(RatingAgent(rating_id=rating.id, agent_id=agent_id, agent_name=name))

        for work, at in [("Антивирус", utc(3, 7, 9)), ("Антивирус", utc(3, 14, 9)),
                         ("Тест бэкапов", utc(2, 20, 9)), ("Аудит", utc(1, 20, 9))]:
            s.add(MaintenanceDone(company_id=horns.id, work=work, done_at=at, actor_id=IVAN,
                                  actor_name="Иван"))
        campaign = QualityCampaign(period="2025Q4", period_start=utc(1, 1) - timedelta(days=92),
                                   period_end=utc(1, 1), status="running",
                                   created_at=utc(3, 2, 8))
        s.add(campaign)
        await s.flush()
        s.add(QualityDelivery(campaign_id=campaign.id, client_id=c1.id, status="pending",
                              incidents=0, closed=0, score=5, answered_at=utc(3, 3)))
        s.add(QualityDelivery(campaign_id=campaign.id, client_id=c2.id, status="pending",
                              incidents=0, closed=0))
        return {"horns": horns.id, "daisy": daisy.id}


def H(hours: float) -> float:
    return hours * 3600.0


async def test_march_figures(db: Database) -> None:
    await history(db)
    period = parse_period("2026-03", NOW, ZONE)
    assert (period.start, period.end) == (utc(2, 28, 21), utc(3, 31, 21))
    async with db.transaction() as s:
        st = await compute_stats(s, period, NOW)
    # Opened in March (local): #1 #5 critical; #2 #4 #9 normal; #3 #7 low (#6 is April,
    # #8 #10 February).
    assert st.opened == {"critical": 2, "normal": 3, "low": 2}
    # Resolved in March: #1 critical; #2 #4 #8 normal; #3 #7 low.
    assert st.closed == {"critical": 1, "normal": 3, "low": 2}
    # Open now: #5 critical; #6 #9 normal.
    assert st.open_now == {"critical": 1, "normal": 2, "low": 0}
    # First responses of March incidents: #7 10m, #1 30m, #2 1h, #3 2h, #5 3h.
    assert st.first_response == Durations(5, H(1), H(3))
    # Resolutions (FAQ #4 left out): #7 2h, #1 4h, #3 24h, #2 48h, #8 22 days.
    assert st.resolution == Durations(5, H(24), H(22 * 24))
    # Response verdicts: #1 met, #5 not; #2 met; #3 #7 met. Resolution: #1 met, #5 overdue
    # without a verdict; #2 not met; #3 #7 met. #4 #9 have no verdict.
    assert st.sla_response == {"critical": Compliance(1, 2),
                               "normal": Compliance(1, 1),
                               "low": Compliance(2, 2)}
    assert st.sla_resolution == {"critical": Compliance(1, 2),
                                 "normal": Compliance(0, 1),
                                 "low": Compliance(2, 2)}
    assert st.sla_total("response") == Compliance(4, 5)
    assert st.sla_total("response").percent == 80.0
    assert st.sla_total("resolution").percent == 60.0
    assert (st.deflected, st.deflected_share) == (1, 16.7)  # #4 of 6 closed
    assert (st.reopened, st.reopen_rate) == (1, 16.7)  # #2 of 6 closed
    # Ratings given in March, counted: 5 (#1), 2 (#2), 4 (#7), 3 (#8); the staff rating of
    # #3 and February's #10 are not.
    assert st.ratings.counts == {5: 1, 4: 1, 3: 1, 2: 1, 1: 0}
    assert (st.ratings.total, st.ratings.average) == (4, 3.5)
    assert st.ratings.percent == {5: 25.0, 4: 25.0, 3: 25.0, 2: 25.0, 1: 0.0}
    # The quality check started on 2 March: 2 deliveries, 1 answer (5).
    assert [(c.period, q.total, q.answered, q.distribution.average) for c, q in st.quality] == [
        ("2025Q4", 2, 1, 5.0)]
    # Opened in March per company: Рога и копыта #1 #2 #3 #9; Ромашка #4 #5.
    assert [(r.name, r.incidents) for r in st.top_by_incidents] == [("Рога и копыта", 4),
                                                                    ("Ромашка", 2)]
    # Staff time of March closures: Рога и копыта 14400 (#1) + 30000 (#2) + 86400 (#3 has
    # no SLA time: wall clock) + 50000 (#8); Ромашка #4 20 minutes (wall clock).
    assert [(r.name, r.closed, r.staff_seconds) for r in st.top_by_time] == [
        ("Рога и копыта", 4, 180800.0), ("Ромашка", 1, 1200.0)]
    # Per agent, of March closures: Иван #1 #2 #7 (responses 30m, 1h, 10m), Мария #3 #8
    # (2h, 1h); ratings: Иван 5, 2, 4; Мария 3.
    agents = {a.name: a for a in st.agents}
    assert [a.name for a in st.agents] == ["Иван", "Мария"]
    assert (agents["Иван"].handled, agents["Иван"].response.median) == (3, H(0.5))
    assert (agents["Мария"].handled, agents["Мария"].response.median) == (2, H(1.5))
    assert (agents["Иван"].ratings.total, agents["Иван"].ratings.average) == (3, 3.67)
    assert (agents["Мария"].ratings.total, agents["Мария"].ratings.average) == (1, 3.0)
    # Per local day: 31 days; #7 on 1 March (low), #1 on 2 March (critical) ...
    assert len(st.per_day) == 31
    days = {d.day: counts for d, counts in st.per_day}
    assert days[1] == {"critical": 0, "normal": 0, "low": 1}
    assert days[2] == {"critical": 1, "normal": 0, "low": 0}
    assert sum(sum(c.values()) for c in days.values()) == 7


async def test_company_month(db: Database) -> None:
    ids = await history(db)
    period = parse_period("2026-03", NOW, ZONE)
    async with db.transaction() as s:
        horns = await s.get(Company, ids["horns"])
        assert horns is not None
        st = await compute_stats(s, period, NOW, company=horns)
    assert st.opened == {"critical": 1, "normal": 2, "low": 1}  # #1 #2 #9 #3
    assert st.closed == {"critical": 1, "normal": 2, "low": 1}  # #1 #2 #8 #3
    assert st.open_now == {"critical": 0, "normal": 1, "low": 0}  # #9
    assert (st.ratings.total, st.ratings.average) == (3, 3.33)  # 5, 2, 3
    assert st.quality == [] and st.top_by_incidents == []


async def test_empty_period(db: Database) -> None:
    await history(db)
    period = parse_period("2025-12", NOW, ZONE)
    async with db.transaction() as s:
        st = await compute_stats(s, period, NOW)
    assert st.opened_total == st.closed_total == 0
    assert st.open_now_total == 3  # now, whatever the period
    assert st.first_response == st.resolution == Durations()
    assert st.sla_total("response") == Compliance(0, 0)
    assert st.sla_total("response").percent is None
    assert (st.deflected, st.reopened, st.reopen_rate) == (0, 0, None)
    assert (st.ratings.total, st.ratings.average) == (0, None)
    assert not (st.agents or st.top_by_incidents or st.top_by_time or st.quality)
    assert all(sum(c.values()) == 0 for _, c in st.per_day) and len(st.per_day) == 31
    text = Texts("ru", "Europe/Moscow").staff("stats", stats=st)
    assert "Поступило: 0" in text and "Оценок нет." in text


async def test_month_without_ratings(db: Database) -> None:
    await history(db)
    period = parse_period("2026-04", NOW, ZONE)
    async with db.transaction() as s:
        st = await compute_stats(s, period, NOW)
    assert st.opened == {"critical": 0, "normal": 1, "low": 0}  # #6, 1 April in Moscow
    assert (st.ratings.total, st.ratings.average) == (0, None)
    assert st.ratings.percent == dict.fromkeys((5, 4, 3, 2, 1), 0.0)
    # April so far: 1..10 April.
    assert len(st.per_day) == 10
    texts = Texts("ru", "Europe/Moscow")
    assert "Оценок нет." in texts.staff("stats", stats=st)
    png = render_chart(st, chart_labels(texts, "ru", st))
    assert_png(png)


def assert_png(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert 600 <= width <= 2000 and 600 <= height <= 2000, (width, height)
    assert 10_000 < len(png) < 2_000_000
    return width, height


async def test_stats_text_and_chart(db: Database) -> None:
    await history(db)
    period = parse_period("2026-03", NOW, ZONE)
    async with db.transaction() as s:
        st = await compute_stats(s, period, NOW)
    texts = Texts("ru", "Europe/Moscow")
    text = texts.staff("stats", stats=st)
    for line in ("Поступило: 7 (🔴 2 · 🟡 3 · 🟢 2)", "Закрыто: 6 (🔴 1 · 🟡 3 · 🟢 2)",
                 "Открыто сейчас: 3 (🔴 1 · 🟡 2 · 🟢 0)",
                 "Первый ответ: медиана 1h 00m, p90 3h 00m (по 5)",
                 "Решение: медиана 1d 0h, p90 22d 0h (по 5)",
                 "критическая: 1/2 (50.0%) · 1/2 (50.0%)", "всего: 4/5 (80.0%) · 3/5 (60.0%)",
                 "Решено через FAQ: 1 (16.7% закрытых)", "Открывались повторно: 1 из 6 (16.7%)",
                 "Отлично 1 — 25.0%", "Ужас 0 — 0.0%", "Средняя 3.5, оценок 4",
                 "2025Q4: отправлено 0 из 2, ответили 1, средняя 5.0",
                 "1. Рога и копыта — 4", "1. Рога и копыта — 2d 2h (4 обр.)",
                 "Иван: закрыто 3, ответ (медиана) 30m, оценок 3 (средняя 3.67)"):
        assert line in text, line
    english = Texts("en", "Europe/Moscow").staff("stats", stats=st)
    assert "Excellent 1 — 25.0%" in english and "Opened: 7" in english
    # Opening the image: a valid PNG of a sensible size (matplotlib's Agg canvas).
    from PIL import Image

    png = render_chart(st, chart_labels(texts, "ru", st))
    width, height = assert_png(png)
    with Image.open(io.BytesIO(png)) as image:
        image.verify()
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (width, height) == (1000, 1000)
        assert len(image.getcolors(1_000_000) or []) > 10  # not a blank canvas


async def test_act_html_and_csv(db: Database, tmp_path: Path) -> None:
    ids = await history(db)
    period = parse_month("2026-03", ZONE)
    async with db.transaction() as s:
        horns = await s.get(Company, ids["horns"])
        assert horns is not None
        act = await build_act(s, horns, period, NOW, "ИТ-Сервис")
    # Resolved in March, in order: #1 (2 Mar), #8 (4 Mar), #2 (5 Mar), #3 (11 Mar).
    assert [i.number for i in act.incidents] == [1, 8, 2, 3]
    assert [i.rating for i in act.incidents] == [5, 3, 2, None]  # #3's rating not counted
    assert act.opened == 4  # #1 #2 #3 #9
    # Responses 30m, 1h, 1h, 2h; resolutions 4h, 22d, 48h, 24h.
    assert act.response == Durations(4, H(1), H(2))
    assert act.resolution == Durations(4, H(36), H(22 * 24))
    assert (act.sla.met, act.sla.total, act.sla.percent) == (3, 4, 75.0)  # #2 missed
    assert (act.ratings.total, act.ratings.average) == (3, 3.33)
    assert act.by_severity == {"critical": 1, "normal": 2, "low": 1}
    # Works: the antivirus done twice in March, the backup test only in February (so it is
    # scheduled), the quarterly audit done in January (the same quarter).
    assert [(w.work, w.status, [d.day for d in w.done]) for w in act.works] == [
        ("Антивирус", "done", [7, 14]), ("Тест бэкапов", "scheduled", []),
        ("Аудит", "done", [20])]

    html = render_act_html(act, "ru")
    for fragment in ("Акт выполненных работ", "Рога и копыта", "март 2026",
                     "01.03.2026 — 31.03.2026", "ИТ-Сервис",
                     "Услуги по договору:</td><td>1С, почта", "#1", "#8", "#2", "#3",
                     "Инцидент 8", "выполнено 07.03.2026, 14.03.2026",
                     "запланировано", "выполнено 20.01.2026", "Замечания заказчика",
                     "<td>Решено обращений</td><td>4 (критических 1, обычных 2, низких 1)",
                     "3 из 4 (75,0%)", "3, средняя 3,33 из 5", "@page"):
        assert fragment in html, fragment
    assert ">#5<" not in html and ">#4<" not in html  # open, and another company's
    english = render_act_html(act, "en")
    assert "Act of performed work" in english and "March 2026" in english

    rows = list(csv.reader(io.StringIO(act_csv(act, "ru"))))
    assert rows[0][0] == "Номер"
    assert [r[0] for r in rows[1:5]] == ["1", "8", "2", "3"]
    assert rows[1][8:13] == ["30", "240", "0", "5", "да"]
    assert rows[1][5] == "критическая" and "обычная" not in rows[0]
    assert ["Итого", "4"] in rows

    paths = write_act(act, tmp_path / "acts", "ru")
    assert [p.name for p in paths] == [f"act-Рога_и_копыта-2026-03.{ext}" for ext in ACT_FORMATS]
    assert "pdf" not in ACT_FORMATS or paths[0].read_bytes().startswith(b"%PDF")
    assert paths[-1].read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 with a BOM


async def test_act_of_an_empty_month_and_own_template(db: Database, tmp_path: Path) -> None:
    ids = await history(db)
    own = tmp_path / "brand" / "act.html"
    own.parent.mkdir()
    own.write_text("<h1>{{ act.company.name }}</h1>{% for i in act.incidents %}#{{ i.number }}"
                   "{% endfor %}<p>{{ act.incidents|length }} / {{ act.generated_at|day }}</p>",
                   encoding="utf-8")
    async with db.transaction() as s:
        daisy = await s.get(Company, ids["daisy"])
        assert daisy is not None
        act = await build_act(s, daisy, parse_month("2025-12", ZONE), NOW, "D")
    assert act.incidents == [] and act.works == [] and act.opened == 0
    assert act.resolution == Durations() and act.sla.percent is None
    html = render_act_html(act, "ru")
    assert "За период обращений не было." in html and "нет оценок" in html
    assert render_act_html(act, "ru", own) == "<h1>Ромашка</h1><p>0 / 10.04.2026</p>"
    config = parse_config({"telegram": {"token": "1:A", "staff_chat_id": -1},
                           "reports": {"act_template": "brand/act.html"}},
                          source=tmp_path / "config.toml")
    assert template_path(config) == own


def test_periods() -> None:
    now = datetime(2026, 3, 18, 12, tzinfo=UTC)  # a Wednesday
    week = parse_period("week", now, ZONE)
    assert (week.label, week.first_day.day, week.after_day.day) == ("2026-W12", 16, 23)
    quarter = parse_period("quarter", now, ZONE)
    assert (quarter.label, quarter.start, quarter.end) == (
        "2026Q1", datetime(2025, 12, 31, 21, tzinfo=UTC), datetime(2026, 3, 31, 21, tzinfo=UTC))
    assert parse_period(None, now, ZONE).label == "2026-03"
    assert previous_month(datetime(2026, 1, 5, tzinfo=UTC), ZONE).label == "2025-12"
    for bad in ("2026-13", "yesterday", "26-03"):
        with pytest.raises(PeriodError):
            parse_period(bad, now, ZONE)


def test_durations_percentiles() -> None:
    assert Durations.of([]) == Durations()
    assert Durations.of([5.0]) == Durations(1, 5.0, 5.0)
    # Even count: the median is the mean of the middle two; p90 is the ceil(0.9 n)-th value.
    values = [float(v) for v in range(1, 11)]
    assert Durations.of(values) == Durations(10, 5.5, 9.0)
    assert Durations.of([*values, 11.0]) == Durations(11, 6.0, 10.0)


def test_report_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from bot.cli.main import main

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    async def seed() -> None:
        await upgrade_async(url)
        database = Database(url)
        await history(database)
        await database.dispose()

    asyncio.run(seed())
    config = tmp_path / "config.toml"
    config.write_text(f'[telegram]\ntoken = "1:A"\nstaff_chat_id = -1\n[database]\nurl = "{url}"\n'
                      '[desk]\nname = "ИТ-Сервис"\n', encoding="utf-8")
    out = tmp_path / "out"
    code = main(["report", "--month", "2026-03", "--company", "рога", "--out", str(out),
                 "--config", str(config)])
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == [f"act-Рога_и_копыта-2026-03.{ext}"
                                               for ext in ACT_FORMATS]
    html = (out / "act-Рога_и_копыта-2026-03.html").read_text(encoding="utf-8")
    assert "ИТ-Сервис" in html and "Инцидент 8" in html
    assert main(["report", "--month", "2026-3x", "--company", "рога", "--out", str(out),
                 "--config", str(config)]) == 2
    assert main(["report", "--month", "2026-03", "--company", "Нет такой", "--out", str(out),
                 "--config", str(config)]) == 2
    assert "no such company" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["=1+1", "+7 999", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_that_start_a_formula_are_text(text: str) -> None:
    assert csv_cell(text) == "'" + text
    assert csv_cell("обычный текст") == "обычный текст" and csv_cell(-2) == -2
