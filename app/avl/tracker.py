"""Incremental stop events: a ``prediction.avl.events.VehicleFollower`` per vehicle, kept in memory between batches.

Each follower holds its vehicle's current trip run (the decided pings' distance along the shape, the ping
awaiting its GPS-spike check, the stops already done), so a batch costs work in proportion to its own pings:
each new ping is projected once, and only the stops it newly places get events. The followers are the very code
``derive_events`` (``qala avl events``) runs over a whole file, so stored and stateless events agree.

A vehicle the tracker has not seen (first ping, or after a restart) is replayed from its stored pings of the
last ``lookback_s`` first (their events were stored when those pings came). Pings older than the vehicle's
latest are stored but do not move its events (a live feed's late pings).

An event's ``known_at`` is the time of the ping whose arrival released it. Every batch moves the feed's clock
on, and the followers of vehicles silent for longer than ``EventSettings.silence_s`` then close their trip runs,
stamped with the batch's first ping past that limit: for batches in time order, the very ``known_at`` that
``derive_events`` gives a replay of the same pings.

Pings without a trip id get one from a ``prediction.avl.assign.VehicleTrack`` per vehicle, also kept between batches
(each ping labelled with the best hypothesis when it arrives); a vehicle without a track replays its stored pings
of the last ``assign_lookback_s`` first.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.avl.network import FeedNetwork
from app.models import Ping
from prediction.avl.assign import AssignSettings, TripAssigner, VehicleTrack
from prediction.avl.events import EVENT_FIELDS, EventContext, EventSettings, VehicleFollower
from prediction.gtfs.servicedays import service_day_start
from prediction.network import Network

__all__ = ["TripTracker", "event_rows"]

ObjectArray = npt.NDArray[np.object_]


class TripTracker:
    """Per-vehicle followers for one process (several web workers each keep their own)."""

    def __init__(self, lookback_s: float = 4 * 3600.0, settings: EventSettings | None = None,
                 assign_settings: AssignSettings | None = None, assign_lookback_s: float = 2 * 3600.0) -> None:
        self.lookback_s = lookback_s
        self.assign_lookback_s = assign_lookback_s
        self.settings = settings or EventSettings()
        self.assign_settings = assign_settings or AssignSettings()
        self._followers: dict[str, VehicleFollower] = {}
        self._tracks: dict[str, VehicleTrack] = {}
        self._context: EventContext | None = None
        self._assigner: TripAssigner | None = None
        self._feed_version: int | None = None
        self._clock = -np.inf  # the newest ping taken in, of any vehicle
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._followers.clear()
            self._tracks.clear()
            self._clock = -np.inf

    def _ctx(self, network: FeedNetwork) -> EventContext:
        if self._context is None or self._feed_version != network.feed_version_id:
            self._context = EventContext(network.net, self.settings)
            self._assigner = None
            self._feed_version = network.feed_version_id
            self._followers.clear()
            self._tracks.clear()
        return self._context

    def assign(self, network: FeedNetwork, pings: pd.DataFrame, session: Session | None = None) -> pd.DataFrame:
        """``trip_id`` and ``start_date`` (None where no trip fits) for ``pings`` (vehicle_id, t, latitude,
        longitude), aligned with their index: each vehicle's track moves on by the pings later than its last.

        With a ``session``, a vehicle without a track first replays its stored pings of the last ``assign_lookback_s``
        (after a restart it then knows the run it is on instead of guessing from one ping)."""
        with self._lock:
            self._ctx(network)
            if self._assigner is None:
                self._assigner = TripAssigner(network.net, self.assign_settings)
            if session is not None:
                self._replay_tracks(session, pings, self._assigner)
            slots = self._step_tracks(pings, self._assigner)
            labels = [self._assigner.label(int(s)) for s in slots.tolist()]
        return pd.DataFrame({"trip_id": [lab[0] for lab in labels], "start_date": [lab[1] for lab in labels]},
                            index=pings.index)

    def _step_tracks(self, pings: pd.DataFrame, assigner: TripAssigner) -> npt.NDArray[np.int64]:
        vehicles = pings["vehicle_id"].astype(str).to_numpy()
        t = pings["t"].to_numpy(dtype=float)
        order = np.lexsort((t, vehicles))
        near = assigner.near(t[order], pings["latitude"].to_numpy(dtype=float)[order],
                             pings["longitude"].to_numpy(dtype=float)[order])
        slots = np.empty(len(order), dtype=np.int64)
        for row, i in enumerate(order.tolist()):
            track = self._tracks.get(vehicles[i])
            if track is None:
                track = self._tracks[vehicles[i]] = VehicleTrack(assigner)
            late = track.last_t is not None and t[i] < track.last_t
            slots[i] = track.best if late else track.step(float(t[i]), near, row)
        return slots

    def _replay_tracks(self, session: Session, pings: pd.DataFrame, assigner: TripAssigner) -> None:
        cold = [str(v) for v in pings["vehicle_id"].unique() if str(v) not in self._tracks]
        if not cold:
            return
        start = float(pings["t"].min()) - self.assign_lookback_s
        rows = session.execute(
            select(Ping.vehicle_id, Ping.recorded_at, Ping.lat_e6, Ping.lon_e6)
            .where(Ping.vehicle_id.in_(bindparam("cold", expanding=True)),
                   Ping.recorded_at >= dt.datetime.fromtimestamp(start, dt.UTC),
                   Ping.recorded_at < dt.datetime.fromtimestamp(float(pings["t"].min()), dt.UTC))
            .order_by(Ping.vehicle_id, Ping.recorded_at), {"cold": cold}).all()
        if rows:
            self._step_tracks(pd.DataFrame({
                "vehicle_id": [r[0] for r in rows],
                "t": [(a if a.tzinfo else a.replace(tzinfo=dt.UTC)).timestamp() for a in (r[1] for r in rows)],
                "latitude": [r[2] / 1e6 for r in rows], "longitude": [r[3] / 1e6 for r in rows]}), assigner)

    def add(self, session: Session, network: FeedNetwork, pings: pd.DataFrame) -> list[dict[str, Any]]:
        """Feed the accepted ``pings`` to their vehicles' followers, then close the runs of vehicles now silent for
        longer than ``silence_s``; return the stop-event rows now known.

        ``prepare`` must have been called with these pings before they were stored."""
        if pings.empty:
            return []
        with self._lock:
            ctx = self._ctx(network)
            ctx.clock = np.sort(pings["t"].to_numpy(dtype=float))  # the feed's clock, as far as this batch goes
            found, owners = [], []
            for vehicle, (t, lat, lon, trips, dates) in _by_vehicle(pings):
                follower = self._followers.get(vehicle)
                if follower is None:
                    follower = self._followers[vehicle] = VehicleFollower(ctx, vehicle)
                events = follower.feed(t, lat, lon, trips, dates)
                found.extend(events)
                owners.extend([vehicle] * len(events))
            self._clock = max(self._clock, float(ctx.clock[-1]))
            for vehicle, follower in self._followers.items():
                events = follower.expire(self._clock)
                found.extend(events)
                owners.extend([vehicle] * len(events))
        if not found:
            return []
        frame = pd.DataFrame(found, columns=list(EVENT_FIELDS))
        return event_rows(network, frame, vehicles=owners)

    def prepare(self, session: Session, pings: pd.DataFrame, network: FeedNetwork | None = None) -> None:
        """Replay the recent stored pings of vehicles not seen yet; call before the batch itself is stored."""
        with self._lock:
            if network is not None:
                self._ctx(network)
            if self._context is None:
                return
            self._backfill(session, pings, self._context)

    def _backfill(self, session: Session, pings: pd.DataFrame, ctx: EventContext) -> None:
        cold = [str(v) for v in pings["vehicle_id"].unique() if str(v) not in self._followers]
        if not cold:
            return
        for vehicle in cold:
            self._followers[vehicle] = VehicleFollower(ctx, vehicle)
        start = float(pings["t"].min()) - self.lookback_s
        rows = session.execute(
            select(Ping.vehicle_id, Ping.recorded_at, Ping.lat_e6, Ping.lon_e6, Ping.trip_id, Ping.service_date)
            .where(Ping.vehicle_id.in_(bindparam("cold", expanding=True)),
                   Ping.recorded_at >= dt.datetime.fromtimestamp(start, dt.UTC))
            .order_by(Ping.vehicle_id, Ping.recorded_at), {"cold": cold}).all()
        if not rows:
            return
        stored = pd.DataFrame({
            "vehicle_id": [r[0] for r in rows],
            "t": [(a if a.tzinfo else a.replace(tzinfo=dt.UTC)).timestamp() for a in (r[1] for r in rows)],
            "latitude": [r[2] / 1e6 for r in rows], "longitude": [r[3] / 1e6 for r in rows],
            "trip_id": [r[4] for r in rows],
            "start_date": [None if r[5] is None else r[5].strftime("%Y%m%d") for r in rows]})
        for vehicle, (t, lat, lon, trips, dates) in _by_vehicle(stored):
            self._followers[vehicle].feed(t, lat, lon, trips, dates)  # their events were stored with them


def _by_vehicle(pings: pd.DataFrame) -> list[tuple[str, tuple[Any, ...]]]:
    """Each vehicle's pings in time order as arrays (one sort for the batch, no per-vehicle frames)."""
    vehicles = pings["vehicle_id"].astype(str).to_numpy()
    t = pings["t"].to_numpy(dtype=float)
    order = np.lexsort((t, vehicles))
    vehicles, t = vehicles[order], t[order]
    lat = pings["latitude"].to_numpy(dtype=float)[order]
    lon = pings["longitude"].to_numpy(dtype=float)[order]
    trips = _objects(pings["trip_id"])[order]
    dates = _objects(pings["start_date"])[order]
    bounds = np.flatnonzero(np.concatenate([[True], vehicles[1:] != vehicles[:-1], [True]]))
    return [(str(vehicles[lo]), (t[lo:hi], lat[lo:hi], lon[lo:hi], trips[lo:hi], dates[lo:hi]))
            for lo, hi in itertools.pairwise(bounds)]


