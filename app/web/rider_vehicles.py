"""A route's live vehicles for the rider pages: the worker's vehicle snapshot, placed on the line, parked buses left
out.

A GPS point is a few metres off the street and says nothing a rider can use, so each vehicle is snapped onto its
own trip's shape by its distance along it: the page draws it on the line, with the line's heading, and says which
stop comes next and in how many minutes (from the TripUpdates snapshot). Riders do not know fleet numbers, so
nothing here names the vehicle. A bus standing at a terminal is not a bus a rider can take when its trip is over,
when its trip leaves long from now (a long layover), or when its trip should have ended long ago; such parked
buses are left out, as are positions older than ``STALE_AFTER_S``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from flask import Flask
from google.transit import gtfs_realtime_pb2 as rt

from app.errors import NotFound
from app.extensions import get_redis
from app.realtime.gtfs_rt import LIVE_VEHICLES, TRIP_UPDATES
from app.realtime.serving import breaker
from app.realtime.store import REDIS_ERRORS, Snapshot, read_snapshot
from prediction.avl.matching import ShapeLine
from prediction.geo import cumulative_distance_m

__all__ = ["STALE_AFTER_S", "PlacedVehicle", "Standing", "is_parked", "network_vehicles", "place_vehicles",
           "read_vehicle_snapshot", "route_vehicles"]

STALE_AFTER_S = 300
TERMINAL_M = 60.0  # this close (along the line) to a terminal stop, a bus stands at the terminal
AT_STOP_M = 40.0  # this close to a stop, the bus is "here" rather than approaching the next one
LAYOVER_LEAD_S = 600  # at the first terminal longer than this before its trip leaves: parked, not departing
OVERDUE_S = 900  # at a terminal this long after its trip should have ended: parked
MOVING_MPS = 1.0  # a bus this fast is on its way, wherever it is
LINE_CACHE_SIZE = 2048  # (route, shape, direction) lines kept between polls: a city's routes several times over


@dataclass(frozen=True)
class PlacedVehicle:
    """A live vehicle of the route as a rider sees it: on the line, heading somewhere, its next stop and when."""

    direction_id: int | None
    headsign: str
    lat: float  # on the trip's shape, not the raw GPS point
    lon: float
    bearing: float  # the line's heading there (degrees from north)
    fraction: float  # 0 at the start of the trip's shape, 1 at its end
    after_stop: int | None  # index in the direction's stop list of the last stop passed
    next_stop: int | None
    at_stop: int | None  # the stop it stands at, if within AT_STOP_M of one
    next_stop_name: str | None
    minutes: int | None  # to the next stop, when the TripUpdates snapshot predicts it
    age_s: int


@dataclass(frozen=True)
class Standing:
    """Where a vehicle stands on its trip, for ``is_parked``: metres along the shape and the trip's schedule."""

    along_m: float
    first_stop_m: float
    last_stop_m: float
    speed_mps: float | None
    service_clock_s: float | None  # seconds since the trip's service day began (GTFS time), if known
    start_s: int
    end_s: int


def is_parked(v: Standing) -> bool:
    """True for a bus standing at a terminal that no rider can take now (see the module docstring)."""
    if v.speed_mps is not None and v.speed_mps >= MOVING_MPS:
        return False
    at_first = v.along_m <= v.first_stop_m + TERMINAL_M
    at_last = v.along_m >= v.last_stop_m - TERMINAL_M
    if at_last and not at_first:
        return True  # its trip is over
    if not at_first or v.service_clock_s is None:
        return False
    return v.service_clock_s < v.start_s - LAYOVER_LEAD_S or v.service_clock_s > v.end_s + OVERDUE_S


def _read(app: Flask, feed: str) -> Snapshot | None:
    guard = breaker(app)
    if guard.is_open:
        return None
    try:
        snapshot = read_snapshot(get_redis(app), feed)
    except REDIS_ERRORS:
        guard.failed()
        return None
    guard.succeeded()
    return snapshot


def read_vehicle_snapshot(app: Flask) -> Snapshot | None:
    """The latest vehicles snapshot, or ``None`` when there is none or Redis cannot be reached."""
    return _read(app, LIVE_VEHICLES)


def _trip_etas(app: Flask) -> dict[str, dict[str, int]]:
    """``{trip_id: {stop_id: predicted arrival (epoch s)}}`` from the TripUpdates snapshot, parsed once per
    snapshot (every rider on every route page polls it)."""
    snapshot = _read(app, TRIP_UPDATES)
    if snapshot is None:
        return {}
    cached = app.extensions.get("rider_trip_etas")
    if cached is not None and cached[0] == (snapshot.timestamp, len(snapshot.body)):
        etas: dict[str, dict[str, int]] = cached[1]
        return etas
    feed = rt.FeedMessage()
    feed.ParseFromString(snapshot.body)
    etas = {}
    for entity in feed.entity:
        if entity.HasField("trip_update"):
            update = entity.trip_update
            etas[update.trip.trip_id] = {stu.stop_id: int(stu.arrival.time or stu.departure.time)
                                         for stu in update.stop_time_update}
    app.extensions["rider_trip_etas"] = ((snapshot.timestamp, len(snapshot.body)), etas)
    return etas


