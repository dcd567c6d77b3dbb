"""The staff live map's data: vehicles from the GTFS-rt VehiclePositions snapshot the worker publishes to
Redis, and route lines from the active feed's shapes — drawn by the page itself, without map tiles.

A missing, old or unreadable snapshot is a state the page shows ("no live data"), never an error.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from google.transit import gtfs_realtime_pb2 as rt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cache import RedisClient
from app.models import FeedVersion, Route, ShapePoint, Trip
from app.realtime.gtfs_rt import LIVE_VEHICLES
from app.realtime.store import REDIS_ERRORS, read_snapshot

__all__ = ["STALE_AFTER_S", "live_vehicles", "route_lines"]

STALE_AFTER_S = 120  # the worker publishes every few seconds; two minutes of silence means it stopped
SHAPES_PER_ROUTE = 2  # the most used shape of each direction, typically
MAX_POINTS = 150


def live_vehicles(client: RedisClient, now: dt.datetime) -> dict[str, Any]:
    """``status`` is ``live``, ``stale`` (snapshot older than ``STALE_AFTER_S``), ``none`` (no snapshot or no
    vehicle in it) or ``unavailable`` (Redis unreachable); ``vehicles`` lists what the snapshot holds."""
    try:
        snapshot = read_snapshot(client, LIVE_VEHICLES)
    except REDIS_ERRORS:
        return {"status": "unavailable", "feed_timestamp": None, "age_s": None, "vehicles": []}
    if snapshot is None:
        return {"status": "none", "feed_timestamp": None, "age_s": None, "vehicles": []}
    feed = rt.FeedMessage()
    feed.ParseFromString(snapshot.body)
    stamp = int(feed.header.timestamp or snapshot.timestamp)
    vehicles = [_vehicle(entity) for entity in feed.entity
                if entity.HasField("vehicle") and entity.vehicle.HasField("position")]
    age = max(0, int(now.timestamp()) - stamp)
    status = "none" if not vehicles else ("stale" if age > STALE_AFTER_S else "live")
    return {"status": status, "feed_timestamp": stamp, "age_s": age, "vehicles": vehicles}


def _vehicle(entity: Any) -> dict[str, Any]:
    v = entity.vehicle
    return {"id": v.vehicle.id or entity.id, "route_id": v.trip.route_id or None, "trip_id": v.trip.trip_id or None,
            "lat": round(v.position.latitude, 5), "lon": round(v.position.longitude, 5),  # float32: ~1 m
            "bearing": round(v.position.bearing) if v.position.HasField("bearing") else None,
            "timestamp": int(v.timestamp) or None}


def route_lines(session: Session) -> list[dict[str, Any]]:
    """Each route of the active feed with its most used shapes, thinned to at most ``MAX_POINTS`` points."""
    feed_id = session.scalar(select(FeedVersion.id).where(FeedVersion.is_active).order_by(FeedVersion.id.desc()))
    if feed_id is None:
        return []
    used = session.execute(
        select(Trip.route_id, Trip.shape_id, func.count().label("n"))
        .where(Trip.feed_version_id == feed_id, Trip.shape_id.is_not(None))
        .group_by(Trip.route_id, Trip.shape_id).order_by(Trip.route_id, func.count().desc())).all()
    chosen: dict[str, list[str]] = defaultdict(list)
    for route_id, shape_id, _n in used:
        if shape_id is not None and len(chosen[route_id]) < SHAPES_PER_ROUTE:
            chosen[route_id].append(shape_id)
    wanted = {s for shapes in chosen.values() for s in shapes}
    points: dict[str, list[list[float]]] = defaultdict(list)
    for shape_id, lat, lon in session.execute(
            select(ShapePoint.shape_id, ShapePoint.shape_pt_lat, ShapePoint.shape_pt_lon)
            .where(ShapePoint.feed_version_id == feed_id, ShapePoint.shape_id.in_(wanted))
            .order_by(ShapePoint.shape_id, ShapePoint.shape_pt_sequence)):
        points[shape_id].append([round(lat, 5), round(lon, 5)])
    routes = {r.route_id: r for r in session.scalars(select(Route).where(Route.feed_version_id == feed_id))}
    lines = []
    for route_id, shapes in sorted(chosen.items()):
        route = routes.get(route_id)
        lines.append({"route_id": route_id,
                      "name": (route.route_short_name or route.route_long_name or route_id) if route else route_id,
                      "color": f"#{route.route_color}" if route and route.route_color else None,
                      "shapes": [_thin(points[s]) for s in shapes if points[s]]})
    return lines


def _thin(line: list[list[float]]) -> list[list[float]]:
    """Every n-th point and the last, so a long shape stays light for the page."""
    step = max(1, -(-len(line) // MAX_POINTS))
    kept = line[::step]
    return kept if kept[-1] == line[-1] else [*kept, line[-1]]
