"""A route's live vehicles for the rider page: the worker's GTFS-rt VehiclePositions snapshot, placed on the route.

Each vehicle of the route is projected onto its direction's shape, so the page can say "between stop A and
stop B" and draw it on the line. Positions older than ``STALE_AFTER_S`` are left out: a bus last seen ten
minutes ago is not a live bus.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from flask import Flask
from google.transit import gtfs_realtime_pb2 as rt

from app.extensions import get_redis
from app.realtime.gtfs_rt import LIVE_VEHICLES
from app.realtime.serving import breaker
from app.realtime.store import REDIS_ERRORS, Snapshot, read_snapshot
from prediction.avl.matching import ShapeLine
from prediction.geo import cumulative_distance_m

__all__ = ["STALE_AFTER_S", "PlacedVehicle", "place_vehicles", "read_vehicle_snapshot", "route_vehicles"]

STALE_AFTER_S = 300


@dataclass(frozen=True)
class PlacedVehicle:
    """A live vehicle of the route and where it is along its direction's stop list."""

    vehicle_id: str
    trip_id: str
    direction_id: int | None
    lat: float
    lon: float
    bearing: float | None
    timestamp: int
    age_s: int
    fraction: float | None  # 0 at the first stop's end of the shape, 1 at the last
    after_stop: int | None  # index in the direction's stop list of the last stop passed
    next_stop: int | None


def read_vehicle_snapshot(app: Flask) -> Snapshot | None:
    """The latest VehiclePositions snapshot, or ``None`` when there is none or Redis cannot be reached."""
    guard = breaker(app)
    if guard.is_open:
        return None
    try:
        snapshot = read_snapshot(get_redis(app), LIVE_VEHICLES)
    except REDIS_ERRORS:
        guard.failed()
        return None
    guard.succeeded()
    return snapshot


def _line(direction: dict[str, Any]) -> ShapeLine | None:
    shape = direction.get("shape")
    coords = np.asarray(shape["geometry"]["coordinates"], dtype=float) if shape else np.zeros((0, 2))
    if len(coords) < 2:
        stops = direction.get("stops") or []
        coords = np.asarray([[s["lon"], s["lat"]] for s in stops], dtype=float).reshape(-1, 2)
    if len(coords) < 2:
        return None
    lat, lon = coords[:, 1], coords[:, 0]
    return ShapeLine.from_points("route", lat, lon, cumulative_distance_m(lat, lon))


def _place(line: ShapeLine, stops: list[dict[str, Any]], lat: float,
           lon: float) -> tuple[float, float, int | None, int | None]:
    """(offset from the line in metres, fraction along it, last stop passed, next stop)."""
    along, offset = line.nearest(np.array([lat]), np.array([lon]))
    where = float(along[0])
    stop_along, _ = line.nearest(np.array([s["lat"] for s in stops], dtype=float),
                                 np.array([s["lon"] for s in stops], dtype=float))
    # a stop matched a little back along a looping shape must not reorder the stop list
    passed = int(np.searchsorted(np.maximum.accumulate(stop_along), where, side="right")) - 1
    after = passed if passed >= 0 else None
    following = passed + 1 if passed + 1 < len(stops) else None
    fraction = where / line.length_m if line.length_m > 0 else 0.0
    return float(offset[0]), round(fraction, 4), after, following


def _direction_for(entity_direction: int | None, lat: float, lon: float,
                   lines: list[tuple[dict[str, Any], ShapeLine]]) -> int | None:
    """Index of the direction the vehicle runs in: its trip's direction_id, else the nearest line."""
    for i, (direction, _) in enumerate(lines):
        if entity_direction is not None and direction.get("direction_id") == entity_direction:
            return i
    if not lines:
        return None
    offsets = [float(line.nearest(np.array([lat]), np.array([lon]))[1][0]) for _, line in lines]
    return int(np.argmin(offsets))


def place_vehicles(body: bytes, route: dict[str, Any], now: dt.datetime) -> list[PlacedVehicle]:
    """The route's vehicles in a serialized VehiclePositions feed, fresh ones only, placed along the route."""
    feed = rt.FeedMessage()
    feed.ParseFromString(body)
    lines = [(d, line) for d in route["directions"] if (line := _line(d)) is not None]
    placed = []
    for entity in feed.entity:
        if not entity.HasField("vehicle"):
            continue
        vp = entity.vehicle
        if vp.trip.route_id != route["route_id"]:
            continue
        age = int(now.timestamp()) - int(vp.timestamp or feed.header.timestamp)
        if age > STALE_AFTER_S:
            continue
        lat, lon = float(vp.position.latitude), float(vp.position.longitude)
        direction_id = vp.trip.direction_id if vp.trip.HasField("direction_id") else None
        index = _direction_for(direction_id, lat, lon, lines)
        fraction = after = following = None
        if index is not None:
            direction, line = lines[index]
            direction_id = direction.get("direction_id")
            _, fraction, after, following = _place(line, direction["stops"], lat, lon)
        placed.append(PlacedVehicle(
            vehicle_id=vp.vehicle.id or entity.id, trip_id=vp.trip.trip_id, direction_id=direction_id,
            lat=lat, lon=lon, bearing=float(vp.position.bearing) if vp.position.HasField("bearing") else None,
            timestamp=int(vp.timestamp), age_s=max(0, age), fraction=fraction, after_stop=after, next_stop=following))
    return sorted(placed, key=lambda v: (v.direction_id or 0, v.fraction or 0.0, v.vehicle_id))


def route_vehicles(app: Flask, route: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """JSON-ready: the route's live vehicles and when the snapshot they come from was made."""
    snapshot = read_vehicle_snapshot(app)
    vehicles = place_vehicles(snapshot.body, route, now) if snapshot is not None else []
    made = dt.datetime.fromtimestamp(snapshot.timestamp, dt.UTC).isoformat() if snapshot and snapshot.timestamp \
        else None
    return {"route_id": route["route_id"], "snapshot_at": made, "vehicles": [asdict(v) for v in vehicles]}
