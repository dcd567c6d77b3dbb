"""A route's shape on the map: per direction its most frequent stop pattern and the shape those trips follow."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import Route, Shape, ShapePoint, Stop, StopTime, Trip
from app.schedule.queries import active_feed, route_item, stop_items

__all__ = ["DirectionPattern", "route_detail"]


@dataclass(frozen=True)
class DirectionPattern:
    """The stop sequence most trips of one direction follow, with their usual headsign and shape."""

    direction_id: int | None
    stop_ids: tuple[str, ...]
    trip_count: int
    headsign: str | None
    shape_id: str | None


def route_detail(session: Session, route_id: str, *, with_shape: bool) -> dict[str, Any]:
    """The route with, per direction, its stops in order and (if ``with_shape``) a GeoJSON shape."""
    feed = active_feed(session)
    route = session.get(Route, (feed.id, route_id))
    if route is None:
        raise NotFound(f"no route {route_id!r} in the active feed", field="route_id")
    patterns = direction_patterns(session, feed.id, route_id)
    stop_ids = sorted({s for p in patterns for s in p.stop_ids})
    stops = session.scalars(select(Stop).where(Stop.feed_version_id == feed.id, Stop.stop_id.in_(stop_ids))).all()
    items = {item["stop_id"]: item for item in stop_items(session, feed.id, stops, routes=False)}
    shapes = _shape_features(session, feed.id, {p.shape_id for p in patterns if p.shape_id}) if with_shape else {}
    directions = []
    for pattern in patterns:
        direction: dict[str, Any] = {
            "direction_id": pattern.direction_id,
            "headsign": pattern.headsign,
            "trip_count": pattern.trip_count,
            "stops": [items[s] for s in pattern.stop_ids if s in items],
        }
        if with_shape:
            direction["shape"] = shapes.get(pattern.shape_id) if pattern.shape_id else None
        directions.append(direction)
    return {**route_item(route), "directions": directions}


def direction_patterns(session: Session, feed_id: int, route_id: str) -> list[DirectionPattern]:
    """One pattern per ``direction_id`` (``None`` last): the commonest stop sequence, ties to the longer."""
    trips = session.execute(
        select(Trip.trip_id, Trip.direction_id, Trip.trip_headsign, Trip.shape_id).where(
            Trip.feed_version_id == feed_id, Trip.route_id == route_id)
    ).all()
    sequences = _trip_stop_sequences(session, feed_id, route_id)
    by_direction: dict[int | None, list[tuple[tuple[str, ...], str | None, str | None]]] = defaultdict(list)
    for trip_id, direction_id, headsign, shape_id in trips:
        if sequences.get(trip_id):
            by_direction[direction_id].append((sequences[trip_id], headsign, shape_id))
    patterns = []
    for direction_id in sorted(by_direction, key=lambda d: (d is None, d or 0)):
        trips_here = by_direction[direction_id]
        counts = Counter(stops for stops, _, _ in trips_here)
        best, count = min(counts.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0]))
        headsigns = Counter(h for stops, h, _ in trips_here if stops == best and h)
        shape_ids = Counter(s for stops, _, s in trips_here if stops == best and s)
        patterns.append(DirectionPattern(
            direction_id, best, count,
            headsigns.most_common(1)[0][0] if headsigns else None,
            shape_ids.most_common(1)[0][0] if shape_ids else None,
        ))
    return patterns


def _trip_stop_sequences(session: Session, feed_id: int, route_id: str) -> dict[str, tuple[str, ...]]:
    rows = session.execute(
        select(StopTime.trip_id, StopTime.stop_id)
        .join(Trip, and_(Trip.feed_version_id == StopTime.feed_version_id, Trip.trip_id == StopTime.trip_id))
        .where(StopTime.feed_version_id == feed_id, Trip.route_id == route_id)
        .order_by(StopTime.trip_id, StopTime.stop_sequence)
    ).all()
    stops: dict[str, list[str]] = defaultdict(list)
    for trip_id, stop_id in rows:
        stops[trip_id].append(stop_id)
    return {trip_id: tuple(ids) for trip_id, ids in stops.items()}


def _shape_features(session: Session, feed_id: int, shape_ids: set[str]) -> dict[str, dict[str, Any]]:
    """GeoJSON ``Feature``s (LineString of ``[lon, lat]``) for the given shapes."""
    if not shape_ids:
        return {}
    shapes = {s.shape_id: s for s in session.scalars(
        select(Shape).where(Shape.feed_version_id == feed_id, Shape.shape_id.in_(shape_ids)))}
    points = session.execute(
        select(ShapePoint.shape_id, ShapePoint.shape_pt_lon, ShapePoint.shape_pt_lat)
        .where(ShapePoint.feed_version_id == feed_id, ShapePoint.shape_id.in_(shape_ids))
        .order_by(ShapePoint.shape_id, ShapePoint.shape_pt_sequence)
    ).all()
    coordinates: dict[str, list[list[float]]] = defaultdict(list)
    for shape_id, lon, lat in points:
        coordinates[shape_id].append([lon, lat])
    features = {}
    for shape_id, line in coordinates.items():
        shape = shapes.get(shape_id)
        features[shape_id] = {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": line},
            "properties": {
                "shape_id": shape_id,
                "length_m": shape.length_m if shape else None,
                "generated": shape.generated if shape else False,
            },
        }
    return features