def _objects(column: pd.Series) -> ObjectArray:
    values = column.astype(object).to_numpy()
    return np.array([None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
                     for v in values], dtype=object)


def event_rows(network: FeedNetwork, events: pd.DataFrame, pings: pd.DataFrame | None = None, *,
               vehicles: list[str] | None = None) -> list[dict[str, Any]]:
    """``derive_events`` output as ``avl_stop_events`` rows, with scheduled times, deviation and ``known_at``
    (None where ``events`` has no such column).

    The vehicle of each event is ``vehicles`` (aligned with ``events``) or else the one with most of the trip's
    ``pings``."""
    if events.empty:
        return []
    events = events.reset_index(drop=True)
    if vehicles is not None:
        vehicle = np.asarray(vehicles, dtype=object)
    elif pings is not None:
        vehicle_of = _vehicles(pings)
        vehicle = np.array([vehicle_of.get((str(t), str(d)), "") for t, d in
                            zip(events["trip_id"], events["start_date"], strict=True)], dtype=object)
    else:
        vehicle = np.full(len(events), "", dtype=object)
    net = network.net
    visit = _visits(net, events["trip_id"].to_numpy(dtype=object), events["stop_sequence"].to_numpy(dtype=np.int64))
    merged = events.assign(_vehicle=vehicle)
    tz = net.tz
    origins = {d: service_day_start(dt.date(int(d[:4]), int(d[4:6]), int(d[6:])), tz).timestamp()
               for d in merged["start_date"].unique()}
    origin = merged["start_date"].map(origins).to_numpy(dtype=float)
    arrival = merged["arrival"].to_numpy(dtype=float)
    departure = merged["departure"].to_numpy(dtype=float)
    sched_arr = origin + net.visit_arr[visit].astype(float)
    sched_dep = origin + net.visit_dep[visit].astype(float)
    dates = {d: dt.date(int(d[:4]), int(d[4:6]), int(d[6:])) for d in origins}
    deviation = np.round(arrival - sched_arr).astype(np.int64).tolist()
    known: list[dt.datetime] | list[None] = (_utc(merged["known_at"].to_numpy(dtype=float))
                                             if "known_at" in merged else [None] * len(merged))
    columns = zip(merged["trip_id"], merged["start_date"], merged["stop_sequence"].astype(int).tolist(),
                  merged["stop_id"].astype(str), merged["_vehicle"], _utc(arrival), _utc(departure),
                  _utc(sched_arr), _utc(sched_dep), deviation, merged["passed_between_pings"].astype(bool).tolist(),
                  known, strict=True)
    fv = network.feed_version_id
    return [{"feed_version_id": fv, "trip_id": trip, "service_date": dates[day], "stop_sequence": seq,
             "stop_id": stop, "vehicle_id": veh, "arrival_at": arr, "departure_at": dep,
             "scheduled_arrival_at": s_arr, "scheduled_departure_at": s_dep, "deviation_s": dev,
             "passed_between_pings": passed, "known_at": known_at}
            for trip, day, seq, stop, veh, arr, dep, s_arr, s_dep, dev, passed, known_at in columns]