def _lines(app: Flask) -> Lines:
    lines: Lines = app.extensions.setdefault("rider_lines", {})
    return lines


def _line(coords: list[list[float]]) -> ShapeLine | None:
    points = np.asarray(coords, dtype=float).reshape(-1, 2)
    if len(points) < 2:
        return None
    lat, lon = points[:, 1], points[:, 0]
    return ShapeLine.from_points("route", lat, lon, cumulative_distance_m(lat, lon))


def _trip_line(route: dict[str, Any], trip: dict[str, Any] | None, direction: dict[str, Any]) -> ShapeLine | None:
    """The trip's own shape; else its direction's; else the direction's stops joined up."""
    shape_id = trip.get("shape_id") if trip else None
    if shape_id and shape_id in route.get("shapes", {}):
        return _line(route["shapes"][shape_id])
    shape = direction.get("shape")
    if shape:
        return _line(shape["geometry"]["coordinates"])
    return _line([[s["lon"], s["lat"]] for s in direction["stops"]])


Lines = dict[tuple[Any, ...], tuple[ShapeLine, np.ndarray] | None]


def _line_with_stops(route: dict[str, Any], trip: dict[str, Any] | None, direction: dict[str, Any],
                     lines: Lines) -> tuple[ShapeLine, np.ndarray] | None:
    """The trip's line and its direction's stops' distances along it, made once per feed version, route, shape and
    direction (``lines`` keeps them between polls: every rider's page asks every 15 s)."""
    shape_id = trip.get("shape_id") if trip else None
    key = (route.get("feed_version"), route["route_id"], shape_id, direction.get("direction_id"))
    if key not in lines:
        if len(lines) >= LINE_CACHE_SIZE:
            lines.clear()
        line = _trip_line(route, trip, direction)
        lines[key] = None if line is None else (line, _stops_along(line, direction["stops"]))
    return lines[key]


def _direction(route: dict[str, Any], direction_id: int | None, lat: float, lon: float,
               lines: Lines) -> dict[str, Any] | None:
    """The direction the vehicle runs in: its trip's, else the one whose line passes nearest."""
    directions: list[dict[str, Any]] = [d for d in route["directions"] if d["stops"]]
    for direction in directions:
        if direction_id is not None and direction.get("direction_id") == direction_id:
            return direction
    best: dict[str, Any] | None = None
    best_offset = np.inf
    for direction in directions:
        found = _line_with_stops(route, None, direction, lines)
        if found is not None:
            offset = float(found[0].nearest(np.array([lat]), np.array([lon]))[1][0])
            if offset < best_offset:
                best, best_offset = direction, offset
    return best


def _service_clock(now: dt.datetime, start_date: str, timezone: str | None) -> float | None:
    """Seconds from the start (noon minus 12 h) of the trip's service day to ``now``; ``None`` if unknown."""
    if len(start_date) != 8 or not timezone:
        return None
    day = dt.date(int(start_date[:4]), int(start_date[4:6]), int(start_date[6:8]))
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=ZoneInfo(timezone))
    return (now - noon).total_seconds() + 12 * 3600


def _stops_along(line: ShapeLine, stops: list[dict[str, Any]]) -> np.ndarray:
    along, _ = line.nearest(np.array([s["lat"] for s in stops], dtype=float),
                            np.array([s["lon"] for s in stops], dtype=float))
    # a stop matched a little back along a looping shape must not reorder the stop list
    return np.maximum.accumulate(along)


