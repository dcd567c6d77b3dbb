"""What the worker remembers of the observed stop events, turned into a small ``KnownEvents`` every cycle.

A replay builds ``LiveState`` over a whole day's events; a live worker cannot (the table only grows), so it keeps
what ``LiveState`` needs: every event of the runs still live (a trip's events feed its pace features), the newest
traversal of every segment (recent run times, network and route pace) and the last departure per route and stop
(headways). Segment rows are given runs of their own, stamped as known long ago, so they feed segment features
without ever making a run look active.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.eta.features import KnownEvents
from prediction.gtfs.servicedays import service_day_start
from prediction.network import Network

__all__ = ["EVENT_COLUMNS", "KNOWN_AT", "LiveEvents", "RunTable", "make_known_events"]

EVENT_COLUMNS = ("trip_id", "start_date", "stop_sequence", "arrival", "departure", "vehicle_id")
KNOWN_AT = "known_at"  # optional column: when the live service emitted the event (``avl_stop_events.known_at``)
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def make_known_events(columns: dict[str, npt.NDArray[Any]]) -> KnownEvents:
    """``KnownEvents`` from named arrays, naming any field this version of ``prediction.eta.features`` wants that
    the worker does not provide (the dataclass grows as features are added)."""
    wanted = list(KnownEvents.__dataclass_fields__)
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise TypeError(f"KnownEvents needs {', '.join(missing)}, which the worker does not build")
    return KnownEvents(**{name: columns[name] for name in wanted})


@dataclass
class _Run:
    """One run's events so far (visit order); a trip's events feed its pace features, so all are kept."""

    trip: int
    start_date: str
    origin: float
    vehicle_id: str | None
    visits: list[int] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    departures: list[float] = field(default_factory=list)
    known: list[float] = field(default_factory=list)
    segment_runs: list[float] = field(default_factory=list)
    headways: list[float] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    _block: npt.NDArray[np.float64] | None = None  # the lists above as one array, until the next event

    def block(self) -> npt.NDArray[np.float64]:
        """Visits, arrivals, departures, known, segment runs, headways and slots as rows of one array (cached:
        most runs have no new event in a cycle)."""
        if self._block is None:
            self._block = np.array([self.visits, self.arrivals, self.departures, self.known, self.segment_runs,
                                    self.headways, self.slots], dtype=float).reshape(7, -1)
        return self._block

    @property
    def visit(self) -> int:
        return self.visits[-1] if self.visits else -1

    @property
    def known_at(self) -> float:
        return self.known[-1] if self.known else -np.inf


@dataclass(frozen=True)
class RunTable:
    """The runs behind a cycle's ``KnownEvents`` (index = run number): what predictions are reported with."""

    trip: IntArray
    start_date: npt.NDArray[np.object_]
    origin: FloatArray
    vehicle_id: npt.NDArray[np.object_]
    known_at: FloatArray


