"""Service days: which GTFS services run on a date, and where a service day sits in absolute time.

A GTFS time of day counts seconds from "noon minus 12 h" of the service day (usually local
midnight; an hour off on daylight-saving days), so ``25:10:00`` on Monday's service is 01:10 on
Tuesday. All arithmetic here goes through UTC: adding a ``timedelta`` to an aware local datetime
would add wall-clock time and be wrong across a DST change.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

__all__ = [
    "SERVICE_ADDED",
    "SERVICE_REMOVED",
    "CalendarException",
    "CalendarRule",
    "ServiceCalendar",
    "active_service_ids",
    "from_gtfs_seconds",
    "service_day_start",
    "service_days_overlapping",
    "to_gtfs_seconds",
]

SERVICE_ADDED = 1
SERVICE_REMOVED = 2
_DAY_S = 86_400


@dataclass(frozen=True)
class CalendarRule:
    """One row of ``calendar.txt``: ``weekdays[0]`` is Monday."""

    service_id: str
    weekdays: tuple[bool, bool, bool, bool, bool, bool, bool]
    start_date: dt.date
    end_date: dt.date

    def runs_on(self, day: dt.date) -> bool:
        return self.start_date <= day <= self.end_date and self.weekdays[day.weekday()]


@dataclass(frozen=True)
class CalendarException:
    """One row of ``calendar_dates.txt``: ``exception_type`` 1 adds the service, 2 removes it."""

    service_id: str
    date: dt.date
    exception_type: int


def active_service_ids(
    calendars: Iterable[CalendarRule], calendar_dates: Iterable[CalendarException], day: dt.date
) -> set[str]:
    """The service ids that run on ``day``: weekly rules, then that date's additions and removals."""
    active = {rule.service_id for rule in calendars if rule.runs_on(day)}
    for exception in calendar_dates:
        if exception.date != day:
            continue
        if exception.exception_type == SERVICE_ADDED:
            active.add(exception.service_id)
        elif exception.exception_type == SERVICE_REMOVED:
            active.discard(exception.service_id)
    return active


@dataclass(frozen=True)
class ServiceCalendar:
    """A feed's calendars indexed for repeated ``active_on`` questions (kept per feed version)."""

    rules: tuple[CalendarRule, ...]
    exceptions: Mapping[dt.date, tuple[CalendarException, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, rules: Iterable[CalendarRule], exceptions: Iterable[CalendarException]) -> ServiceCalendar:
        by_date: defaultdict[dt.date, list[CalendarException]] = defaultdict(list)
        for exception in exceptions:
            by_date[exception.date].append(exception)
        return cls(tuple(rules), {day: tuple(rows) for day, rows in by_date.items()})

    def active_on(self, day: dt.date) -> frozenset[str]:
        return frozenset(active_service_ids(self.rules, self.exceptions.get(day, ()), day))


def service_day_start(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The instant GTFS time 0 of service day ``day`` refers to: local noon minus 12 hours, in ``tz``."""
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=tz)
    return (noon.astimezone(dt.UTC) - dt.timedelta(hours=12)).astimezone(tz)


def from_gtfs_seconds(day: dt.date, seconds: int, tz: ZoneInfo) -> dt.datetime:
    """The local time of GTFS time ``seconds`` on service day ``day`` (``90600`` → 01:10 the next day)."""
    start = service_day_start(day, tz).astimezone(dt.UTC)
    return (start + dt.timedelta(seconds=seconds)).astimezone(tz)


def to_gtfs_seconds(moment: dt.datetime, day: dt.date, tz: ZoneInfo, *, round_up: bool = False) -> int:
    """Whole seconds from the start of service day ``day`` to the aware ``moment`` (may be negative).

    Rounds down by default; ``round_up`` gives the first whole second at or after ``moment``.
    """
    if moment.utcoffset() is None:
        raise ValueError("moment must be timezone-aware")
    elapsed = (moment.astimezone(dt.UTC) - service_day_start(day, tz).astimezone(dt.UTC)).total_seconds()
    return math.ceil(elapsed) if round_up else math.floor(elapsed)


def service_days_overlapping(
    start: dt.datetime, end: dt.datetime, tz: ZoneInfo, max_seconds: int = _DAY_S
) -> list[dt.date]:
    """Service days whose GTFS times ``0..max_seconds`` can fall within ``[start, end]``, oldest first.

    ``max_seconds`` is the latest GTFS time in the feed: 25:10:00 means yesterday's service can
    still be running this morning.
    """
    if start.utcoffset() is None or end.utcoffset() is None:
        raise ValueError("start and end must be timezone-aware")
    lookback = max(1, math.ceil(max_seconds / _DAY_S))
    first = start.astimezone(tz).date() - dt.timedelta(days=lookback)
    last = end.astimezone(tz).date() + dt.timedelta(days=1)
    days = []
    day = first
    while day <= last:
        day_start = service_day_start(day, tz).astimezone(dt.UTC)
        if day_start <= end and day_start + dt.timedelta(seconds=max_seconds) >= start:
            days.append(day)
        day += dt.timedelta(days=1)
    return days
