"""The one AVL ingest service: every source (on-board units' JSON, GTFS-rt, CSV) hands it a frame of pings.

It validates (coordinates, far from every route, future or stale timestamps, unknown vehicles, duplicates in
the batch or already stored), counts rejections by reason, assigns trips and service days, stores the pings,
derives the stop events of the trips they touched, and commits once: a batch is stored whole or not at all,
rejection counters included. Bad values never raise; only a database failure does (and stores nothing).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, exists, literal, select
from sqlalchemy.orm import Session

from app.avl.network import FeedNetwork, NetworkCache
from app.avl.store import PartitionSet, add_rejections, existing_keys, insert_pings, upsert_events
from app.avl.tracker import TripTracker
from app.models import Vehicle
from app.models.avl import PING_SOURCES
from prediction.avl.events import resolve_start_dates

__all__ = ["FRAME_COLUMNS", "AvlService", "IngestReport", "IngestSettings", "empty_frame"]

FRAME_COLUMNS = ("vehicle_id", "t", "latitude", "longitude", "trip_id", "route_id", "start_date", "bearing", "speed")


def empty_frame() -> pd.DataFrame:
    text = {c: pd.Series(dtype=object) for c in ("vehicle_id", "trip_id", "route_id", "start_date")}
    return pd.DataFrame(text | {c: pd.Series(dtype=float) for c in ("t", "latitude", "longitude", "bearing",
                                                                      "speed")})[list(FRAME_COLUMNS)]


@dataclass(frozen=True)
class IngestSettings:
    """Limits of acceptable pings; ``max_age_s`` None accepts history of any age (file imports)."""

    max_future_s: float = 60.0
    max_age_s: float | None = 24 * 3600.0
    check_route_distance: bool = True
    assign_trips: bool = True


@dataclass
class IngestReport:
    """What became of one batch."""

    received: int
    stored: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    stop_events: int = 0

    def as_json(self) -> dict[str, Any]:
        rejected = {reason: n for reason, n in sorted(self.rejected.items()) if n}
        return {"received": self.received, "stored": self.stored, "rejected": rejected,
                "stop_events": self.stop_events}

    def add(self, other: IngestReport) -> None:
        self.received += other.received
        self.stored += other.stored
        self.rejected.update(other.rejected)
        self.stop_events += other.stop_events


class AvlService:
    """Ingest with the process's caches: the active feed's network, known partitions, per-vehicle tracks."""

    def __init__(self, networks: NetworkCache | None = None, tracker: TripTracker | None = None) -> None:
        self.networks = networks or NetworkCache()
        self.tracker = tracker or TripTracker()
        self.partitions = PartitionSet()

    def ingest(self, session: Session, frame: pd.DataFrame, source: str, *, now: float | None = None,
               settings: IngestSettings | None = None, rejected: Counter[str] | None = None) -> IngestReport:
        """Validate, store and match one batch, and commit; ``rejected`` adds rejections found while parsing."""
        cfg = settings or IngestSettings()
        clock = time.time() if now is None else now
        report = IngestReport(received=len(frame) + sum((rejected or Counter()).values()),
                              rejected=Counter(rejected or {}))
        try:
            network = self.networks.active(session, time.monotonic())
            good = self._validate(session, frame, clock, cfg, network, report)
            if network is not None and not good.empty:
                good = _with_trips(session, good, network, cfg, self.tracker)
            if network is not None:
                self.tracker.prepare(session, good, network)
            self.partitions.ensure(session, _utc_days(good["t"]))
            report.stored = insert_pings(session, good, PING_SOURCES[source])
            report.rejected["duplicate"] += len(good) - report.stored
            if network is not None:
                rows = self.tracker.add(session, network, good)
                upsert_events(session, rows)
                report.stop_events = len(rows)
            add_rejections(session, dt.datetime.fromtimestamp(clock, dt.UTC).date(), source, report.rejected)
            session.commit()
        except BaseException:
            session.rollback()
            self.tracker.clear()  # it may hold pings of the batch that was not stored
            self.partitions.known.clear()
            raise
        return report

    def _validate(self, session: Session, frame: pd.DataFrame, now: float, cfg: IngestSettings,
                  network: FeedNetwork | None, report: IngestReport) -> pd.DataFrame:
        frame = frame.reset_index(drop=True)
        lat = frame["latitude"].to_numpy(dtype=float)
        lon = frame["longitude"].to_numpy(dtype=float)
        t = frame["t"].to_numpy(dtype=float)
        checks: list[tuple[str, np.ndarray]] = [
            ("bad_timestamp", ~np.isfinite(t)),
            ("bad_coordinates", ~((np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0))),
            ("null_island", (lat == 0.0) & (lon == 0.0)),
            ("future_timestamp", t > now + cfg.max_future_s),
        ]
        if cfg.max_age_s is not None:
            checks.append(("stale_timestamp", t < now - cfg.max_age_s))
        if network is not None and cfg.check_route_distance:
            # clipped: a coordinate out of range is refused above, and 1e300 must not overflow the grid's cast
            near = network.grid.near(np.clip(np.nan_to_num(lat), -90.0, 90.0),
                                     np.clip(np.nan_to_num(lon), -180.0, 180.0))
            checks.append(("far_from_routes", ~near))
        checks.append(("unknown_vehicle", _unknown_vehicles(session, frame["vehicle_id"])))
        bad = np.zeros(len(frame), dtype=bool)
        for reason, mask in checks:
            new = mask & ~bad
            report.rejected[reason] += int(new.sum())
            bad |= mask
        good = frame[~bad]
        unique = good.drop_duplicates(["vehicle_id", "t"])
        report.rejected["duplicate"] += len(good) - len(unique)
        if session.get_bind().dialect.name == "postgresql":
            return unique  # INSERT … ON CONFLICT DO NOTHING skips (and counts) pings stored before
        return _drop_stored(session, unique, report)


def _unknown_vehicles(session: Session, vehicles: pd.Series) -> np.ndarray:
    """Pings of vehicles not registered — checked only once any vehicle is registered."""
    if vehicles.empty:
        return np.zeros(len(vehicles), dtype=bool)
    distinct = [str(v) for v in vehicles.unique()]
    # one round trip: the batch's active vehicles, and "" (never an id) when any vehicle is registered at all
    query = select(Vehicle.id).where(Vehicle.id.in_(bindparam("ids", expanding=True)), Vehicle.active.is_(True)) \
        .union_all(select(literal("")).where(exists().where(Vehicle.id.is_not(None))))
    known = set(session.scalars(query, {"ids": distinct}))
    if "" not in known:
        return np.zeros(len(vehicles), dtype=bool)
    return ~vehicles.isin(known).to_numpy()


def _drop_stored(session: Session, frame: pd.DataFrame, report: IngestReport) -> pd.DataFrame:
    if frame.empty:
        return frame
    t = frame["t"].to_numpy(dtype=float)
    start = dt.datetime.fromtimestamp(float(t.min()) - 0.001, dt.UTC)
    end = dt.datetime.fromtimestamp(float(t.max()) + 0.001, dt.UTC)
    stored = existing_keys(session, [str(v) for v in frame["vehicle_id"].unique()], start, end)
    if not stored:
        return frame
    millis = np.round(t * 1000).astype(np.int64)
    seen = np.array([(v, m) in stored for v, m in zip(frame["vehicle_id"], millis, strict=True)], dtype=bool)
    report.rejected["duplicate"] += int(seen.sum())
    return frame[~seen]


def _with_trips(session: Session, frame: pd.DataFrame, network: FeedNetwork, cfg: IngestSettings,
                tracker: TripTracker) -> pd.DataFrame:
    """Trip ids for pings without one (each vehicle's track, ``prediction.avl.assign``) and the service day of every
    trip."""
    frame = frame.reset_index(drop=True).copy()
    missing = frame["trip_id"].isna()
    if cfg.assign_trips and missing.any():
        found = tracker.assign(network, frame[missing], session)
        frame.loc[missing, "trip_id"] = found["trip_id"]
        frame.loc[missing, "start_date"] = found["start_date"]
    frame["trip_id"] = frame["trip_id"].where(frame["trip_id"].notna(), None)
    frame["start_date"] = resolve_start_dates(frame, network.net).astype(object)
    frame["start_date"] = frame["start_date"].where(frame["start_date"].notna(), None)
    return frame


def _utc_days(t: pd.Series) -> set[dt.date]:
    return {dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in np.unique(t.to_numpy(dtype=float) // 86400)}
