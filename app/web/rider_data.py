"""What the rider pages show, read from the schedule in the rider's language: stops, routes and the network map.

Names come from the feed's ``translations.txt`` rows (by ``record_id``, else by the translated value itself),
falling back to the feed's own text, so a feed without translations still reads in its own language.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Route, ShapePoint, Stop, Translation, Trip
from app.schedule import patterns, queries
from app.web.i18n import localized_name

__all__ = ["all_routes", "headsign_names", "map_data", "route_names", "route_page", "stop_page", "thin_line"]

# Shape vertices closer than this to the last kept one are dropped from the map: invisible at city scale.
MAP_VERTEX_SPACING_M = 25.0
_DEG_M = 111_320.0


def _translations(session: Session, feed_id: int, table: str, field: str,
                  language: str) -> tuple[dict[str, str], dict[str, str]]:
    """``(by record_id, by field_value)`` translations of one field into ``language``."""
    rows = session.execute(
        select(Translation.record_id, Translation.field_value, Translation.translation).where(
            Translation.feed_version_id == feed_id, Translation.table_name == table,
            Translation.field_name == field, Translation.language == language)
    ).all()
    by_id = {r: t for r, _, t in rows if r is not None}
    by_value = {v: t for r, v, t in rows if r is None and v is not None}
    return by_id, by_value


def route_names(session: Session, feed_id: int, language: str) -> dict[str, str]:
    """``{route_id: long name in language}`` for every route of the feed."""
    by_id, by_value = _translations(session, feed_id, "routes", "route_long_name", language)
    rows = session.execute(select(Route.route_id, Route.route_long_name).where(Route.feed_version_id == feed_id))
    return {rid: by_id.get(rid) or by_value.get(name or "") or name or "" for rid, name in rows}


def headsign_names(session: Session, feed_id: int, language: str) -> dict[str, str]:
    """``{headsign as the feed writes it: headsign in language}`` from translations keyed by the text itself.

    Keyed by value, not trip_id, so the page script can translate the headsigns of live arrivals too.
    """
    return _translations(session, feed_id, "trips", "trip_headsign", language)[1]


def _route_ref(ref: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {**ref, "long_name": names.get(ref["route_id"], "")}


def stop_page(session: Session, stop_id: str, language: str) -> dict[str, Any]:
    """The stop with its name in ``language`` and the routes that call there (``NotFound`` if unknown)."""
    feed = queries.active_feed(session)
    stop = queries.stop_detail(session, stop_id)
    names = route_names(session, feed.id, language)
    return {**stop, "display_name": localized_name(stop, language), "timezone": feed.agency_timezone,
            "routes": [_route_ref(r, names) for r in stop["routes"]],
            "headsigns": headsign_names(session, feed.id, language)}


def route_page(session: Session, route_id: str, language: str) -> dict[str, Any]:
    """The route, its long name in ``language``, per direction its stops (named in ``language``) and shape, and
    what placing its live vehicles needs: each trip's shape and scheduled span, every shape its trips follow."""
    feed = queries.active_feed(session)
    detail = patterns.route_detail(session, route_id, with_shape=True)
    detail["feed_version"] = feed.id
    detail["timezone"] = feed.agency_timezone
    detail["trips"] = _route_trips(session, feed.id, route_id)
    shape_ids = {trip["shape_id"] for trip in detail["trips"].values() if trip["shape_id"]}
    detail["shapes"] = {shape_id: [[lon, lat] for lon, lat in points]
                        for shape_id, points in _shape_points(session, feed.id, shape_ids).items()}
    detail["display_name"] = route_names(session, feed.id, language).get(route_id, "")
    headsigns = headsign_names(session, feed.id, language)
    for direction in detail["directions"]:
        for stop in direction["stops"]:
            stop["display_name"] = localized_name(stop, language)
        # the feed's headsign when it is translated, else the last stop's name (which usually is)
        last = direction["stops"][-1]["display_name"] if direction["stops"] else ""
        direction["display_headsign"] = headsigns.get(direction["headsign"] or "") or last or direction["headsign"]
    return detail


def _route_trips(session: Session, feed_id: int, route_id: str) -> dict[str, dict[str, Any]]:
    """``{trip_id: {shape_id, direction_id, start_s, end_s}}`` for every trip of the route."""
    rows = session.execute(
        select(Trip.trip_id, Trip.shape_id, Trip.direction_id, Trip.start_s, Trip.end_s)
        .where(Trip.feed_version_id == feed_id, Trip.route_id == route_id))
    return {trip_id: {"shape_id": shape_id, "direction_id": direction_id, "start_s": start_s, "end_s": end_s}
            for trip_id, shape_id, direction_id, start_s, end_s in rows}


