"""`[quality] period`: a check per quarter (the default) or per month."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.config import ConfigError, parse_config
from bot.services import quality as q

TELEGRAM: dict[str, Any] = {"telegram": {"token": "1:x", "staff_chat_id": -100}}


def test_period_defaults_to_the_quarter_and_a_bad_one_names_the_key() -> None:
    config = parse_config(TELEGRAM)
    assert config.quality.period == "quarter"
    assert config.quality.crontab == "0 11 * 1,4,7,10 *"
    with pytest.raises(ConfigError, match=r"\[quality.period\]"):
        parse_config({**TELEGRAM, "quality": {"period": "week"}})


def test_a_monthly_check_sums_up_the_month_before_and_runs_every_month() -> None:
    monthly = parse_config({**TELEGRAM, "quality": {"period": "month"}})
    assert monthly.quality.crontab == "0 11 * * *"
    written = parse_config({**TELEGRAM, "quality": {"period": "month",
                                                    "schedule": "0 10 2 * *"}})
    assert written.quality.crontab == "0 10 2 * *"
    moment = datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert q.checked_period(monthly, moment).label == "2026-11"
    assert q.checked_period(parse_config(TELEGRAM), moment).label == "2026Q3"
