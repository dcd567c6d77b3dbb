"""The active feed as the matcher sees it: a ``Network`` read from the database, a coarse grid of cells near
any route (the "far from every route" check) and each trip visit's scheduled times; cached per feed version."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Connection, Select, select
from sqlalchemy.orm import Session

from app.models import Calendar, CalendarDate, FeedVersion, ShapePoint, Stop, StopTime, Trip
from prediction.gtfs.schedule import ScheduleFeed
from prediction.network import Network, build_network

__all__ = ["FeedNetwork", "NetworkCache", "RouteGrid", "load_network"]

FloatArray = npt.NDArray[np.float64]
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class RouteGrid:
    """Grid cells (about ``cell_m`` square) within one cell of some route's shape.

    A ping whose cell is not in the set is at least ``cell_m`` from every shape, so "far from any route" is one
    vectorised lookup per batch instead of a projection onto every shape.
    """

    cell_m: float
    cells: npt.NDArray[np.int64]  # sorted

    @classmethod
    def build(cls, net: Network, cell_m: float = 500.0) -> RouteGrid:
        parts = []
        for line in net.lines.values():
            steps = np.arange(0.0, line.length_m + cell_m / 4, cell_m / 4)
            lat, lon, _ = line.locate(steps)
            parts.append(cls._cells(lat, lon, cell_m))
        if not parts:
            return cls(cell_m, np.zeros(0, dtype=np.int64))
        base = np.unique(np.concatenate(parts))
        row, col = base // 1_000_000, base % 1_000_000
        near = [(row + dr) * 1_000_000 + (col + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
        return cls(cell_m, np.unique(np.concatenate(near)))

    @staticmethod
    def _cells(lat: FloatArray, lon: FloatArray, cell_m: float) -> npt.NDArray[np.int64]:
        # a lat/lon grid: rows of cell_m metres; columns cell_m metres at 45°, narrower toward the equator
        row = np.floor((np.asarray(lat) + 90.0) * 111_320.0 / cell_m).astype(np.int64)
        col = np.floor((np.asarray(lon) + 180.0) * 78_710.0 / cell_m).astype(np.int64)
        return row * 1_000_000 + col

    def near(self, lat: FloatArray, lon: FloatArray) -> npt.NDArray[np.bool_]:
        if len(self.cells) == 0:
            return np.ones(len(lat), dtype=bool)
        return np.isin(self._cells(lat, lon, self.cell_m), self.cells)


@dataclass(frozen=True)
class FeedNetwork:
    """One feed version ready for matching."""

    feed_version_id: int
    net: Network
    grid: RouteGrid
    visits: pd.DataFrame  # trip_id, stop_sequence, arrival_s, departure_s


def _frame(conn: Connection, query: Select[*tuple[Any, ...]]) -> pd.DataFrame:
    return pd.read_sql(query, conn)


def load_network(session: Session, feed_version_id: int) -> FeedNetwork:
    """Read a feed version's stops, trips, stop_times, shapes and calendars and build its network."""
    version = session.get(FeedVersion, feed_version_id)
    if version is None:
        raise LookupError(f"no feed version {feed_version_id}")
    fv = feed_version_id
    conn = session.connection()
    stops = _frame(conn, select(Stop.stop_id, Stop.stop_lat, Stop.stop_lon).where(Stop.feed_version_id == fv))
    trips = _frame(conn, select(Trip.trip_id, Trip.route_id, Trip.service_id, Trip.shape_id, Trip.block_id,
                                Trip.start_s, Trip.end_s).where(Trip.feed_version_id == fv))
    stop_times = _frame(conn, select(StopTime.trip_id, StopTime.stop_sequence, StopTime.stop_id,
                                     StopTime.arrival_s, StopTime.departure_s)
                        .where(StopTime.feed_version_id == fv).order_by(StopTime.trip_id, StopTime.stop_sequence))
    # an import gives every trip a shape (straight lines through its stops when the feed has none); rows written
    # some other way may lack one, and a trip with no line cannot be matched: leave it out rather than fail
    trips = trips[trips["shape_id"].notna()]
    stop_times = stop_times[stop_times["trip_id"].isin(trips["trip_id"])].reset_index(drop=True)
    points = _frame(conn, select(ShapePoint.shape_id, ShapePoint.shape_pt_sequence, ShapePoint.shape_pt_lat,
                                 ShapePoint.shape_pt_lon, ShapePoint.dist_m)
                    .where(ShapePoint.feed_version_id == fv)
                    .order_by(ShapePoint.shape_id, ShapePoint.shape_pt_sequence))
    calendar = _frame(conn, select(Calendar).where(Calendar.feed_version_id == fv))
    for day in _DAYS:
        calendar[day] = calendar[day].astype(int)
    for column in ("start_date", "end_date"):
        calendar[column] = [_date(v) for v in calendar[column]]
    dates = _frame(conn, select(CalendarDate).where(CalendarDate.feed_version_id == fv))
    dates["date"] = [_date(v) for v in dates["date"]]
    empty = pd.DataFrame()
    feed = ScheduleFeed(
        source=version.source, sha256=version.sha256, timezone=version.agency_timezone, feed_info={},
        agency=empty, stops=stops, routes=empty, trips=trips, stop_times=stop_times, calendar=calendar,
        calendar_dates=dates, shapes=empty, shape_points=points, frequencies=empty, translations=empty)
    net = build_network(feed)
    return FeedNetwork(fv, net, RouteGrid.build(net), stop_times[["trip_id", "stop_sequence", "arrival_s",
                                                                  "departure_s"]])


def _date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


class NetworkCache:
    """The active feed's network, rebuilt when another version becomes active (checked every few seconds)."""

    def __init__(self, recheck_s: float = 5.0) -> None:
        self._lock = threading.Lock()
        self._current: FeedNetwork | None = None
        self._checked = -np.inf
        self._active: int | None = None
        self.recheck_s = recheck_s

    def active(self, session: Session, now_monotonic: float) -> FeedNetwork | None:
        """The active feed version's network, or None when no feed is imported."""
        with self._lock:
            if now_monotonic - self._checked >= self.recheck_s:
                self._active = session.scalar(select(FeedVersion.id).where(FeedVersion.is_active.is_(True)))
                self._checked = now_monotonic
            if self._active is None:
                return None
            if self._current is None or self._current.feed_version_id != self._active:
                self._current = load_network(session, self._active)
            return self._current

    def clear(self) -> None:
        with self._lock:
            self._current, self._active, self._checked = None, None, -np.inf