def all_routes(session: Session, language: str) -> list[dict[str, Any]]:
    """Every route in natural order, with its long name in ``language``."""
    feed = queries.active_feed(session)
    names = route_names(session, feed.id, language)
    return [{**r, "display_name": names.get(r["route_id"], "")} for r in queries.list_routes(session)]


def _main_shapes(session: Session, feed_id: int) -> dict[tuple[str, int | None], str]:
    """Per (route, direction) the shape most of its trips follow."""
    rows = session.execute(
        select(Trip.route_id, Trip.direction_id, Trip.shape_id, func.count())
        .where(Trip.feed_version_id == feed_id, Trip.shape_id.is_not(None))
        .group_by(Trip.route_id, Trip.direction_id, Trip.shape_id)
    ).all()
    counts: dict[tuple[str, int | None], Counter[str]] = defaultdict(Counter)
    for route_id, direction_id, shape_id, n in rows:
        if shape_id is not None:
            counts[(route_id, direction_id)][shape_id] = n
    return {k: c.most_common(1)[0][0] for k, c in counts.items()}


def thin_line(lon: np.ndarray, lat: np.ndarray, spacing_m: float = MAP_VERTEX_SPACING_M) -> list[list[float]]:
    """``[[lon, lat], …]`` keeping a vertex only once it is ``spacing_m`` from the last kept one (ends kept)."""
    if len(lon) == 0:
        return []
    scale = np.cos(np.radians(float(np.mean(lat))))
    kept = [0]
    for i in range(1, len(lon)):
        dx = (lon[i] - lon[kept[-1]]) * scale * _DEG_M
        dy = (lat[i] - lat[kept[-1]]) * _DEG_M
        if dx * dx + dy * dy >= spacing_m * spacing_m:
            kept.append(i)
    if kept[-1] != len(lon) - 1:
        kept.append(len(lon) - 1)
    return [[round(float(lon[i]), 5), round(float(lat[i]), 5)] for i in kept]


def _shape_points(session: Session, feed_id: int, shape_ids: set[str]) -> dict[str, list[tuple[float, float]]]:
    """Every vertex ``(lon, lat)`` of the given shapes, in order."""
    if not shape_ids:
        return {}
    rows = session.execute(
        select(ShapePoint.shape_id, ShapePoint.shape_pt_lon, ShapePoint.shape_pt_lat)
        .where(ShapePoint.feed_version_id == feed_id, ShapePoint.shape_id.in_(sorted(shape_ids)))
        .order_by(ShapePoint.shape_id, ShapePoint.shape_pt_sequence)
    ).all()
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for shape_id, lon, lat in rows:
        points[shape_id].append((lon, lat))
    return points


def _shape_lines(session: Session, feed_id: int, shape_ids: set[str]) -> dict[str, list[list[float]]]:
    lines = {}
    for shape_id, pts in _shape_points(session, feed_id, shape_ids).items():
        array = np.asarray(pts, dtype=float)
        lines[shape_id] = thin_line(array[:, 0], array[:, 1])
    return lines


def _map_stops(session: Session, feed_id: int, language: str) -> list[dict[str, Any]]:
    by_id, by_value = _translations(session, feed_id, "stops", "stop_name", language)
    rows = session.execute(
        select(Stop.stop_id, Stop.stop_name, Stop.stop_lat, Stop.stop_lon)
        .where(Stop.feed_version_id == feed_id, Stop.location_type.in_((0,)), Stop.stop_lat.is_not(None))
        .order_by(Stop.stop_id)
    ).all()
    return [{"stop_id": sid, "name": by_id.get(sid) or by_value.get(name or "") or name or sid,
             "lat": round(lat, 6), "lon": round(lon, 6)} for sid, name, lat, lon in rows
            if lat is not None and lon is not None]


def map_data(session: Session, language: str) -> dict[str, Any]:
    """The whole network for the home map: each route's main shapes and every stop, named in ``language``."""
    feed = queries.active_feed(session)
    main = _main_shapes(session, feed.id)
    lines = _shape_lines(session, feed.id, set(main.values()))
    by_route: dict[str, list[list[list[float]]]] = defaultdict(list)
    for (route_id, _), shape_id in sorted(main.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        if shape_id in lines and lines[shape_id] not in by_route[route_id]:
            by_route[route_id].append(lines[shape_id])
    routes = [{"route_id": r["route_id"], "short_name": r["route_short_name"] or r["route_id"],
               "color": r["route_color"] or "00838f", "name": r["display_name"], "lines": by_route[r["route_id"]]}
              for r in all_routes(session, language) if by_route.get(r["route_id"])]
    return {"feed_version": feed.id, "language": language, "routes": routes,
            "stops": _map_stops(session, feed.id, language)}
