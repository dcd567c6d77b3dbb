"""Incremental stop events: each vehicle's recent pings kept in memory, and the events of the trips a batch
touched re-derived with ``prediction.events`` and turned into rows with their deviation from schedule.

A trip's events depend on all of its pings (the pace between pings, the monotone projection) and on the
vehicle's pings just before and after it (the ends of a trip are bridged from them), so a batch re-derives
each trip it touched, and the trip the vehicle left, from the whole trip — the same function over the same
pings as the stateless ``qala avl events``, hence the same events. A vehicle the tracker has not seen (first
ping, or after a restart) is filled from the stored pings of the last ``lookback_s`` first.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.avl.network import FeedNetwork
from app.models import Ping
from prediction.events import EventSettings, derive_events
from prediction.servicedays import service_day_start

__all__ = ["TripTracker", "event_rows"]

ObjectArray = npt.NDArray[np.object_]
FloatArray = npt.NDArray[np.float64]
_FIELDS = ("t", "latitude", "longitude", "trip_id", "start_date")


@dataclass
class _Track:
    """One vehicle's recent pings, sorted by time."""

    t: FloatArray
    latitude: FloatArray
    longitude: FloatArray
    trip_id: ObjectArray
    start_date: ObjectArray

    def merge(self, other: _Track, keep_from: float) -> tuple[_Track, int]:
        """This track with ``other``'s pings added; returns it and the index of the first new ping."""
        parts = {name: np.concatenate([getattr(self, name), getattr(other, name)]) for name in _FIELDS}
        order = np.argsort(parts["t"], kind="stable")
        t = parts["t"][order]
        unique = np.concatenate([[True], np.diff(t) > 0])  # stored first wins, as in the database
        keep = order[unique & (t >= keep_from)]
        merged = _Track(**{name: parts[name][keep] for name in _FIELDS})
        first_new = int(np.searchsorted(merged.t, other.t.min(), side="left")) if len(other.t) else len(merged.t)
        return merged, first_new


def _track(frame: pd.DataFrame) -> _Track:
    return _Track(frame["t"].to_numpy(dtype=float), frame["latitude"].to_numpy(dtype=float),
                  frame["longitude"].to_numpy(dtype=float), _objects(frame["trip_id"]), _objects(frame["start_date"]))


def _objects(column: pd.Series) -> ObjectArray:
    values = column.astype(object).to_numpy()
    return np.array([None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
                     for v in values], dtype=object)


