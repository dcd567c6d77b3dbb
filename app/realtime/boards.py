"""Stop boards: the next buses at one stop, live where a prediction exists and from the timetable otherwise.

A board is what a smart-stop display and the arrivals API show. The worker writes one per stop to
Redis; the API serves it as is. ``minutes_away`` is counted from the board's ``generated_at``.

A row says what a display maker needs without a second lookup (compare OneBusAway's
arrivals-and-departures-for-stop): the headsign and the route's long name in every feed language, arrival and
departure apart (scheduled, and predicted on live rows), how many stops and metres along the shape the bus is
away, its schedule deviation, a ``status`` (``scheduled``, ``live``, ``cancelled``, ``skipped``), wheelchair
accessibility and occupancy (``null`` when unknown). ``app.realtime.compose`` writes the same rows from arrays.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.schedule.queries import route_sort_key

__all__ = [
    "STATUSES",
    "Board",
    "BoardRow",
    "PredictedArrival",
    "content_etag",
    "merge_rows",
    "rows_from_schedule_items",
]


# a row's ``status``: timetable only, predicted, the run called off, or the bus will not stop here (GTFS-rt SKIPPED)
STATUSES = ("scheduled", "live", "cancelled", "skipped")


def _iso(value: dt.datetime | None, tz: dt.tzinfo) -> str | None:
    return None if value is None else value.astimezone(tz).isoformat(timespec="seconds")


@dataclass(frozen=True)
class PredictedArrival:
    """What the predictor says about one trip at one downstream stop (a board row's source)."""

    trip_id: str
    stop_id: str
    stop_sequence: int
    service_date: dt.date
    predicted: dt.datetime
    scheduled: dt.datetime | None = None
    vehicle_id: str | None = None
    early: dt.datetime | None = None  # interval bounds, e.g. the 10 % and 90 % quantiles
    late: dt.datetime | None = None
    observed_at: dt.datetime | None = None  # when the vehicle position behind the prediction was taken
    stalled_s: float | None = None  # how long the bus has been overdue at its next stop (0: moving)
    scheduled_departure: dt.datetime | None = None
    stops_away: int | None = None  # stops between the bus's last known stop and this one
    distance_m: float | None = None  # along the shape, from the bus's last known stop
    status: str = "live"  # or "skipped", "cancelled"
    occupancy: str | None = None  # GTFS-rt OccupancyStatus name


@dataclass(frozen=True)
class BoardRow:
    """One upcoming bus on a board."""

    route_id: str
    route_short_name: str | None
    route_color: str | None
    route_text_color: str | None
    headsign: str | None
    trip_id: str
    stop_sequence: int
    service_date: dt.date
    scheduled_time: dt.datetime | None
    predicted_time: dt.datetime
    realtime: bool
    vehicle_id: str | None = None
    early: dt.datetime | None = None
    late: dt.datetime | None = None
    last_update: dt.datetime | None = None
    stalled_s: int | None = None  # live rows: seconds the bus has been overdue at its next stop; timetable: None
    route_long_name: str | None = None
    route_long_name_translations: dict[str, str] = field(default_factory=dict)
    headsign_translations: dict[str, str] = field(default_factory=dict)
    wheelchair_accessible: bool | None = None
    scheduled_departure: dt.datetime | None = None
    predicted_departure: dt.datetime | None = None  # live rows only
    stops_away: int | None = None
    distance_m: int | None = None
    status: str = "scheduled"
    occupancy: str | None = None

    def sort_key(self) -> tuple[Any, ...]:
        return self.predicted_time, route_sort_key(self.route_short_name, self.route_id), self.trip_id

    def item(self, now: dt.datetime, tz: dt.tzinfo) -> dict[str, Any]:
        interval = None
        if self.early is not None and self.late is not None:
            interval = {"early": _iso(self.early, tz), "late": _iso(self.late, tz)}
        return {
            "route_id": self.route_id,
            "route_short_name": self.route_short_name,
            "route_color": self.route_color,
            "route_text_color": self.route_text_color,
            "headsign": self.headsign,
            "trip_id": self.trip_id,
            "headsign_translations": self.headsign_translations,
            "route_long_name": self.route_long_name,
            "route_long_name_translations": self.route_long_name_translations,
            "wheelchair_accessible": self.wheelchair_accessible,
            "stop_sequence": self.stop_sequence,
            "service_date": self.service_date.isoformat(),
            "scheduled_time": _iso(self.scheduled_time, tz),
            "predicted_time": _iso(self.predicted_time, tz),
            "interval": interval,
            "vehicle_id": self.vehicle_id,
            "minutes_away": max(0, math.floor((self.predicted_time - now).total_seconds() / 60)),
            "realtime": self.realtime,
            "stalled_s": self.stalled_s,
            "last_update": _iso(self.last_update, tz),
            **self._live_fields(tz),
        }

    def _live_fields(self, tz: dt.tzinfo) -> dict[str, Any]:
        """Arrival and departure apart, deviation, distance, status and occupancy (predicted ones: live rows)."""
        live = self.realtime
        deviation = None
        if live and self.scheduled_time is not None:
            deviation = math.floor(self.predicted_time.timestamp()) - math.floor(self.scheduled_time.timestamp())
        return {
            "arrival_time": {"scheduled": _iso(self.scheduled_time, tz),
                             "predicted": _iso(self.predicted_time, tz) if live else None},
            "departure_time": {"scheduled": _iso(self.scheduled_departure, tz),
                               "predicted": _iso(self.predicted_departure, tz) if live else None},
            "schedule_deviation_s": deviation,
            "stops_away": self.stops_away,
            "distance_m": self.distance_m,
            "status": self.status,
            "occupancy": self.occupancy,
        }


@dataclass(frozen=True)
class Board:
    """The board of one stop at ``generated_at``; ``stop`` is the API's stop item (names and translations)."""

    stop: dict[str, Any]
    timezone: dt.tzinfo
    generated_at: dt.datetime
    window_min: int
    rows: Sequence[BoardRow] = field(default_factory=tuple)

    @property
    def stop_id(self) -> str:
        return str(self.stop["stop_id"])

    def payload(self, version: int | None, *, source: str = "board") -> dict[str, Any]:
        """The JSON body of ``GET /api/v1/stops/<id>/arrivals`` (a superset of the timetable answer)."""
        generated = _iso(self.generated_at, self.timezone)
        rows = sorted(self.rows, key=BoardRow.sort_key)
        return {
            "stop": self.stop,
            "timezone": str(self.timezone),
            "generated_at": generated,
            "at": generated,
            "window_min": self.window_min,
            "source": source,
            "version": version,
            "realtime": any(r.realtime for r in rows),
            "arrivals": [r.item(self.generated_at, self.timezone) for r in rows],
        }


def content_etag(payload: dict[str, Any]) -> str:
    """A weak ETag over what a reader sees change: the arrivals and the stop, not the timestamps or version."""
    content = {k: v for k, v in payload.items() if k not in ("generated_at", "at", "version")}
    digest = hashlib.blake2b(json.dumps(content, sort_keys=True, ensure_ascii=False).encode(), digest_size=10)
    return f'W/"{digest.hexdigest()}"'


def rows_from_schedule_items(items: Iterable[dict[str, Any]]) -> list[BoardRow]:
    """Board rows from the timetable's arrival items (``app.schedule.timetable.arrivals``)."""
    rows = []
    for item in items:
        scheduled = dt.datetime.fromisoformat(item["scheduled_time"])
        rows.append(BoardRow(
            route_id=item["route_id"], route_short_name=item["route_short_name"], route_color=item["route_color"],
            route_text_color=item.get("route_text_color"), headsign=item["headsign"], trip_id=item["trip_id"],
            stop_sequence=item["stop_sequence"], service_date=dt.date.fromisoformat(item["service_date"]),
            scheduled_time=scheduled, predicted_time=scheduled, realtime=False,
        ))
    return rows


def merge_rows(live: Sequence[BoardRow], scheduled: Sequence[BoardRow], *, limit: int) -> list[BoardRow]:
    """Live rows, plus scheduled rows of trips that have no prediction; soonest first, at most ``limit``."""
    predicted = {(r.trip_id, r.service_date) for r in live}
    rows = [*live, *(r for r in scheduled if (r.trip_id, r.service_date) not in predicted)]
    return sorted(rows, key=BoardRow.sort_key)[:limit]
