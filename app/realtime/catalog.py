"""The static feed as board rows need it: route names and colours, trip headsigns, stop items, valid ids, and
the names in every language the feed's ``translations.txt`` translates into.

Display makers show a board in the rider's language without a second lookup, so each trip's headsign and each
route's long name come with ``{language: text}`` for every feed language: a translation keyed by the record's
id wins over one keyed by the text itself (how the demo feed translates headsigns), and where the feed has none
for a language the text stands as the feed writes it."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.instants import rfc3339
from app.models import Route, Stop, StopTime, Translation, Trip
from app.realtime.boards import BoardRow, PredictedArrival
from app.schedule.queries import active_feed, stop_items
from prediction.gtfs.schedule import ScheduleFeed
from prediction.gtfs.servicedays import from_gtfs_seconds

__all__ = ["FeedTexts", "RouteInfo", "StaticCatalog", "TripInfo", "complete_schedule_rows", "wheelchair"]

# (table_name, field_name, language, translation, record_id, field_value): a translations.txt row
TranslationRow = tuple[str, str, str, str, str | None, str | None]


@dataclass(frozen=True)
class RouteInfo:
    route_id: str
    short_name: str | None
    color: str | None
    text_color: str | None
    long_name: str | None = None
    long_name_translations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TripInfo:
    trip_id: str
    route_id: str
    headsign: str | None
    direction_id: int | None
    headsign_translations: dict[str, str] = field(default_factory=dict)
    wheelchair_accessible: bool | None = None  # trips.txt: 1 yes, 2 no, 0 or empty unknown


def wheelchair(value: object) -> bool | None:
    """trips.txt ``wheelchair_accessible`` as the API says it: 1 → true, 2 → false, anything else → unknown."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return {1: True, 2: False}.get(int(str(value).strip() or 0))