class TripTracker:
    """Per-vehicle ping memory for one process (several web workers each keep their own)."""

    def __init__(self, lookback_s: float = 4 * 3600.0, settings: EventSettings | None = None) -> None:
        self.lookback_s = lookback_s
        self.settings = settings or EventSettings()
        self._tracks: dict[str, _Track] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._tracks.clear()

    def add(self, session: Session, network: FeedNetwork, pings: pd.DataFrame) -> list[dict[str, Any]]:
        """Remember the accepted ``pings`` and return the stop-event rows of every trip they affect.

        ``prepare`` must have been called with these pings before they were stored."""
        if pings.empty:
            return []
        with self._lock:
            parts = []
            for vehicle, group in pings.groupby("vehicle_id", sort=False):
                parts.append(self._touch(str(vehicle), _track(group.sort_values("t", kind="stable"))))
        parts = [part for part in parts if not part.empty]
        if not parts:
            return []
        frame = pd.concat(parts, ignore_index=True)
        affected = set(zip(frame.pop("_affected_trip"), frame.pop("_affected_date"), strict=True))
        events = derive_events(network.net, frame, self.settings)
        keys = list(zip(events["trip_id"], events["start_date"], strict=True))
        events = events[[key in affected for key in keys]]
        return event_rows(network, events, frame)

    def prepare(self, session: Session, pings: pd.DataFrame) -> None:
        """Fill in the recent stored pings of vehicles not seen yet; call before the batch itself is stored."""
        with self._lock:
            self._backfill(session, pings)

    def _backfill(self, session: Session, pings: pd.DataFrame) -> None:
        cold = [str(v) for v in pings["vehicle_id"].unique() if str(v) not in self._tracks]
        if not cold:
            return
        start = float(pings["t"].min()) - self.lookback_s
        rows = session.execute(
            select(Ping.vehicle_id, Ping.recorded_at, Ping.lat_e6, Ping.lon_e6, Ping.trip_id, Ping.service_date)
            .where(Ping.vehicle_id.in_(bindparam("cold", expanding=True)),
                   Ping.recorded_at >= dt.datetime.fromtimestamp(start, dt.UTC))
            .order_by(Ping.vehicle_id, Ping.recorded_at), {"cold": cold}).all()
        stored = pd.DataFrame(rows, columns=["vehicle_id", "at", "lat", "lon", "trip_id", "service_date"])
        for vehicle in cold:
            self._tracks[vehicle] = _Track(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, dtype=object),
                                           np.zeros(0, dtype=object))
        for vehicle, group in stored.groupby("vehicle_id", sort=False):
            at = [a if a.tzinfo else a.replace(tzinfo=dt.UTC) for a in group["at"]]
            self._tracks[str(vehicle)] = _Track(
                np.array([a.timestamp() for a in at]), group["lat"].to_numpy(dtype=float) / 1e6,
                group["lon"].to_numpy(dtype=float) / 1e6, _objects(group["trip_id"]),
                np.array([None if d is None else d.strftime("%Y%m%d") for d in group["service_date"]], dtype=object))

    def _touch(self, vehicle: str, new: _Track) -> pd.DataFrame:
        """Merge ``new`` into the vehicle's track; return the pings needed to re-derive the affected trips."""
        if vehicle not in self._tracks:
            self._tracks[vehicle] = _Track(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, dtype=object),
                                           np.zeros(0, dtype=object))
        track, first_new = self._tracks[vehicle].merge(new, keep_from=float(new.t.max()) - self.lookback_s)
        self._tracks[vehicle] = track
        keys = list(zip(track.trip_id, track.start_date, strict=True))
        affected = {keys[i] for i in range(max(first_new - 1, 0), len(keys)) if keys[i][0] is not None}
        rows = np.flatnonzero([key in affected for key in keys])
        if len(rows) == 0:
            return pd.DataFrame()
        lo, hi = max(int(rows.min()) - 1, 0), min(int(rows.max()) + 2, len(keys))  # neighbours bridge the ends
        frame = pd.DataFrame({name: getattr(track, name)[lo:hi] for name in _FIELDS})
        frame.insert(0, "vehicle_id", vehicle)
        marks = [keys[i] if keys[i] in affected else (None, None) for i in range(lo, hi)]
        frame["_affected_trip"] = [m[0] for m in marks]
        frame["_affected_date"] = [m[1] for m in marks]
        return frame


def event_rows(network: FeedNetwork, events: pd.DataFrame, pings: pd.DataFrame) -> list[dict[str, Any]]:
    """``derive_events`` output as ``avl_stop_events`` rows, with scheduled times and deviation."""
    if events.empty:
        return []
    merged = events.merge(network.visits, on=["trip_id", "stop_sequence"], how="left")
    tz = network.net.tz
    origins = {d: service_day_start(dt.date(int(d[:4]), int(d[4:6]), int(d[6:])), tz).timestamp()
               for d in merged["start_date"].unique()}
    origin = merged["start_date"].map(origins).to_numpy(dtype=float)
    sched_arr = origin + merged["arrival_s"].to_numpy(dtype=float)
    sched_dep = origin + merged["departure_s"].to_numpy(dtype=float)
    vehicle_of = _vehicles(pings)
    out = []
    for row, s_arr, s_dep in zip(merged.itertuples(index=False), sched_arr, sched_dep, strict=True):
        out.append({
            "feed_version_id": network.feed_version_id, "trip_id": row.trip_id,
            "service_date": dt.date(int(row.start_date[:4]), int(row.start_date[4:6]), int(row.start_date[6:])),
            "stop_sequence": int(row.stop_sequence), "stop_id": str(row.stop_id),
            "vehicle_id": vehicle_of.get((row.trip_id, row.start_date), ""),
            "arrival_at": _utc(float(row.arrival)), "departure_at": _utc(float(row.departure)),
            "scheduled_arrival_at": _utc(float(s_arr)), "scheduled_departure_at": _utc(float(s_dep)),
            "deviation_s": round(float(row.arrival) - float(s_arr)),
            "passed_between_pings": bool(row.passed_between_pings),
        })
    return out


def _vehicles(pings: pd.DataFrame) -> dict[tuple[str, str], str]:
    known = pings.dropna(subset=["trip_id", "start_date"])
    counts = known.groupby(["trip_id", "start_date", "vehicle_id"]).size().reset_index(name="n")
    best = counts.sort_values("n", ascending=False).drop_duplicates(["trip_id", "start_date"])
    return {(str(t), str(d)): str(v) for t, d, v in zip(best["trip_id"], best["start_date"], best["vehicle_id"],
                                                         strict=True)}


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(round(epoch, 3), dt.UTC)