def _placed(vp: Any, route: dict[str, Any], now: dt.datetime, age: int, etas: dict[str, dict[str, int]],
            lines: Lines) -> PlacedVehicle | None:
    """The vehicle on its trip's line, or ``None`` when it cannot be placed or is parked."""
    lat, lon = float(vp.position.latitude), float(vp.position.longitude)
    trip = route.get("trips", {}).get(vp.trip.trip_id)
    direction_id = trip["direction_id"] if trip else (vp.trip.direction_id if vp.trip.HasField("direction_id")
                                                       else None)
    direction = _direction(route, direction_id, lat, lon, lines)
    found = _line_with_stops(route, trip, direction, lines) if direction else None
    if direction is None or found is None:
        return None
    stops = direction["stops"]
    line, stop_along = found
    where = float(line.nearest(np.array([lat]), np.array([lon]))[0][0])
    speed = float(vp.position.speed) if vp.position.HasField("speed") else None
    if trip is not None and is_parked(Standing(where, float(stop_along[0]), float(stop_along[-1]), speed,
                                               _service_clock(now, vp.trip.start_date, route.get("timezone")),
                                               trip["start_s"], trip["end_s"])):
        return None
    passed = int(np.searchsorted(stop_along, where, side="right")) - 1
    nearest = int(np.argmin(np.abs(stop_along - where)))
    at_stop = nearest if abs(float(stop_along[nearest]) - where) <= AT_STOP_M else None
    following = (at_stop if at_stop is not None else passed) + 1
    following_stop = stops[following] if following < len(stops) else None
    eta = etas.get(vp.trip.trip_id, {}).get(following_stop["stop_id"]) if following_stop else None
    snapped_lat, snapped_lon, bearing = line.locate(np.array([where]))
    return PlacedVehicle(
        direction_id=direction.get("direction_id"), headsign=direction.get("display_headsign") or "",
        lat=round(float(snapped_lat[0]), 6), lon=round(float(snapped_lon[0]), 6), bearing=round(float(bearing[0])),
        fraction=round(where / line.length_m, 4) if line.length_m > 0 else 0.0,
        after_stop=passed if passed >= 0 else None, next_stop=following if following_stop else None,
        at_stop=at_stop, next_stop_name=following_stop["display_name"] if following_stop else None,
        minutes=max(0, round((eta - now.timestamp()) / 60)) if eta else None, age_s=max(0, age))


def place_vehicles(body: bytes, route: dict[str, Any], now: dt.datetime,
                   etas: dict[str, dict[str, int]] | None = None, lines: Lines | None = None) -> list[PlacedVehicle]:
    """The route's vehicles in a serialized VehiclePositions feed: fresh, not parked, placed on their lines."""
    feed = rt.FeedMessage()
    feed.ParseFromString(body)
    return _place_route(feed, route, now, etas or {}, {} if lines is None else lines)


def _place_route(feed: Any, route: dict[str, Any], now: dt.datetime, etas: dict[str, dict[str, int]],
                 lines: Lines) -> list[PlacedVehicle]:
    placed = []
    for entity in feed.entity:
        vp = entity.vehicle
        if not entity.HasField("vehicle") or vp.trip.route_id != route["route_id"]:
            continue
        age = int(now.timestamp()) - int(vp.timestamp or feed.header.timestamp)
        if age > STALE_AFTER_S:
            continue
        found = _placed(vp, route, now, age, etas, lines)
        if found is not None:
            placed.append(found)
    return sorted(placed, key=lambda v: (v.direction_id or 0, v.fraction))


def _snapshot_time(snapshot: Snapshot | None) -> str | None:
    if snapshot is None or not snapshot.timestamp:
        return None
    return dt.datetime.fromtimestamp(snapshot.timestamp, dt.UTC).isoformat()


def route_vehicles(app: Flask, route: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """JSON-ready: the route's live vehicles and when the snapshot they come from was made (RFC 3339)."""
    snapshot = read_vehicle_snapshot(app)
    vehicles = place_vehicles(snapshot.body, route, now, _trip_etas(app), _lines(app)) if snapshot is not None \
        else []
    return {"route_id": route["route_id"], "snapshot_at": _snapshot_time(snapshot),
            "vehicles": [asdict(v) for v in vehicles]}


def network_vehicles(app: Flask, route_info: Callable[[str], dict[str, Any]], now: dt.datetime,
                     language: str) -> dict[str, Any]:
    """JSON-ready: every route's live vehicles for the network map, placed as on the route pages, each with its
    route's badge (``route_info`` gives a route's page data in ``language``; unknown routes are skipped). Made once
    per snapshot and language: every rider on the home page polls it."""
    snapshot = read_vehicle_snapshot(app)
    if snapshot is None:
        return {"snapshot_at": None, "vehicles": []}
    key = (snapshot.timestamp, len(snapshot.body), language)
    cached = app.extensions.get("rider_network_vehicles")
    if cached is not None and cached[0] == key:
        answer: dict[str, Any] = cached[1]
        return answer
    feed = rt.FeedMessage()
    feed.ParseFromString(snapshot.body)
    etas, lines = _trip_etas(app), _lines(app)
    vehicles = []
    for route_id in sorted({e.vehicle.trip.route_id for e in feed.entity if e.HasField("vehicle")} - {""}):
        try:
            route = route_info(route_id)
        except NotFound:
            continue
        badge = {"short_name": route["route_short_name"] or route_id, "color": route["route_color"] or "00838f",
                 "text_color": route.get("route_text_color")}
        vehicles += [{**asdict(v), "route": badge} for v in _place_route(feed, route, now, etas, lines)]
    answer = {"snapshot_at": _snapshot_time(snapshot), "vehicles": vehicles}
    app.extensions["rider_network_vehicles"] = (key, answer)
    return answer
