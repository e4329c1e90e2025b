from datetime import UTC, date, datetime, time, timedelta

import pytest

from bot.domain.calendar import CALENDAR_24X7, BusinessCalendar, SlaClock

H = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# Moscow is UTC+3 all year: 09:00-18:00 local is 06:00-15:00 UTC.
MOSCOW = BusinessCalendar("Europe/Moscow", {0, 1, 2, 3, 4}, time(9), time(18), {date(2024, 5, 9)})


def test_is_open_uses_local_wall_clock() -> None:
    # Wednesday 2024-05-15
    assert not MOSCOW.is_open(utc(2024, 5, 15, 5, 59))
    assert MOSCOW.is_open(utc(2024, 5, 15, 6, 0))
    assert MOSCOW.is_open(utc(2024, 5, 15, 14, 59))
    assert not MOSCOW.is_open(utc(2024, 5, 15, 15, 0))


def test_weekend_and_holiday_are_closed() -> None:
    assert not MOSCOW.is_open(utc(2024, 5, 18, 10))  # Saturday
    assert not MOSCOW.is_open(utc(2024, 5, 9, 10))  # Victory Day, a Thursday


def test_next_open_is_now_when_open_else_next_morning() -> None:
    assert MOSCOW.next_open(utc(2024, 5, 15, 10)) == utc(2024, 5, 15, 10)
    assert MOSCOW.next_open(utc(2024, 5, 15, 20)) == utc(2024, 5, 16, 6)
    # Friday evening -> Monday 09:00 Moscow
    assert MOSCOW.next_open(utc(2024, 5, 17, 16)) == utc(2024, 5, 20, 6)
    # Wednesday evening before the holiday -> Friday
    assert MOSCOW.next_open(utc(2024, 5, 8, 16)) == utc(2024, 5, 10, 6)


def test_next_open_before_opening_on_local_date_that_differs_from_utc() -> None:
    # 23:30 UTC Sunday is 02:30 Monday in Moscow: opens the same local Monday.
    assert MOSCOW.next_open(utc(2024, 5, 19, 23, 30)) == utc(2024, 5, 20, 6)


def test_add_across_the_night() -> None:
    # Wednesday 17:00 Moscow + 4h business = Thursday 12:00 Moscow
    assert MOSCOW.add(utc(2024, 5, 15, 14), 4 * H) == utc(2024, 5, 16, 9)


def test_add_across_weekend_and_holiday() -> None:
    # Friday 17:00 Moscow + 2h = Monday 10:00
    assert MOSCOW.add(utc(2024, 5, 17, 14), 2 * H) == utc(2024, 5, 20, 7)
    # Wednesday 17:00 Moscow + 2h skips the Thursday holiday -> Friday 10:00
    assert MOSCOW.add(utc(2024, 5, 8, 14), 2 * H) == utc(2024, 5, 10, 7)


def test_add_starting_when_closed_starts_at_opening() -> None:
    # Saturday + 1h = Monday 10:00 Moscow
    assert MOSCOW.add(utc(2024, 5, 18, 10), H) == utc(2024, 5, 20, 7)


def test_add_exactly_to_closing_stays_on_that_day() -> None:
    assert MOSCOW.add(utc(2024, 5, 15, 14), H) == utc(2024, 5, 15, 15)


def test_add_zero_and_negative() -> None:
    assert MOSCOW.add(utc(2024, 5, 18, 10), timedelta(0)) == utc(2024, 5, 18, 10)
    with pytest.raises(ValueError):
        MOSCOW.add(utc(2024, 5, 18, 10), -H)


def test_elapsed_counts_only_business_time() -> None:
    # Friday 17:00 Moscow -> Monday 10:00 Moscow = 1h + 1h
    assert MOSCOW.elapsed(utc(2024, 5, 17, 14), utc(2024, 5, 20, 7)) == 2 * H
    # a whole working week without the holiday: 4 days * 9h
    assert MOSCOW.elapsed(utc(2024, 5, 6, 0), utc(2024, 5, 11, 0)) == 36 * H
    assert MOSCOW.elapsed(utc(2024, 5, 20, 7), utc(2024, 5, 17, 14)) == timedelta(0)


def test_add_and_elapsed_agree() -> None:
    start = utc(2024, 5, 17, 12, 17)
    for hours in (1, 5, 9, 13, 40):
        assert MOSCOW.elapsed(start, MOSCOW.add(start, hours * H)) == hours * H


def test_yekaterinburg_offset() -> None:
    # UTC+5: 09:00-18:00 local is 04:00-13:00 UTC
    ekb = BusinessCalendar("Asia/Yekaterinburg", {0, 1, 2, 3, 4}, time(9), time(18), set())
    assert ekb.is_open(utc(2024, 5, 15, 4))
    assert not ekb.is_open(utc(2024, 5, 15, 13))
    assert ekb.add(utc(2024, 5, 15, 12), 2 * H) == utc(2024, 5, 16, 5)