def _visits(net: Network, trip_ids: ObjectArray, seq: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Index into the network's visits of each (trip, stop_sequence): trips' visits are in stop_sequence order."""
    trip = pd.Index(net.trip_ids).get_indexer(trip_ids)  # type: ignore[arg-type]  # pandas-stubs: any array-like
    if (trip < 0).any():
        raise LookupError(f"trip {trip_ids[np.argmin(trip)]} is not in the feed")
    out = np.empty(len(trip), dtype=np.int64)
    for i in np.unique(trip):
        rows = np.flatnonzero(trip == i)
        lo, hi = net.visit_ptr[i], net.visit_ptr[i + 1]
        out[rows] = lo + np.searchsorted(net.visit_seq[lo:hi], seq[rows])
    return out


def _vehicles(pings: pd.DataFrame) -> dict[tuple[str, str], str]:
    known = pings.dropna(subset=["trip_id", "start_date"])
    counts = known.groupby(["trip_id", "start_date", "vehicle_id"]).size().reset_index(name="n")
    best = counts.sort_values("n", ascending=False).drop_duplicates(["trip_id", "start_date"])
    return {(str(t), str(d)): str(v) for t, d, v in zip(best["trip_id"], best["start_date"], best["vehicle_id"],
                                                         strict=True)}


def _utc(epoch: npt.NDArray[np.float64]) -> list[dt.datetime]:
    millis = np.round(epoch * 1000).astype(np.int64)
    return list(pd.to_datetime(millis, unit="ms", utc=True).to_pydatetime())
