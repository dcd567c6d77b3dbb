"""Read-only schedule queries the API answers from: the active feed, stops and routes.

Every function takes a ``Session`` and returns JSON-ready mappings; unknown ids raise ``NotFound``
naming the parameter, a database without a serving feed raises ``NoActiveFeed``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.errors import BadRequest, NoActiveFeed, NotFound
from app.models import FeedVersion, Route, Stop, StopTime, Translation, Trip
from app.schedule.search import SEARCHABLE_LOCATION_TYPES, StopSearchCache
from prediction.geo import EARTH_RADIUS_M, haversine_m

__all__ = [
    "active_feed",
    "get_stop",
    "list_routes",
    "route_item",
    "route_sort_key",
    "search_stops",
    "stop_detail",
    "stop_items",
]

_METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180.0


def active_feed(session: Session) -> FeedVersion:
    """The feed version being served; ``NoActiveFeed`` when nothing has been imported."""
    feed = session.scalars(
        select(FeedVersion)
        .where(FeedVersion.is_active.is_(True), FeedVersion.status == "ready")
        .order_by(FeedVersion.id.desc())
        .limit(1)
    ).first()
    if feed is None:
        raise NoActiveFeed("no schedule is being served yet; import a GTFS feed first")
    return feed


def get_stop(session: Session, feed_id: int, stop_id: str) -> Stop:
    stop = session.get(Stop, (feed_id, stop_id))
    if stop is None:
        raise NotFound(f"no stop {stop_id!r} in the active feed", field="stop_id")
    return stop


def route_sort_key(short_name: str | None, route_id: str) -> tuple[Any, ...]:
    """Natural order for route names: "2" < "12" < "12A" < "B1"."""
    name = short_name or route_id
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.findall(r"\d+|\D+", name))


# --- stops -------------------------------------------------------------------------------------


def search_stops(
    session: Session, cache: StopSearchCache, *, q: str | None, near: tuple[float, float] | None, radius_m: int,
    limit: int,
) -> dict[str, Any]:
    """``{"stops": [...], "suggestions": [...]}``: stops matching the text ``q`` best first (``app.schedule.search``)
    and/or within ``radius_m`` of ``near`` (then nearest first, with ``distance_m``)."""
    feed = active_feed(session)
    answer = cache.index(session, feed.id, feed.activated_at).search(q) if q is not None else None
    if near is None:
        if answer is None:
            raise BadRequest("give q (text) or near (lat,lon)", field="q")
        items = stop_items(session, feed.id, _stops_in_order(session, feed.id, answer.stop_ids[:limit]), routes=True)
    else:
        items = _nearest(session, feed.id, near, radius_m, limit, None if answer is None else set(answer.stop_ids))
    if answer is not None:
        for item in items:
            item["match"] = answer.kinds[item["stop_id"]]
    return {"stops": items, "suggestions": answer.suggestions if answer is not None else []}


def _stops_in_order(session: Session, feed_id: int, stop_ids: Sequence[str]) -> list[Stop]:
    found = {s.stop_id: s for s in session.scalars(
        select(Stop).where(Stop.feed_version_id == feed_id, Stop.stop_id.in_(stop_ids)))}
    return [found[stop_id] for stop_id in stop_ids if stop_id in found]


def _nearest(session: Session, feed_id: int, near: tuple[float, float], radius_m: int, limit: int,
             among: set[str] | None) -> list[dict[str, Any]]:
    """Stops within the radius (only those ``among`` the text matches, when given), nearest first."""
    query = select(Stop).where(Stop.feed_version_id == feed_id, Stop.location_type.in_(SEARCHABLE_LOCATION_TYPES))
    stops, distances = _within_radius(session, query, near, radius_m)
    if among is not None:
        keep = [i for i, s in enumerate(stops) if s.stop_id in among]
        stops, distances = [stops[i] for i in keep], distances[np.asarray(keep, dtype=np.intp)]
    order = np.argsort(distances, kind="stable")[:limit]
    items = stop_items(session, feed_id, [stops[i] for i in order], routes=True)
    for item, i in zip(items, order, strict=True):
        item["distance_m"] = round(float(distances[i]), 1)
    return items


def _within_radius(
    session: Session, query: Any, near: tuple[float, float], radius_m: int
) -> tuple[list[Stop], np.ndarray]:
    """Bounding-box prefilter in SQL, then the exact haversine distance and the radius test in numpy."""
    lat, lon = near
    dlat = radius_m / _METRES_PER_DEGREE
    dlon = min(180.0, dlat / max(math.cos(math.radians(lat)), 1e-6))
    box = query.where(
        Stop.stop_lat.between(lat - dlat, lat + dlat),
        Stop.stop_lon.between(lon - dlon, lon + dlon),
    )
    stops = list(session.scalars(box))
    if not stops:
        return [], np.zeros(0)
    lats = np.array([s.stop_lat for s in stops], dtype=np.float64)
    lons = np.array([s.stop_lon for s in stops], dtype=np.float64)
    distances = haversine_m(lat, lon, lats, lons)
    inside = np.flatnonzero(distances <= radius_m)
    return [stops[i] for i in inside], distances[inside]


def stop_detail(session: Session, stop_id: str) -> dict[str, Any]:
    feed = active_feed(session)
    return stop_items(session, feed.id, [get_stop(session, feed.id, stop_id)], routes=True)[0]


def stop_items(session: Session, feed_id: int, stops: Sequence[Stop], *, routes: bool) -> list[dict[str, Any]]:
    """JSON items for ``stops`` with their name translations and, if ``routes``, the routes serving them."""
    translations = _stop_translations(session, feed_id, stops)
    serving = _routes_serving(session, feed_id, [s.stop_id for s in stops]) if routes else {}
    items = []
    for stop in stops:
        item: dict[str, Any] = {
            "stop_id": stop.stop_id,
            "code": stop.stop_code,
            "name": stop.stop_name,
            "lat": stop.stop_lat,
            "lon": stop.stop_lon,
            "location_type": stop.location_type,
            "parent_station": stop.parent_station,
            "translations": translations.get(stop.stop_id, {}),
        }
        if routes:
            item["routes"] = serving.get(stop.stop_id, [])
        items.append(item)
    return items


def _stop_translations(session: Session, feed_id: int, stops: Sequence[Stop]) -> dict[str, dict[str, str]]:
    """``{stop_id: {language: name}}`` from translations keyed by record_id, or else by the name itself."""
    if not stops:
        return {}
    ids = [s.stop_id for s in stops]
    names = sorted({s.stop_name for s in stops if s.stop_name})
    rows = session.execute(
        select(Translation.record_id, Translation.field_value, Translation.language, Translation.translation).where(
            Translation.feed_version_id == feed_id,
            Translation.table_name == "stops",
            Translation.field_name == "stop_name",
            or_(Translation.record_id.in_(ids), Translation.field_value.in_(names)),
        )
    ).all()
    by_id: dict[str, dict[str, str]] = defaultdict(dict)
    by_name: dict[str, dict[str, str]] = defaultdict(dict)
    for record_id, field_value, language, text in rows:
        if record_id is not None:
            by_id[record_id][language] = text
        elif field_value is not None:
            by_name[field_value][language] = text
    # a translation for this very stop wins over one for every stop of that name
    return {s.stop_id: {**by_name.get(s.stop_name or "", {}), **by_id.get(s.stop_id, {})} for s in stops}


def _routes_serving(session: Session, feed_id: int, stop_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """``{stop_id: [route refs]}`` for the routes with a trip calling at each stop, in natural order."""
    ids = list(stop_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(StopTime.stop_id, Route.route_id, Route.route_short_name, Route.route_color)
        .distinct()
        .join(Trip, and_(Trip.feed_version_id == StopTime.feed_version_id, Trip.trip_id == StopTime.trip_id))
        .join(Route, and_(Route.feed_version_id == Trip.feed_version_id, Route.route_id == Trip.route_id))
        .where(StopTime.feed_version_id == feed_id, StopTime.stop_id.in_(ids))
    ).all()
    serving: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for stop_id, route_id, short_name, color in rows:
        serving[stop_id].append({"route_id": route_id, "route_short_name": short_name, "route_color": color})
    for refs in serving.values():
        refs.sort(key=lambda r: route_sort_key(r["route_short_name"], r["route_id"]))
    return serving


# --- routes ------------------------------------------------------------------------------------


def route_item(route: Route) -> dict[str, Any]:
    return {
        "route_id": route.route_id,
        "agency_id": route.agency_id,
        "route_short_name": route.route_short_name,
        "route_long_name": route.route_long_name,
        "route_desc": route.route_desc,
        "route_type": route.route_type,
        "route_color": route.route_color,
        "route_text_color": route.route_text_color,
        "route_sort_order": route.route_sort_order,
    }


def list_routes(session: Session) -> list[dict[str, Any]]:
    """Every route of the active feed: by ``route_sort_order``, then naturally by short name."""
    feed = active_feed(session)
    routes = session.scalars(select(Route).where(Route.feed_version_id == feed.id)).all()
    ordered = sorted(routes, key=lambda r: (
        r.route_sort_order is None, r.route_sort_order or 0, route_sort_key(r.route_short_name, r.route_id)))
    return [route_item(r) for r in ordered]
