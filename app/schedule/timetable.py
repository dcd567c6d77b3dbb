"""Scheduled departures at a stop: a whole service day, or the next ones from an instant across service days.

Times past 24:00 stay on their service day (a 24:30:00 trip of Tuesday's service leaves at 00:30 on
Wednesday), so "the next buses" looks at every service day that can reach the window: yesterday's
late trips after midnight, tomorrow's early trips before it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from app.instants import rfc3339
from app.models import Route, Stop, StopTime, Trip
from app.schedule.calendars import CalendarCache
from app.schedule.queries import active_feed, get_stop, route_sort_key, stop_items
from prediction.gtfs.servicedays import from_gtfs_seconds, service_days_overlapping, to_gtfs_seconds

__all__ = ["ScheduledDeparture", "arrivals", "departures"]

NO_PICKUP = 1


@dataclass(frozen=True)
class ScheduledDeparture:
    """One trip leaving the stop on one service day."""

    route_id: str
    route_short_name: str | None
    route_color: str | None
    headsign: str | None
    trip_id: str
    stop_sequence: int
    service_date: dt.date
    time: dt.datetime

    def item(self) -> dict[str, Any]:
        return {
            "route_id": self.route_id,
            "route_short_name": self.route_short_name,
            "route_color": self.route_color,
            "headsign": self.headsign,
            "trip_id": self.trip_id,
            "stop_sequence": self.stop_sequence,
            "service_date": self.service_date.isoformat(),
            "scheduled_time": rfc3339(self.time),
        }

    def sort_key(self) -> tuple[Any, ...]:
        return self.time, route_sort_key(self.route_short_name, self.route_id), self.trip_id


def departures(
    session: Session, calendars: CalendarCache, stop_id: str, *, day: dt.date | None, route: str | None
) -> dict[str, Any]:
    """Every scheduled departure from the stop on service day ``day`` (default: today, agency time)."""
    feed = active_feed(session)
    tz = ZoneInfo(feed.agency_timezone)
    stop = get_stop(session, feed.id, stop_id)
    day = day or dt.datetime.now(tz).date()
    services = calendars.get(session, feed.id).services.active_on(day)
    found = _departures_on(session, feed.id, _boarding_stop_ids(session, stop), day, tz, services,
                           route=route, seconds=None, limit=None)
    return {
        "stop": stop_items(session, feed.id, [stop], routes=False)[0],
        "date": day.isoformat(),
        "timezone": feed.agency_timezone,
        "departures": [d.item() for d in sorted(found, key=ScheduledDeparture.sort_key)],
    }


def arrivals(
    session: Session,
    calendars: CalendarCache,
    stop_id: str,
    *,
    at: dt.datetime | None,
    window_min: int,
    route: str | None,
    limit: int,
) -> dict[str, Any]:
    """The buses due at the stop from ``at`` (default: now) for ``window_min`` minutes, soonest first."""
    feed = active_feed(session)
    tz = ZoneInfo(feed.agency_timezone)
    stop = get_stop(session, feed.id, stop_id)
    now = dt.datetime.now(dt.UTC)
    at = at or now
    end = at + dt.timedelta(minutes=window_min)
    calendar = calendars.get(session, feed.id)
    stop_ids = _boarding_stop_ids(session, stop)
    found: list[ScheduledDeparture] = []
    for day in service_days_overlapping(at, end, tz, max(calendar.latest_s, 86_400)):
        seconds = (to_gtfs_seconds(at, day, tz, round_up=True), to_gtfs_seconds(end, day, tz))
        found += _departures_on(session, feed.id, stop_ids, day, tz, calendar.services.active_on(day),
                                route=route, seconds=seconds, limit=limit)
    found = sorted(found, key=ScheduledDeparture.sort_key)[:limit]
    return {
        "stop": stop_items(session, feed.id, [stop], routes=False)[0],
        "timezone": feed.agency_timezone,
        "generated_at": rfc3339(now.astimezone(tz)),
        "at": rfc3339(at.astimezone(tz)),
        "window_min": window_min,
        "arrivals": [
            {**d.item(), "minutes_away": math.floor((d.time - at).total_seconds() / 60), "realtime": False,
             "stalled_s": None}
            for d in found
        ],
    }


def _boarding_stop_ids(session: Session, stop: Stop) -> list[str]:
    """The stop itself, plus its platforms when it is a station."""
    children = session.scalars(select(Stop.stop_id).where(
        Stop.feed_version_id == stop.feed_version_id, Stop.parent_station == stop.stop_id)).all()
    return [stop.stop_id, *children]


def _departures_on(
    session: Session,
    feed_id: int,
    stop_ids: Collection[str],
    day: dt.date,
    tz: ZoneInfo,
    services: Collection[str],
    *,
    route: str | None,
    seconds: tuple[int, int] | None,
    limit: int | None,
) -> list[ScheduledDeparture]:
    """Departures of service day ``day`` from ``stop_ids``, optionally between GTFS ``seconds`` (inclusive)."""
    if not services or (seconds is not None and seconds[1] < seconds[0]):
        return []
    query = _departure_query(feed_id, stop_ids, services, route)
    if seconds is not None:
        query = query.where(StopTime.departure_s.between(*seconds))
    if limit is not None:
        query = query.limit(limit)
    return list(_as_departures(session.execute(query).all(), day, tz))


def _departure_query(feed_id: int, stop_ids: Collection[str], services: Collection[str],
                     route: str | None) -> Select[*tuple[Any, ...]]:
    """Stop times where a passenger can board: pickup allowed and not the trip's last stop."""
    later = aliased(StopTime)
    query = (
        select(StopTime.trip_id, StopTime.stop_sequence, StopTime.departure_s, StopTime.stop_headsign,
               Trip.trip_headsign, Route.route_id, Route.route_short_name, Route.route_color)
        .join(Trip, and_(Trip.feed_version_id == StopTime.feed_version_id, Trip.trip_id == StopTime.trip_id))
        .join(Route, and_(Route.feed_version_id == Trip.feed_version_id, Route.route_id == Trip.route_id))
        .where(
            StopTime.feed_version_id == feed_id,
            StopTime.stop_id.in_(list(stop_ids)),
            StopTime.pickup_type != NO_PICKUP,
            Trip.service_id.in_(sorted(services)),
            exists().where(later.feed_version_id == StopTime.feed_version_id, later.trip_id == StopTime.trip_id,
                           later.stop_sequence > StopTime.stop_sequence),
        )
        .order_by(StopTime.departure_s, StopTime.trip_id)
    )
    if route is not None:
        query = query.where(or_(Route.route_id == route, Route.route_short_name == route))
    return query


def _as_departures(rows: Iterable[Any], day: dt.date, tz: ZoneInfo) -> Iterable[ScheduledDeparture]:
    for trip_id, sequence, departure_s, stop_headsign, trip_headsign, route_id, short_name, color in rows:
        yield ScheduledDeparture(
            route_id=route_id,
            route_short_name=short_name,
            route_color=color,
            headsign=stop_headsign or trip_headsign,
            trip_id=trip_id,
            stop_sequence=sequence,
            service_date=day,
            time=from_gtfs_seconds(day, departure_s, tz),
        )
