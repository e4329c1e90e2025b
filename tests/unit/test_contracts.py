"""Contracts per company (issue 17): durations as staff type them, the level changes of
/org sla, planned works' due dates, the company keys of the config."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bot.config import ConfigError, parse_config
from bot.domain.durations import parse_duration, parse_minutes
from bot.domain.maintenance import cycle_start, next_due
from bot.services.companies import CompanyError, change_level, parse_level, parse_periodicity
from storage.models import Company


@pytest.mark.parametrize(("text", "minutes"), [
    ("30m", 30), ("1h30", 90), ("1h 30m", 90), ("1.5h", 90), ("1,5ч", 90), ("2d", 2880),
    ("45 мин", 45), ("soon", None), ("0m", None), ("1h30x", None), ("", None)])
def test_durations(text: str, minutes: int | None) -> None:
    assert parse_minutes(text) == minutes


def test_a_duration_keeps_its_largest_unit() -> None:
    assert parse_duration("2d") == (2880, "days")
    assert parse_duration("90m") == (90, "minutes")


def config(**extra: Any) -> Any:
    return parse_config({"telegram": {"token": "1:x", "staff_chat_id": -1}, **extra})


def company() -> Company:
    return Company(name="Рога и копыта", sla=None, work_time=None)


def level_of(c: Company) -> tuple[Any, Any]:
    return c.sla, c.work_time


def test_org_sla_changes_a_level_over_the_desks() -> None:
    desk = config()
    c = company()
    change_level(c, parse_level("Рога и копыта critical response 1h"), desk.sla, desk.desk)
    change_level(c, parse_level("Рога и копыта normal resolution 2d --reapply"), desk.sla,
                 desk.desk)
    change_level(c, parse_level("Рога и копыта low 24x7"), desk.sla, desk.desk)
    change_level(c, parse_level("Рога и копыта hours 08:00-20:00"), desk.sla, desk.desk)
    change_level(c, parse_level("Рога и копыта days mon-sat"), desk.sla, desk.desk)
    assert c.sla == {"critical": {"response_hours": 1.0}, "normal": {"resolution_days": 2.0},
                     "low": {"business": False}}
    assert c.work_time == {"work_start": "08:00", "work_end": "20:00",
                           "workdays": ["mon", "tue", "wed", "thu", "fri", "sat"]}
    assert parse_level("Рога и копыта normal resolution 2d --reapply").reapply
    overridden = desk.sla.overridden(c.sla)
    assert overridden.normal.resolution_days == 2 and overridden.normal.resolution_hours is None
    assert overridden.normal.response_hours == 4  # the desk's, untouched
    change_level(c, parse_level("Рога и копыта reset"), desk.sla, desk.desk)
    assert level_of(c) == (None, None)


@pytest.mark.parametrize("text", ["Рога critical response soon", "Рога hours 20:00-08:00",
                                  "Рога timezone Mars/Olympus", "Рога days mon-xyz", "Рога"])
def test_org_sla_refuses_what_is_no_level(text: str) -> None:
    desk = config()
    with pytest.raises(CompanyError):
        change_level(company(), parse_level(text), desk.sla, desk.desk)


def test_due_dates_of_planned_works() -> None:
    today = date(2026, 12, 3)
    assert next_due("weekly", None, today) == today  # never done: at once
    assert next_due("weekly", date(2026, 12, 1), today) == date(2026, 12, 8)
    assert next_due("monthly", date(2026, 1, 31), today) == date(2026, 2, 28)
    assert next_due("months:2", date(2026, 11, 15), today) == date(2027, 1, 15)
    assert next_due("quarterly", date(2026, 11, 15), today) == date(2027, 2, 15)
    assert cycle_start("months:2", date(2026, 12, 1)) == date(2026, 11, 1)
    assert cycle_start("quarterly", date(2026, 12, 1)) == date(2026, 10, 1)
    assert parse_periodicity("раз в 6 месяцев") == "months:6"
    assert parse_periodicity("every 2 months") == "months:2"


def test_company_keys_in_the_config_are_checked() -> None:
    good = config(companies=[{"name": "A", "sla": {"critical": {"response_hours": 1}},
                              "desk": {"work_start": "08:00", "timezone": "Asia/Omsk"},
                              "contacts": [5], "fee": 100, "account_manager": "@boss_x"}])
    assert good.companies[0].sla["critical"].given() == {"response_hours": 1}
    with pytest.raises(ConfigError, match=r"\[companies.0.sla.critical\] .*at most one"):
        config(companies=[{"name": "A", "sla": {"critical": {"response_hours": 1,
                                                             "response_days": 1}}}])
    with pytest.raises(ConfigError, match=r"companies.0.desk \(A\).*work_end"):
        config(companies=[{"name": "A", "desk": {"work_start": "19:00"}}])
    with pytest.raises(ConfigError, match=r"\[companies.0.maintenance.0.every\]"):
        config(companies=[{"name": "A", "maintenance": [{"work": "x", "every": "often"}]}])

