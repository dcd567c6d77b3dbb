"""Unit tests of prediction.gtfs.servicedays: calendars, service-day starts, GTFS seconds (no I/O)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from prediction.gtfs.servicedays import (
    SERVICE_ADDED,
    SERVICE_REMOVED,
    CalendarException,
    CalendarRule,
    ServiceCalendar,
    active_service_ids,
    from_gtfs_seconds,
    service_day_start,
    service_days_overlapping,
    to_gtfs_seconds,
)

ALMATY = ZoneInfo("Asia/Almaty")
BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = (True, True, True, True, True, False, False)
WEEKEND = (False, False, False, False, False, True, True)
TUESDAY = dt.date(2026, 3, 10)

RULES = [
    CalendarRule("WD", WEEKDAYS, dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
    CalendarRule("WE", WEEKEND, dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
    CalendarRule("SPRING", WEEKDAYS, dt.date(2026, 3, 1), dt.date(2026, 3, 10)),
]
EXCEPTIONS = [
    CalendarException("WD", dt.date(2026, 3, 12), SERVICE_REMOVED),
    CalendarException("HOLIDAY", dt.date(2026, 3, 12), SERVICE_ADDED),
    CalendarException("WE", dt.date(2026, 3, 13), SERVICE_ADDED),
]


def test_weekly_rules_respect_weekday_and_date_range() -> None:
    assert active_service_ids(RULES, EXCEPTIONS, TUESDAY) == {"WD", "SPRING"}
    assert active_service_ids(RULES, EXCEPTIONS, dt.date(2026, 3, 11)) == {"WD"}
    assert active_service_ids(RULES, EXCEPTIONS, dt.date(2026, 3, 14)) == {"WE"}
    assert active_service_ids(RULES, EXCEPTIONS, dt.date(2027, 1, 4)) == set()


def test_calendar_dates_add_and_remove_services() -> None:
    assert active_service_ids(RULES, EXCEPTIONS, dt.date(2026, 3, 12)) == {"HOLIDAY"}
    assert active_service_ids(RULES, EXCEPTIONS, dt.date(2026, 3, 13)) == {"WD", "WE"}
    # a feed with calendar_dates.txt only
    assert active_service_ids([], EXCEPTIONS, dt.date(2026, 3, 12)) == {"HOLIDAY"}


def test_service_calendar_agrees_with_active_service_ids() -> None:
    calendar = ServiceCalendar.build(RULES, EXCEPTIONS)
    for offset in range(-3, 10):
        day = TUESDAY + dt.timedelta(days=offset)
        assert calendar.active_on(day) == frozenset(active_service_ids(RULES, EXCEPTIONS, day))


def test_service_day_starts_at_local_midnight_without_dst() -> None:
    start = service_day_start(TUESDAY, ALMATY)
    assert start.isoformat() == "2026-03-10T00:00:00+05:00"


def test_service_day_start_on_dst_days_is_noon_minus_12h() -> None:
    spring = service_day_start(dt.date(2026, 3, 29), BERLIN)
    autumn = service_day_start(dt.date(2026, 10, 25), BERLIN)
    assert spring.isoformat() == "2026-03-28T23:00:00+01:00"
    assert autumn.isoformat() == "2026-10-25T01:00:00+02:00"
    # after the change, GTFS times read as wall-clock times again
    assert from_gtfs_seconds(dt.date(2026, 3, 29), 8 * 3600, BERLIN).isoformat() == "2026-03-29T08:00:00+02:00"
    assert from_gtfs_seconds(dt.date(2026, 10, 25), 8 * 3600, BERLIN).isoformat() == "2026-10-25T08:00:00+01:00"


def test_times_past_midnight_belong_to_the_next_calendar_day() -> None:
    moment = from_gtfs_seconds(TUESDAY, 25 * 3600 + 10 * 60, ALMATY)
    assert moment.isoformat() == "2026-03-11T01:10:00+05:00"
    assert to_gtfs_seconds(moment, TUESDAY, ALMATY) == 90600
    assert to_gtfs_seconds(moment, dt.date(2026, 3, 11), ALMATY) == 4200


def test_to_gtfs_seconds_rounding_and_other_offsets() -> None:
    moment = dt.datetime(2026, 3, 10, 3, 0, 0, 500_000, tzinfo=dt.UTC)  # 08:00:00.5 in Almaty
    assert to_gtfs_seconds(moment, TUESDAY, ALMATY) == 8 * 3600
    assert to_gtfs_seconds(moment, TUESDAY, ALMATY, round_up=True) == 8 * 3600 + 1
    assert to_gtfs_seconds(moment, dt.date(2026, 3, 11), ALMATY) == 8 * 3600 - 86_400
    with pytest.raises(ValueError, match="aware"):
        to_gtfs_seconds(dt.datetime(2026, 3, 10, 8), TUESDAY, ALMATY)  # noqa: DTZ001 - naive on purpose


def test_service_days_overlapping_a_window() -> None:
    after_midnight = dt.datetime(2026, 3, 11, 0, 20, tzinfo=ALMATY)
    later = after_midnight + dt.timedelta(minutes=30)
    # with no times past 24:00 yesterday's service is over at midnight
    assert service_days_overlapping(after_midnight, later, ALMATY) == [dt.date(2026, 3, 11)]
    # with a 24:30:00 trip in the feed yesterday's service is still running
    assert service_days_overlapping(after_midnight, later, ALMATY, max_seconds=88_200) == [
        TUESDAY, dt.date(2026, 3, 11)]
    before_midnight = dt.datetime(2026, 3, 10, 23, 45, tzinfo=ALMATY)
    assert service_days_overlapping(before_midnight, before_midnight + dt.timedelta(minutes=30), ALMATY) == [
        TUESDAY, dt.date(2026, 3, 11)]
    # a 50-hour feed reaches two days back
    assert service_days_overlapping(after_midnight, later, ALMATY, max_seconds=50 * 3600)[0] == dt.date(2026, 3, 9)


def test_service_days_overlapping_on_a_dst_evening() -> None:
    # Berlin's 2026-03-29 service day starts at 23:00 on the 28th
    evening = dt.datetime(2026, 3, 28, 23, 30, tzinfo=BERLIN)
    assert dt.date(2026, 3, 29) in service_days_overlapping(evening, evening + dt.timedelta(minutes=10), BERLIN)


def test_module_is_pure() -> None:
    code = ("import sys, prediction.gtfs.servicedays; "
            "print(sorted(m for m in ('flask', 'sqlalchemy', 'redis') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