class LiveEvents:
    """Observed stop events of the runs this worker predicts (``owns_trip``), and recent segment run times of all."""

    def __init__(self, net: Network, *, stale_s: float = 3600.0, recent_s: float = 1800.0,
                 owns_trip: Callable[[IntArray], npt.NDArray[np.bool_]] | None = None) -> None:
        self.net, self.stale_s, self.recent_s = net, stale_s, recent_s
        self.owns_trip = owns_trip
        self._trip_index = pd.Index(net.trip_ids)
        self._visit_trip = net.visit_trip
        self._runs: dict[tuple[int, str], _Run] = {}
        self._origins: dict[str, float] = {}
        self.seg_run = np.full(net.segment_count, np.nan)
        self.seg_at = np.full(net.segment_count, -np.inf)
        self.seg_visit = np.full(net.segment_count, -1, dtype=np.int64)
        self._last_dep: dict[int, float] = {}  # route × stop → latest departure seen
        self._arrived: list[tuple[float, int, float]] = []  # (origin, visit, arrival) taken since the last drain

    def __len__(self) -> int:
        return len(self._runs)

    def _origin(self, start_date: str) -> float:
        if start_date not in self._origins:
            day = dt.date(int(start_date[:4]), int(start_date[4:6]), int(start_date[6:8]))
            self._origins[start_date] = service_day_start(day, self.net.tz).timestamp()
        return self._origins[start_date]

    def _visits(self, trips: IntArray, sequences: IntArray) -> IntArray:
        """Visit index of (trip, stop_sequence) pairs; -1 where the trip has no such stop_sequence."""
        ptr, seq = self.net.visit_ptr, self.net.visit_seq
        out = np.full(len(trips), -1, dtype=np.int64)
        for i, (trip, s) in enumerate(zip(trips.tolist(), sequences.tolist(), strict=True)):
            lo, hi = int(ptr[trip]), int(ptr[trip + 1])
            j = lo + int(np.searchsorted(seq[lo:hi], s))
            if j < hi and seq[j] == s:
                out[i] = j
        return out

    def add(self, events: pd.DataFrame, known_at: float) -> int:
        """Take in stop events (``EVENT_COLUMNS``; times as epoch seconds) learnt at ``known_at`` — or earlier, at
        their own ``known_at`` where the frame has that column (the moment the AVL service emitted them, which is
        what a replay uses); returns how many moved a run forward or refined its current stop."""
        if events.empty:
            return 0
        trips = self._trip_index.get_indexer(events["trip_id"].astype(str))  # type: ignore[arg-type]  # any array-like
        frame = events.assign(_trip=trips)
        frame = frame[frame["_trip"] >= 0]
        visits = self._visits(frame["_trip"].to_numpy(np.int64), frame["stop_sequence"].to_numpy(np.int64))
        stored = frame[KNOWN_AT].to_numpy(dtype=float) if KNOWN_AT in frame else np.full(len(frame), np.nan)
        frame = frame.assign(_visit=visits, _known=np.fmin(stored, known_at))  # fmin: NaN (not stored) loses
        frame = frame[frame["_visit"] >= 0].sort_values(["_trip", "start_date", "_visit"], kind="stable")
        taken = 0
        columns = ("_trip", "start_date", "_visit", "arrival", "departure", "vehicle_id", "_known")
        for trip, day, visit, arrival, departure, vehicle, known in zip(*(frame[c].tolist() for c in columns),
                                                                          strict=True):
            taken += self._take(int(trip), str(day), int(visit), float(arrival), float(departure),
                                None if vehicle is None or vehicle == "" else str(vehicle), float(known))
        return taken

    def _take(self, trip: int, day: str, visit: int, arrival: float, departure: float, vehicle: str | None,
              known_at: float) -> int:
        key = (trip, day)
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = _Run(trip, day, self._origin(day), vehicle)
        if visit < run.visit:
            return 0  # a refinement of a stop the bus has left: its furthest stop is what predicts
        if visit == run.visit:  # the current stop refined (a later ping moved its departure)
            for column in (run.visits, run.arrivals, run.departures, run.known, run.segment_runs, run.headways,
                           run.slots):
                column.pop()
            run._block = None
        segment = int(self.net.visit_segment[visit])
        segment_run = np.nan
        if run.visits and visit == run.visit + 1 and segment >= 0:
            segment_run = arrival - run.departures[-1]
            if arrival >= self.seg_at[segment]:
                self.seg_run[segment], self.seg_at[segment], self.seg_visit[segment] = segment_run, arrival, visit
        route_stop = int(self.net.trip_route[trip]) * len(self.net.stop_ids) + int(self.net.visit_stop[visit])
        previous = self._last_dep.get(route_stop)
        headway = np.nan
        if previous is not None and departure > previous:
            headway = departure - previous
        if previous is None or departure > previous:
            self._last_dep[route_stop] = departure
        local = dt.datetime.fromtimestamp(arrival, self.net.tz)
        run._block = None
        if visit != run.visit:
            self._arrived.append((run.origin, visit, arrival))
        run.visits.append(visit)
        run.arrivals.append(arrival)
        run.departures.append(departure)
        run.known.append(known_at)
        run.segment_runs.append(segment_run)
        run.headways.append(headway)
        run.slots.append(local.hour + (24 if local.weekday() >= 5 else 0))
        if vehicle is not None:
            run.vehicle_id = vehicle
        return 1

    def drain_arrivals(self) -> tuple[FloatArray, IntArray, FloatArray]:
        """(service-day origin, visit, arrival) of every stop first reached in the events taken since the last
        call: what the online selection scores its predictions against."""
        taken, self._arrived = self._arrived, []
        if not taken:
            return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0)
        origin, visit, arrival = zip(*taken, strict=True)
        return np.array(origin, dtype=float), np.array(visit, dtype=np.int64), np.array(arrival, dtype=float)

    def forget(self, now: float) -> None:
        """Drop runs not heard of for longer than the stale limit (they cannot be predicted any more)."""
        old = [key for key, run in self._runs.items() if run.known_at < now - self.stale_s]
        for key in old:
            del self._runs[key]

    def known_events(self, now: float) -> tuple[KnownEvents, RunTable]:
        """Every event of the live runs this worker owns, and one row per segment traversed in the last
        ``recent_s`` (as a run of its own, known long ago: it feeds segment features, never an active run)."""
        self.forget(now)
        runs = list(self._runs.values())
        if self.owns_trip is not None and runs:
            mine = self.owns_trip(np.array([r.trip for r in runs], dtype=np.int64))
            runs = [r for r, keep in zip(runs, mine.tolist(), strict=True) if keep]
        counts = np.array([len(r.visits) for r in runs], dtype=np.int64)
        n = len(runs)
        segments = np.flatnonzero(self.seg_at >= now - self.recent_s)
        m = len(segments)
        seg_visit = self.seg_visit[segments]
        seg_trip = self._visit_trip[seg_visit] if m else np.zeros(0, dtype=np.int64)
        long_ago = now - self.stale_s - 1.0

        flat = np.concatenate([r.block() for r in runs], axis=1) if runs else np.zeros((7, 0))
        visits, arrivals, departures, known_at, segment_runs, headways, slots = flat
        columns: dict[str, npt.NDArray[Any]] = {
            "run": np.concatenate([np.repeat(np.arange(n, dtype=np.int64), counts), n + np.arange(m)]),
            "trip": np.concatenate([np.repeat(np.array([r.trip for r in runs], dtype=np.int64), counts), seg_trip]),
            "visit": np.concatenate([visits.astype(np.int64), seg_visit]),
            "arrival": np.concatenate([arrivals, self.seg_at[segments]]),
            "departure": np.concatenate([departures, self.seg_at[segments]]),
            "known_at": np.concatenate([known_at, np.full(m, long_ago)]),
            "origin": np.concatenate([np.repeat(np.array([r.origin for r in runs]), counts), np.zeros(m)]),
            "segment_run": np.concatenate([segment_runs, self.seg_run[segments]]),
            "headway": np.concatenate([headways, np.full(m, np.nan)]),
            "slot": np.concatenate([slots.astype(np.int64), self._slots(self.seg_at[segments])]),
        }
        order = np.argsort(columns["known_at"], kind="stable")
        known = make_known_events({name: values[order] for name, values in columns.items()})
        table = RunTable(
            trip=np.array([r.trip for r in runs], dtype=np.int64),
            start_date=np.array([r.start_date for r in runs], dtype=object),
            origin=np.array([r.origin for r in runs], dtype=float),
            vehicle_id=np.array([r.vehicle_id for r in runs], dtype=object),
            known_at=np.array([r.known_at for r in runs], dtype=float),
        )
        return known, table

    def _slots(self, epochs: FloatArray) -> IntArray:
        """The history slot (local hour, +24 on weekends) of each epoch second."""
        if not len(epochs):
            return np.zeros(0, dtype=np.int64)
        lo, hi = (dt.datetime.fromtimestamp(float(t), self.net.tz) for t in (epochs.min(), epochs.max()))
        offset = lo.utcoffset()
        if offset is None or offset != hi.utcoffset():  # a clock change in between: the slow, exact way
            local = [dt.datetime.fromtimestamp(t, self.net.tz) for t in epochs.tolist()]
            return np.array([t.hour + (24 if t.weekday() >= 5 else 0) for t in local], dtype=np.int64)
        seconds = np.floor(epochs).astype(np.int64) + int(offset.total_seconds())
        hour = (seconds // 3600) % 24
        weekday = (seconds // 86400 + 3) % 7  # 1970-01-01 was a Thursday
        return hour + np.where(weekday >= 5, 24, 0)

    def known_runs(self) -> set[tuple[int, str]]:
        """(trip index, start date) of every run with an observed event: these get no timetable rows."""
        return set(self._runs)
