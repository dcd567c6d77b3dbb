"""Zones for the origin–destination matrix: planners read a month of flows between areas, not 4.5 M stop pairs.

A stop's zone is ``zone:<zone_id>`` when the active GTFS feed gives the stop a ``zone_id``, else the square grid
cell of ``grid_m`` metres its coordinates fall in (``grid<m>:<row>:<col>``; rows are ``grid_m`` of latitude,
columns ``grid_m`` of longitude measured at the row's centre, so a cell's key depends on the stop alone). An OD
origin or destination without a zone (a stop missing from the feed, ``route:<id>`` for sources without stops)
stays itself, and ``''`` (unchained) stays ``''``, so zone totals always equal the stop cells they sum.

``report_od_zone_day`` is derived from ``report_od_day`` by a GROUP BY through ``report_stop_zone``: per day
when a day is rebuilt, as deltas when new boardings are folded in (``app.reports.delta``), and entirely when
the mapping changes (a new feed, another grid size).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from app.models import FeedVersion, OdZoneDay, OdZoneTotalDay, Stop, StopZone

__all__ = ["GRID_M", "StopPoint", "assign_zones", "feed_stops", "rebuild_zone_days", "sync_stop_zones", "zone_of"]

GRID_M = 2000  # default cell size; see docs/reports.md for why not 1 km
_M_PER_DEGREE = 111_320.0

# Origin and destination through the mapping; an unmapped one keeps its own id ('' stays '')
_FROM_OD_DAY = """
INSERT INTO report_od_zone_day (dataset, service_date, origin_zone, destination_zone, category, day_type, trips)
SELECT o.dataset, o.service_date, COALESCE(a.zone, o.origin), COALESCE(b.zone, o.destination), o.category,
       MIN(o.day_type), SUM(o.trips)
FROM report_od_day o
LEFT JOIN report_stop_zone a ON a.stop_id = o.origin
LEFT JOIN report_stop_zone b ON b.stop_id = o.destination
WHERE {where}
GROUP BY o.dataset, o.service_date, COALESCE(a.zone, o.origin), COALESCE(b.zone, o.destination), o.category
"""
# ... and over rider categories, for the matrix of all riders
_TOTAL_FROM_ZONES = """
INSERT INTO report_od_zone_total_day (dataset, service_date, origin_zone, destination_zone, day_type, trips)
SELECT dataset, service_date, origin_zone, destination_zone, MIN(day_type), SUM(trips)
FROM report_od_zone_day o WHERE {where}
GROUP BY dataset, service_date, origin_zone, destination_zone
"""


@dataclass(frozen=True)
class StopPoint:
    stop_id: str
    lat: float
    lon: float
    zone_id: str | None = None


def zone_of(point: StopPoint, grid_m: int) -> str:
    """The stop's zone key: its GTFS fare zone when it has one, else its grid cell."""
    if point.zone_id:
        return f"zone:{point.zone_id}"
    row = math.floor(point.lat * _M_PER_DEGREE / grid_m)
    centre = math.radians((row + 0.5) * grid_m / _M_PER_DEGREE)
    col = math.floor(point.lon * _M_PER_DEGREE * math.cos(centre) / grid_m)
    return f"grid{grid_m}:{row}:{col}"


def feed_stops(session: Session) -> list[StopPoint]:
    """The active feed's stops that have coordinates (none when no feed is active)."""
    stmt = (select(Stop.stop_id, Stop.stop_lat, Stop.stop_lon, Stop.zone_id)
            .join(FeedVersion, FeedVersion.id == Stop.feed_version_id)
            .where(FeedVersion.is_active.is_(True), Stop.stop_lat.is_not(None), Stop.stop_lon.is_not(None)))
    return [StopPoint(s, float(lat or 0), float(lon or 0), z or None) for s, lat, lon, z in session.execute(stmt)]


def assign_zones(session: Session, stops: Iterable[StopPoint], grid_m: int) -> bool:
    """Make ``report_stop_zone`` hold ``stops``' zones; True when that changed anything (the zone rollup is then
    stale and must be rebuilt: ``sync_stop_zones`` does both)."""
    if grid_m < 100:
        raise ValueError(f"OD zone grid must be at least 100 m, not {grid_m}")
    wanted = {p.stop_id: (zone_of(p, grid_m), round(p.lat, 6), round(p.lon, 6)) for p in stops}
    held = {z.stop_id: (z.zone, round(z.lat, 6), round(z.lon, 6)) for z in session.scalars(select(StopZone))}
    if wanted == held:
        return False
    session.execute(delete(StopZone))
    session.add_all(StopZone(stop_id=s, zone=z, lat=lat, lon=lon) for s, (z, lat, lon) in wanted.items())
    session.flush()
    return True


def rebuild_zone_days(session: Session, dataset: str | None = None, day: dt.date | None = None) -> None:
    """Re-derive the zone rollups from the stop-level OD rows: of one dataset's day, or of everything."""
    one_day = dataset is not None and day is not None
    where = "o.dataset = :dataset AND o.service_date = :day" if one_day else "true"
    for model in (OdZoneDay, OdZoneTotalDay):
        stmt = delete(model)
        session.execute(stmt.where(model.dataset == dataset, model.service_date == day) if one_day else stmt)
    for statement in (_FROM_OD_DAY, _TOTAL_FROM_ZONES):
        session.execute(text(statement.format(where=where)), {"dataset": dataset, "day": day} if one_day else {})


def sync_stop_zones(session: Session, grid_m: int) -> bool:
    """Bring the stop → zone mapping in line with the active feed and grid size; when it changed, rebuild the
    whole zone rollup from the stop-level rows (once per feed change, not per refresh)."""
    changed = assign_zones(session, feed_stops(session), grid_m)
    if changed:
        rebuild_zone_days(session)
    return changed