class FeedTexts:
    """One field's translations: ``names(table, field, record_id, text)`` gives ``{language: text}`` for every
    language the feed translates into (empty when the text is empty)."""

    def __init__(self, rows: Iterable[TranslationRow]) -> None:
        self.by_id: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
        self.by_value: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
        languages = set()
        for table, column, language, text, record_id, value in rows:
            languages.add(language)
            if record_id:
                self.by_id[table, column, record_id][language] = text
            elif value:
                self.by_value[table, column, value][language] = text
        self.languages = sorted(languages)

    def names(self, table: str, column: str, record_id: str, text: str | None) -> dict[str, str]:
        if not text:
            return {}
        found = {**self.by_value.get((table, column, text), {}), **self.by_id.get((table, column, record_id), {})}
        return {language: found.get(language, text) for language in self.languages}


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
        texts = FeedTexts(session.execute(
            select(Translation.table_name, Translation.field_name, Translation.language, Translation.translation,
                   Translation.record_id, Translation.field_value)
            .where(Translation.feed_version_id == feed.id,
                   Translation.table_name.in_(("routes", "trips")))).all())
        routes = {r.route_id: RouteInfo(r.route_id, r.route_short_name, r.route_color, r.route_text_color,
                                        r.route_long_name,
                                        texts.names("routes", "route_long_name", r.route_id, r.route_long_name))
                  for r in session.scalars(select(Route).where(Route.feed_version_id == feed.id))}
        trips = {
            trip_id: TripInfo(trip_id, route_id, headsign, direction,
                              texts.names("trips", "trip_headsign", trip_id, headsign), wheelchair(access))
            for trip_id, route_id, headsign, direction, access in session.execute(
                select(Trip.trip_id, Trip.route_id, Trip.trip_headsign, Trip.direction_id, Trip.wheelchair_accessible)
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

        texts = FeedTexts((str(r.table_name), str(r.field_name), str(r.language), str(r.translation),
                           text(r.record_id), text(r.field_value)) for r in feed.translations.itertuples(index=False))
        # pandas-stubs types itertuples fields as any pandas scalar: the ignores below are for numeric columns
        routes = {}
        for r in feed.routes.itertuples(index=False):
            long_name = text(getattr(r, "route_long_name", None))
            routes[str(r.route_id)] = RouteInfo(
                str(r.route_id), text(getattr(r, "route_short_name", None)), text(getattr(r, "route_color", None)),
                text(getattr(r, "route_text_color", None)), long_name,
                texts.names("routes", "route_long_name", str(r.route_id), long_name))
        trips = {}
        for t in feed.trips.itertuples(index=False):
            headsign = text(getattr(t, "trip_headsign", None))
            trips[str(t.trip_id)] = TripInfo(
                str(t.trip_id), str(t.route_id), headsign,
                None if text(getattr(t, "direction_id", None)) is None else int(t.direction_id),  # type: ignore[arg-type]
                texts.names("trips", "trip_headsign", str(t.trip_id), headsign),
                wheelchair(getattr(t, "wheelchair_accessible", None)))
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
        departure = None
        if prediction.scheduled is not None and prediction.scheduled_departure is not None:
            departure = prediction.predicted + (prediction.scheduled_departure - prediction.scheduled)
        return BoardRow(
            route_id=route.route_id, route_short_name=route.short_name, route_color=route.color,
            route_text_color=route.text_color, headsign=trip.headsign, trip_id=trip.trip_id,
            stop_sequence=prediction.stop_sequence, service_date=prediction.service_date,
            scheduled_time=prediction.scheduled, predicted_time=prediction.predicted, realtime=True,
            vehicle_id=prediction.vehicle_id, early=prediction.early, late=prediction.late,
            last_update=prediction.observed_at or now, stalled_s=int(prediction.stalled_s or 0),
            route_long_name=route.long_name, route_long_name_translations=route.long_name_translations,
            headsign_translations=trip.headsign_translations, wheelchair_accessible=trip.wheelchair_accessible,
            scheduled_departure=prediction.scheduled_departure, predicted_departure=departure,
            stops_away=prediction.stops_away,
            distance_m=None if prediction.distance_m is None else round(prediction.distance_m),
            status=prediction.status, occupancy=prediction.occupancy,
        )


def complete_schedule_rows(session: Session, feed_id: int, tz: ZoneInfo, rows: list[dict[str, Any]]) -> None:
    """Give the timetable's arrival items (``app.schedule.timetable.arrivals``) every key a board row has, so the
    answer without a board reads like one: names in every feed language, wheelchair access, arrival and departure
    apart; the live-only values ``null`` and ``status`` ``scheduled``. Three small queries over the rows' trips."""
    trips = sorted({row["trip_id"] for row in rows})
    if not trips:
        return
    found = session.execute(
        select(Trip.trip_id, Trip.wheelchair_accessible, Route.route_id, Route.route_long_name, Route.route_text_color)
        .join(Route, (Route.feed_version_id == Trip.feed_version_id) & (Route.route_id == Trip.route_id))
        .where(Trip.feed_version_id == feed_id, Trip.trip_id.in_(trips))).all()
    by_trip = {trip_id: (access, route_id, long_name, text_color)
               for trip_id, access, route_id, long_name, text_color in found}
    calls = {(t, q): (a, d) for t, q, a, d in session.execute(
        select(StopTime.trip_id, StopTime.stop_sequence, StopTime.arrival_s, StopTime.departure_s)
        .where(StopTime.feed_version_id == feed_id, StopTime.trip_id.in_(trips),
               StopTime.stop_sequence.in_(sorted({row["stop_sequence"] for row in rows}))))}
    texts = _texts_of(session, feed_id, trips, rows)
    for row in rows:
        access, route_id, long_name, text_color = by_trip.get(row["trip_id"], (None, row["route_id"], None, None))
        arrival_s, departure_s = calls.get((row["trip_id"], row["stop_sequence"]), (None, None))
        day = dt.date.fromisoformat(row["service_date"])
        row.update(route_text_color=row.get("route_text_color", text_color),
                   headsign_translations=texts.names("trips", "trip_headsign", row["trip_id"], row["headsign"]),
                   route_long_name=long_name,
                   route_long_name_translations=texts.names("routes", "route_long_name", route_id, long_name),
                   wheelchair_accessible=wheelchair(access), predicted_time=row["scheduled_time"], interval=None,
                   vehicle_id=None, last_update=None,
                   arrival_time={"scheduled": _local(day, arrival_s, tz), "predicted": None},
                   departure_time={"scheduled": _local(day, departure_s, tz), "predicted": None},
                   schedule_deviation_s=None, stops_away=None, distance_m=None, status="scheduled", occupancy=None)


def _local(day: dt.date, seconds: int | None, tz: ZoneInfo) -> str | None:
    return None if seconds is None else rfc3339(from_gtfs_seconds(day, seconds, tz))


def _texts_of(session: Session, feed_id: int, trips: list[str], rows: list[dict[str, Any]]) -> FeedTexts:
    """The translations of these rows' headsigns and routes' long names, and the feed's languages."""
    names = sorted({row["headsign"] for row in rows if row["headsign"]})
    routes = sorted({row["route_id"] for row in rows})
    wanted = (((Translation.table_name == "trips") & (Translation.record_id.in_(trips) | Translation.field_value.in_(
        names))) | ((Translation.table_name == "routes") & Translation.record_id.in_(routes)))
    columns = (Translation.table_name, Translation.field_name, Translation.language, Translation.translation,
               Translation.record_id, Translation.field_value)
    texts = FeedTexts(session.execute(select(*columns).where(Translation.feed_version_id == feed_id, wanted)).all())
    # a route's long name translated by its text, and the feed's languages beyond these rows
    long_names = FeedTexts(session.execute(select(*columns).where(
        Translation.feed_version_id == feed_id, Translation.table_name == "routes",
        Translation.record_id.is_(None))).all())
    texts.by_value.update(long_names.by_value)
    texts.languages = sorted(session.scalars(select(Translation.language).distinct().where(
        Translation.feed_version_id == feed_id, Translation.table_name.in_(("routes", "trips")))))
    return texts
