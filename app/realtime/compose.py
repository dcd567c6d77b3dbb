"""Board rows from a cycle's arrays: live predictions plus timetable rows of runs not yet seen, at most
``limit`` per stop, rendered straight to JSON.

At Almaty scale a cycle has ~50,000 predicted stop calls; building ``BoardRow`` objects and ``json.dumps``
for each would cost more than the prediction itself, so rows are chosen with numpy (soonest ``limit`` per
stop) and only the chosen ones are formatted, from per-trip JSON prefixes and a cache of formatted times.
The keys and values are those of ``BoardRow.item`` (a test compares them).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.realtime.catalog import StaticCatalog
from prediction.servicedays import service_day_start
from prediction.sim_network import SimNetwork

__all__ = ["BoardRows", "RowFormatter", "TimetableWindow", "compose_rows"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class RowFormatter:
    """Per-feed caches: each trip's JSON prefix (route, colours, headsign, trip id), stop ids the catalog knows,
    and local ISO times by epoch second."""

    def __init__(self, catalog: StaticCatalog, net: SimNetwork) -> None:
        self.catalog, self.tz = catalog, catalog.timezone
        self.trip_prefix: list[str | None] = []
        self.trip_route: list[str | None] = []
        for trip_id in net.trip_ids.tolist():
            trip = catalog.trips.get(trip_id)
            route = catalog.routes.get(trip.route_id) if trip is not None else None
            if trip is None or route is None:
                self.trip_prefix.append(None)
                self.trip_route.append(None)
                continue
            self.trip_route.append(route.route_id)
            self.trip_prefix.append(
                f'{{"route_id":{_dump(route.route_id)},"route_short_name":{_dump(route.short_name)},'
                f'"route_color":{_dump(route.color)},"route_text_color":{_dump(route.text_color)},'
                f'"headsign":{_dump(trip.headsign)},"trip_id":{_dump(trip_id)},')
        self.trip_ok = np.array([prefix is not None for prefix in self.trip_prefix], dtype=bool)
        self.stop_known = np.array([s in catalog.stops for s in net.stop_ids.tolist()], dtype=bool)
        self._times: dict[int, str] = {}
        self._dates: dict[str, str] = {}
        self.rows: dict[tuple[Any, ...], str] = {}

    def time(self, epoch: float) -> str:
        second = math.floor(epoch)
        text = self._times.get(second)
        if text is None:
            if len(self._times) > 200_000:
                self._times.clear()
            text = self._times[second] = dt.datetime.fromtimestamp(second, self.tz).isoformat(timespec="seconds")
        return text

    def date(self, start_date: str) -> str:
        text = self._dates.get(start_date)
        if text is None:
            text = self._dates[start_date] = f"{start_date[:4]}-{start_date[4:6]}-{start_date[6:8]}"
        return text

    def render(self, key: tuple[Any, ...]) -> str:
        """The JSON of one row, cached by everything it shows to the second: (trip index, stop_sequence, service
        date, scheduled, predicted, (early, late) or None, vehicle, realtime, last update, minutes away)."""
        trip, seq, day, scheduled, predicted, bounds, vehicle, realtime, last_update, minutes = key
        prefix = self.trip_prefix[trip]
        assert prefix is not None
        interval = "null" if bounds is None else \
            f'{{"early":"{self.time(bounds[0])}","late":"{self.time(bounds[1])}"}}'
        text = (f'{prefix}"stop_sequence":{seq},"service_date":"{self.date(day)}",'
                f'"scheduled_time":{"null" if scheduled is None else chr(34) + self.time(scheduled) + chr(34)},'
                f'"predicted_time":"{self.time(predicted)}","interval":{interval},'
                f'"vehicle_id":{"null" if vehicle is None else _dump(vehicle)},"minutes_away":{minutes},'
                f'"realtime":{"true" if realtime else "false"},'
                f'"last_update":{"null" if last_update is None else chr(34) + self.time(last_update) + chr(34)}}}')
        if len(self.rows) > 400_000:
            self.rows.clear()
        self.rows[key] = text
        return text


class TimetableWindow:
    """Scheduled stop calls of one service day in time order (cached per day), for timetable rows."""

    def __init__(self, net: SimNetwork) -> None:
        self.net = net
        self.visit_trip = net.visit_trip
        self.last_visit = np.zeros(len(net.visit_seq), dtype=bool)
        self.last_visit[net.visit_ptr[1:] - 1] = True  # a trip's last stop: nobody boards there
        self._days: dict[dt.date, tuple[float, IntArray, FloatArray]] = {}

    def _day(self, day: dt.date) -> tuple[float, IntArray, FloatArray]:
        if day not in self._days:
            if len(self._days) > 4:
                self._days.clear()
            net = self.net
            running = np.zeros(len(net.trip_ids), dtype=bool)
            running[net.trips_on(day)] = True
            visits = np.flatnonzero(running[self.visit_trip] & ~self.last_visit)
            order = visits[np.argsort(net.visit_arr[visits], kind="stable")]
            self._days[day] = (service_day_start(day, net.tz).timestamp(), order,
                               net.visit_arr[order].astype(float))
        return self._days[day]

    def calls(self, now: float, window_s: float) -> list[tuple[dt.date, float, IntArray]]:
        """(service day, its origin, visits) scheduled to arrive within [now, now + window_s]."""
        local = dt.datetime.fromtimestamp(now, self.net.tz).date()
        out = []
        for day in (local - dt.timedelta(days=1), local):
            origin, order, times = self._day(day)
            lo = int(np.searchsorted(times, now - origin, side="left"))
            hi = int(np.searchsorted(times, now + window_s - origin, side="right"))
            if hi > lo:
                out.append((day, origin, order[lo:hi]))
        return out


@dataclass(frozen=True)
class BoardRows:
    """Per stop id: ``(sort key, realtime, row JSON)`` soonest first, at most ``limit``."""

    rows: dict[str, list[tuple[str, bool, str]]]
    live_rows: int
    scheduled_rows: int


def compose_rows(net: SimNetwork, formatter: RowFormatter, timetable: TimetableWindow, predictions: object, *,
                 now: float, window_min: int, limit: int, owns_trip: Callable[[IntArray], npt.NDArray[np.bool_]],
                 with_timetable: bool = True) -> BoardRows:
    """Live rows (predicted within [now − 1 min, now + window]) and timetable rows of owned runs not seen yet."""
    from app.worker.predict import CyclePredictions

    assert isinstance(predictions, CyclePredictions)
    p = predictions
    keep = (p.predicted >= now - 60) & (p.predicted <= now + window_min * 60) & formatter.trip_ok[p.trip] \
        & formatter.stop_known[net.visit_stop[p.visit]] & ~timetable.last_visit[p.visit]
    live = np.flatnonzero(keep)
    s_trip, s_visit, s_time, s_date = _timetable_calls(net, formatter, timetable, p.run_keys, now, window_min,
                                                       owns_trip) if with_timetable else _no_calls()
    stop = np.concatenate([net.visit_stop[p.visit[live]], net.visit_stop[s_visit]])
    time = np.concatenate([p.predicted[live], s_time])
    order = np.lexsort((time, stop))
    first = np.r_[True, stop[order][1:] != stop[order][:-1]] if len(order) else np.zeros(0, dtype=bool)
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0)) if len(order) else order
    chosen = order[np.arange(len(order)) - group_start < limit]
    out: dict[str, list[tuple[str, bool, str]]] = {}
    n_live = len(live)
    picked = chosen[chosen < n_live]
    j = live[picked]  # live rows: indexes into the predictions
    seconds = np.floor(p.predicted[j]).astype(np.int64)
    bounds: list[tuple[int, int] | None] = [None] * len(j) if p.lower is None or p.upper is None else \
        list(zip(np.floor(p.lower[j]).astype(np.int64).tolist(), np.floor(p.upper[j]).astype(np.int64).tolist(),
                 strict=True))
    _add_rows(out, formatter, now, stop_ids=net.stop_ids[net.visit_stop[p.visit[j]]].tolist(),
              trips=p.trip[j].tolist(), seqs=net.visit_seq[p.visit[j]].tolist(), dates=p.start_date[j].tolist(),
              scheduled=np.floor(p.scheduled[j]).astype(np.int64).tolist(), predicted=seconds.tolist(),
              minutes=np.maximum(0, np.floor((p.predicted[j] - now) / 60)).astype(np.int64).tolist(),
              bounds=bounds, vehicles=p.vehicle_id[j].tolist(),
              observed=np.floor(p.observed_at[j]).astype(np.int64).tolist(), realtime=True)
    k = chosen[chosen >= n_live] - n_live  # timetable rows
    times = np.floor(s_time[k]).astype(np.int64)
    _add_rows(out, formatter, now, stop_ids=net.stop_ids[net.visit_stop[s_visit[k]]].tolist(),
              trips=s_trip[k].tolist(), seqs=net.visit_seq[s_visit[k]].tolist(), dates=s_date[k].tolist(),
              scheduled=times.tolist(), predicted=times.tolist(),
              minutes=np.maximum(0, np.floor((s_time[k] - now) / 60)).astype(np.int64).tolist(),
              bounds=[None] * len(k), vehicles=[None] * len(k), observed=[None] * len(k), realtime=False)
    return BoardRows(out, n_live, len(s_visit))


def _add_rows(out: dict[str, list[tuple[str, bool, str]]], formatter: RowFormatter, now: float, *,
              stop_ids: list[str], trips: list[int], seqs: list[int], dates: list[str], scheduled: list[int],
              predicted: list[int], minutes: list[int], bounds: list[tuple[int, int] | None],
              vehicles: list[str | None], observed: list[int | None], realtime: bool) -> None:
    """Append rendered rows (plain Python values: numpy scalars cost more than the formatting) per stop."""
    cache = formatter.rows
    for stop_id, trip, seq, day, sched, pred, mins, bound, vehicle, seen in zip(
            stop_ids, trips, seqs, dates, scheduled, predicted, minutes, bounds, vehicles, observed, strict=True):
        key = (trip, seq, day, sched, pred, bound, vehicle, realtime, seen, mins)
        text = cache.get(key)
        if text is None:
            text = formatter.render(key)
        out.setdefault(stop_id, []).append((f"{pred:011d}", realtime, text))


def _no_calls() -> tuple[IntArray, IntArray, FloatArray, npt.NDArray[np.object_]]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=object)


def _timetable_calls(net: SimNetwork, formatter: RowFormatter, timetable: TimetableWindow,
                     seen: set[tuple[int, str]], now: float, window_min: int,
                     owns_trip: Callable[[IntArray], npt.NDArray[np.bool_]]
                     ) -> tuple[IntArray, IntArray, FloatArray, npt.NDArray[np.object_]]:
    trips, visits, times, dates = [], [], [], []
    for day, origin, calls in timetable.calls(now, window_min * 60.0):
        trip = timetable.visit_trip[calls]
        stamp = day.strftime("%Y%m%d")
        keep = owns_trip(trip) & formatter.stop_known[net.visit_stop[calls]] & formatter.trip_ok[trip]
        if seen:
            seen_trips = np.array([t for t, d in seen if d == stamp], dtype=np.int64)
            keep &= ~np.isin(trip, seen_trips)
        trips.append(trip[keep])
        visits.append(calls[keep])
        times.append(origin + net.visit_arr[calls[keep]].astype(float))
        dates.append(np.full(int(keep.sum()), stamp, dtype=object))
    if not trips:
        return _no_calls()
    return (np.concatenate(trips).astype(np.int64), np.concatenate(visits).astype(np.int64),
            np.concatenate(times), np.concatenate(dates))
