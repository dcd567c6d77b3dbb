"""Each feed version's service calendar, loaded once per process (a ready feed version never changes)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Calendar, CalendarDate, Trip
from prediction.gtfs.servicedays import CalendarException, CalendarRule, ServiceCalendar

__all__ = ["CalendarCache", "FeedCalendar", "load_feed_calendar"]


@dataclass(frozen=True)
class FeedCalendar:
    """Which services run when, and the latest GTFS time in the feed (how far a service day reaches)."""

    feed_version_id: int
    services: ServiceCalendar
    latest_s: int


def load_feed_calendar(session: Session, feed_id: int) -> FeedCalendar:
    rules = [
        CalendarRule(
            row.service_id,
            (row.monday, row.tuesday, row.wednesday, row.thursday, row.friday, row.saturday, row.sunday),
            row.start_date,
            row.end_date,
        )
        for row in session.scalars(select(Calendar).where(Calendar.feed_version_id == feed_id))
    ]
    exceptions = [
        CalendarException(row.service_id, row.date, row.exception_type)
        for row in session.scalars(select(CalendarDate).where(CalendarDate.feed_version_id == feed_id))
    ]
    # a trip's end_s is its last arrival: no departure from any of its stops is later
    latest = session.scalar(select(func.max(Trip.end_s)).where(Trip.feed_version_id == feed_id))
    return FeedCalendar(feed_id, ServiceCalendar.build(rules, exceptions), int(latest or 0))


class CalendarCache:
    """Keeps the calendars of the few most recently used feed versions (normally just the active one)."""

    def __init__(self, keep: int = 2) -> None:
        self._keep = keep
        self._calendars: dict[int, FeedCalendar] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, feed_id: int) -> FeedCalendar:
        found = self._calendars.get(feed_id)
        if found is not None:
            return found
        loaded = load_feed_calendar(session, feed_id)
        with self._lock:
            self._calendars[feed_id] = loaded
            while len(self._calendars) > self._keep:
                self._calendars.pop(next(iter(self._calendars)))
        return loaded
