"""The static feed as board rows need it: route names and colours, trip headsigns, stop items, valid ids."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Route, Stop, Trip
from app.realtime.boards import BoardRow, PredictedArrival
from app.schedule.queries import active_feed, stop_items
from prediction.gtfs.schedule import ScheduleFeed

__all__ = ["RouteInfo", "StaticCatalog", "TripInfo"]


@dataclass(frozen=True)
class RouteInfo:
    route_id: str
    short_name: str | None
    color: str | None
    text_color: str | None


@dataclass(frozen=True)
class TripInfo:
    trip_id: str
    route_id: str
    headsign: str | None
    direction_id: int | None


@dataclass(frozen=True)
class StaticCatalog:
    """Lookups over one feed version; predictions naming ids outside it are dropped, never published."""

    feed_id: int
    timezone: ZoneInfo
    routes: dict[str, RouteInfo]
    trips: dict[str, TripInfo]
    stops: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, session: Session) -> StaticCatalog:
        feed = active_feed(session)
        routes = {r.route_id: RouteInfo(r.route_id, r.route_short_name, r.route_color, r.route_text_color)
                  for r in session.scalars(select(Route).where(Route.feed_version_id == feed.id))}
        trips = {
            trip_id: TripInfo(trip_id, route_id, headsign, direction)
            for trip_id, route_id, headsign, direction in session.execute(
                select(Trip.trip_id, Trip.route_id, Trip.trip_headsign, Trip.direction_id)
                .where(Trip.feed_version_id == feed.id))
        }
        stops = session.scalars(select(Stop).where(Stop.feed_version_id == feed.id)).all()
        items = {item["stop_id"]: item for item in stop_items(session, feed.id, stops, routes=False)}
        return cls(feed.id, ZoneInfo(feed.agency_timezone), routes, trips, items)

    @classmethod
    def from_schedule(cls, feed: ScheduleFeed, feed_id: int = 0) -> StaticCatalog:
        """A catalog straight from a read feed (benchmarks, tools): stop items carry ids, names and positions."""
        def text(value: Any) -> str | None:
            return None if value is None or (isinstance(value, float) and value != value) else str(value)

        # pandas-stubs types itertuples fields as any pandas scalar: the ignores below are for numeric columns
        routes = {str(r.route_id): RouteInfo(str(r.route_id), text(getattr(r, "route_short_name", None)),
                                             text(getattr(r, "route_color", None)),
                                             text(getattr(r, "route_text_color", None)))
                  for r in feed.routes.itertuples(index=False)}
        trips = {str(t.trip_id): TripInfo(str(t.trip_id), str(t.route_id), text(getattr(t, "trip_headsign", None)),
                                          None if text(getattr(t, "direction_id", None)) is None
                                          else int(t.direction_id))  # type: ignore[arg-type]
                 for t in feed.trips.itertuples(index=False)}
        stops = {str(s.stop_id): {"stop_id": str(s.stop_id), "name": text(getattr(s, "stop_name", None)),
                                  "lat": float(s.stop_lat), "lon": float(s.stop_lon)}  # type: ignore[arg-type]
                 for s in feed.stops.itertuples(index=False)}
        return cls(feed_id, ZoneInfo(feed.timezone), routes, trips, stops)

    def knows(self, prediction: PredictedArrival) -> bool:
        trip = self.trips.get(prediction.trip_id)
        return trip is not None and trip.route_id in self.routes and prediction.stop_id in self.stops

    def board_row(self, prediction: PredictedArrival, *, now: dt.datetime) -> BoardRow:
        """A live row for a prediction whose ids this catalog knows (check with ``knows`` first)."""
        trip = self.trips[prediction.trip_id]
        route = self.routes[trip.route_id]
        return BoardRow(
            route_id=route.route_id, route_short_name=route.short_name, route_color=route.color,
            route_text_color=route.text_color, headsign=trip.headsign, trip_id=trip.trip_id,
            stop_sequence=prediction.stop_sequence, service_date=prediction.service_date,
            scheduled_time=prediction.scheduled, predicted_time=prediction.predicted, realtime=True,
            vehicle_id=prediction.vehicle_id, early=prediction.early, late=prediction.late,
            last_update=prediction.observed_at or now, stalled_s=int(prediction.stalled_s or 0),
        )