def test_berlin_dst_keeps_local_opening_hours() -> None:
    berlin = BusinessCalendar("Europe/Berlin", {0, 1, 2, 3, 4}, time(9), time(17), set())
    # Friday 2024-03-29 is CET (UTC+1); Monday 2024-04-01 is CEST (UTC+2).
    assert berlin.next_open(utc(2024, 3, 29, 17)) == utc(2024, 4, 1, 7)
    # Friday 16:00 CET + 2h = Monday 10:00 CEST
    assert berlin.add(utc(2024, 3, 29, 15), 2 * H) == utc(2024, 4, 1, 8)
    assert berlin.elapsed(utc(2024, 3, 29, 15), utc(2024, 4, 1, 8)) == 2 * H
    # autumn: Friday 2024-10-25 CEST, Monday 2024-10-28 CET
    assert berlin.next_open(utc(2024, 10, 25, 16)) == utc(2024, 10, 28, 8)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        MOSCOW.is_open(datetime(2024, 5, 15, 10))


def test_invalid_calendars_are_rejected() -> None:
    with pytest.raises(ValueError):
        BusinessCalendar("UTC", set(), time(9), time(18), set())
    with pytest.raises(ValueError):
        BusinessCalendar("UTC", {7}, time(9), time(18), set())
    with pytest.raises(ValueError):
        BusinessCalendar("UTC", {0}, time(18), time(9), set())


def test_around_the_clock_calendar() -> None:
    saturday_night = utc(2024, 5, 18, 23)
    assert CALENDAR_24X7.is_open(saturday_night)
    assert CALENDAR_24X7.next_open(saturday_night) == saturday_night
    assert CALENDAR_24X7.add(saturday_night, 4 * H) == utc(2024, 5, 19, 3)
    assert CALENDAR_24X7.elapsed(saturday_night, utc(2024, 5, 19, 3)) == 4 * H


def test_sla_elapsed_without_pauses_is_business_time() -> None:
    opened, now = utc(2024, 5, 15, 7), utc(2024, 5, 15, 10)
    assert SlaClock.elapsed(opened, now, [], MOSCOW) == 3 * H


def test_sla_elapsed_excludes_closed_and_open_pauses() -> None:
    opened, now = utc(2024, 5, 15, 6), utc(2024, 5, 15, 14)
    pauses = [(utc(2024, 5, 15, 8), utc(2024, 5, 15, 9)), (utc(2024, 5, 15, 12), None)]
    # 8h of business time minus 1h closed pause minus 2h of a still-open pause
    assert SlaClock.elapsed(opened, now, pauses, MOSCOW) == 5 * H


def test_sla_elapsed_merges_overlapping_pauses_and_clips_to_window() -> None:
    opened, now = utc(2024, 5, 15, 6), utc(2024, 5, 15, 14)
    pauses = [
        (utc(2024, 5, 15, 5), utc(2024, 5, 15, 7)),  # starts before the ticket opened
        (utc(2024, 5, 15, 9), utc(2024, 5, 15, 11)),
        (utc(2024, 5, 15, 10), utc(2024, 5, 15, 12)),  # overlaps the previous one
    ]
    assert SlaClock.elapsed(opened, now, pauses, MOSCOW) == 8 * H - 1 * H - 3 * H


def test_sla_due_at_without_pauses() -> None:
    assert SlaClock.due_at(utc(2024, 5, 17, 14), 2 * H, [], MOSCOW) == utc(2024, 5, 20, 7)


def test_sla_due_at_is_shifted_by_a_pause() -> None:
    opened = utc(2024, 5, 15, 6)  # 09:00 Moscow
    pauses = [(utc(2024, 5, 15, 7), utc(2024, 5, 15, 9))]  # waiting for the client 2h
    assert SlaClock.due_at(opened, 4 * H, pauses, MOSCOW) == utc(2024, 5, 15, 12)


def test_sla_due_at_pause_over_the_night_costs_only_business_time() -> None:
    opened = utc(2024, 5, 15, 14)  # Wednesday 17:00 Moscow
    # paused from 17:30 Wednesday to 10:00 Thursday Moscow: 0.5h + 1h of business time
    pauses = [(utc(2024, 5, 15, 14, 30), utc(2024, 5, 16, 7))]
    # 30 min worked before the pause, 1.5h remaining from Thursday 10:00
    assert SlaClock.due_at(opened, 2 * H, pauses, MOSCOW) == utc(2024, 5, 16, 8, 30)


def test_sla_due_at_reached_before_the_pause() -> None:
    opened = utc(2024, 5, 15, 6)
    pauses = [(utc(2024, 5, 15, 10), None)]
    assert SlaClock.due_at(opened, 2 * H, pauses, MOSCOW) == utc(2024, 5, 15, 8)


def test_sla_due_at_unknown_while_paused() -> None:
    opened = utc(2024, 5, 15, 6)
    pauses = [(utc(2024, 5, 15, 7), None)]
    assert SlaClock.due_at(opened, 4 * H, pauses, MOSCOW) is None


def test_sla_due_at_around_the_clock_for_critical() -> None:
    opened = utc(2024, 5, 18, 22)  # Saturday night
    pauses = [(utc(2024, 5, 18, 23), utc(2024, 5, 19, 1))]
    assert SlaClock.due_at(opened, 4 * H, pauses, CALENDAR_24X7) == utc(2024, 5, 19, 4)
