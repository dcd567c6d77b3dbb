"""Board rows from a cycle's arrays: live predictions plus timetable rows of runs not yet seen, at most
``limit`` per stop, rendered straight to JSON.

At Almaty scale a cycle has ~100,000 predicted stop calls and ~140,000 timetable calls in the window, of which
~35,000 reach a board. Everything per row is done on arrays: one sort by (stop, time, trip) groups the rows by
stop and picks the soonest ``limit`` of each; local ISO times come from ``numpy.datetime_as_string`` plus the
zone's offset (looked up once per distinct minute); the JSON of a row is one f-string over plain lists, from
per-trip prefixes (route, colours, headsign, trip id, names in every feed language, wheelchair access). Timetable
rows change only in ``minutes_away`` and ``status``, so everything around them is cached by (service day, visit).
Live rows add arrival and departure apart, deviation, stops and metres away, status and occupancy, each a column
rendered at once. The keys and values are those of ``BoardRow.item`` (a test compares them).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.realtime.catalog import StaticCatalog
from app.realtime.cycle import CyclePredictions
from prediction.gtfs.servicedays import service_day_start
from prediction.network import Network

__all__ = ["BoardRows", "RowFormatter", "TimetableWindow", "compose_rows"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_CACHE_LIMIT = 400_000


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


class RowFormatter:
    """Per-feed caches: each trip's JSON prefix (route, colours, headsign, trip id), stop ids the catalog knows,
    the zone's offset by minute, vehicle ids as JSON and the static part of timetable rows."""

    def __init__(self, catalog: StaticCatalog, net: Network) -> None:
        self.catalog, self.tz = catalog, catalog.timezone
        self.trip_prefix: list[str] = []
        for trip_id in net.trip_ids.tolist():
            trip = catalog.trips.get(trip_id)
            route = catalog.routes.get(trip.route_id) if trip is not None else None
            if trip is None or route is None:
                self.trip_prefix.append("")
                continue
            self.trip_prefix.append(
                f'{{"route_id":{_dump(route.route_id)},"route_short_name":{_dump(route.short_name)},'
                f'"route_color":{_dump(route.color)},"route_text_color":{_dump(route.text_color)},'
                f'"headsign":{_dump(trip.headsign)},"trip_id":{_dump(trip_id)},'
                f'"headsign_translations":{_dump(trip.headsign_translations)},'
                f'"route_long_name":{_dump(route.long_name)},'
                f'"route_long_name_translations":{_dump(route.long_name_translations)},'
                f'"wheelchair_accessible":{_dump(trip.wheelchair_accessible)},')
        self.trip_ok = np.array([prefix != "" for prefix in self.trip_prefix], dtype=bool)
        self.stop_known = np.array([s in catalog.stops for s in net.stop_ids.tolist()], dtype=bool)
        self.visit_seq: list[int] = net.visit_seq.tolist()
        self.visit_dwell = (net.visit_dep - net.visit_arr).astype(np.float64)  # scheduled departure − arrival
        self._offsets: dict[int, int] = {}
        self._names: dict[str | None, str] = {None: "null"}
        self._dates: dict[str, str] = {}
        self.timetable_rows: dict[int, tuple[str, str]] = {}

    def _offset(self, minute: int) -> int:
        found = self._offsets.get(minute)
        if found is None:
            if len(self._offsets) > 100_000:
                self._offsets.clear()
            delta = dt.datetime.fromtimestamp(minute * 60, self.tz).utcoffset()
            found = self._offsets[minute] = int(delta.total_seconds()) if delta is not None else 0
        return found

    def times(self, epoch: FloatArray | IntArray) -> list[str]:
        """Local ISO 8601 times to the second with the zone's offset, as ``datetime.isoformat`` writes them."""
        text, suffix = self.local_times(epoch)
        return [t + suffix for t in text] if suffix else text

    def local_times(self, epoch: FloatArray | IntArray) -> tuple[list[str], str]:
        """``times`` as (texts, suffix to append to each): when no clock change falls in the batch (the usual
        case) the texts lack the offset, which is the suffix — row templates append it for free."""
        seconds = np.floor(epoch).astype(np.int64)
        if not len(seconds):
            return [], ""
        first, last = self._offset(int(seconds.min()) // 60), self._offset(int(seconds.max()) // 60)
        if first == last:  # no clock change in between: one offset for all
            return np.datetime_as_string((seconds + first).astype("datetime64[s]"), unit="s").tolist(), \
                _offset_text(first)
        minutes, where = np.unique(seconds // 60, return_inverse=True)
        offsets = np.array([self._offset(m) for m in minutes.tolist()], dtype=np.int64)[where.reshape(-1)]
        text = np.datetime_as_string((seconds + offsets).astype("datetime64[s]"), unit="s").tolist()
        return [t + _offset_text(o) for t, o in zip(text, offsets.tolist(), strict=True)], ""

    def names(self, values: list[str | None]) -> list[str]:
        """Vehicle ids, occupancy names: each as JSON (``null`` for None), cached."""
        cache = self._names
        for value in set(values) - cache.keys():
            cache[value] = _dump(value)
        return [cache[v] for v in values]

    def dates(self, start_dates: list[str]) -> list[str]:
        cache = self._dates
        for day in set(start_dates) - cache.keys():
            cache[day] = f"{day[:4]}-{day[4:6]}-{day[6:8]}"
        return [cache[d] for d in start_dates]


class TimetableWindow:
    """Scheduled stop calls of one service day in time order (cached per day), for timetable rows."""

    def __init__(self, net: Network) -> None:
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
    """The rows of every stop that has any: stop ``i``'s rows are ``texts[starts[i]:starts[i + 1]]``, soonest
    first, at most ``limit``; ``seconds`` (predicted epoch second) and ``realtime`` run parallel to ``texts``."""

    stop_ids: list[str]
    starts: list[int]
    texts: list[str]
    seconds: list[int]
    realtime: list[bool]
    live_rows: int
    scheduled_rows: int

    def __len__(self) -> int:
        return len(self.stop_ids)

    def arrivals(self, i: int) -> tuple[bool, str]:
        """Stop ``i``'s realtime flag and its rows joined as the inside of a JSON array."""
        lo, hi = self.starts[i], self.starts[i + 1]
        return any(self.realtime[lo:hi]), ",".join(self.texts[lo:hi])

    def lines(self, i: int) -> str:
        """Stop ``i``'s rows as the sharded writer stores them: ``<second, 11 digits>\\t<R|S>\\t<row JSON>``."""
        lo, hi = self.starts[i], self.starts[i + 1]
        return "\n".join(f"{s:011d}\t{'R' if r else 'S'}\t{t}" for s, r, t in
                         zip(self.seconds[lo:hi], self.realtime[lo:hi], self.texts[lo:hi], strict=True))


def compose_rows(net: Network, formatter: RowFormatter, timetable: TimetableWindow, predictions: CyclePredictions, *,
                 now: float, window_min: int, limit: int, owns_trip: Callable[[IntArray], npt.NDArray[np.bool_]],
                 with_timetable: bool = True) -> BoardRows:
    """Live rows (predicted within [now − 1 min, now + window]) and timetable rows of owned runs not seen yet."""
    p = predictions
    keep = (p.predicted >= now - 60) & (p.predicted <= now + window_min * 60) & formatter.trip_ok[p.trip] \
        & formatter.stop_known[net.visit_stop[p.visit]] & ~timetable.last_visit[p.visit]
    live = np.flatnonzero(keep)
    s_trip, s_visit, s_time, s_origin, s_date = _timetable_calls(
        net, formatter, timetable, p, now, window_min, owns_trip) if with_timetable else _no_calls()
    n_live = len(live)
    stop = np.concatenate([net.visit_stop[p.visit[live]], net.visit_stop[s_visit]])
    when = np.concatenate([p.predicted[live], s_time])
    second = np.floor(when).astype(np.int64)
    order = np.lexsort((np.concatenate([p.trip[live], s_trip]), second, stop))
    sorted_stop = stop[order]
    first = np.r_[True, sorted_stop[1:] != sorted_stop[:-1]] if len(order) else np.zeros(0, dtype=bool)
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0)) if len(order) else order
    take = np.arange(len(order)) - group_start < limit
    chosen, chosen_stop, starts = order[take], sorted_stop[take], np.flatnonzero(first[take])
    is_live = chosen < n_live
    minutes = np.maximum(0, np.floor((when[chosen] - now) / 60)).astype(np.int64)
    texts = np.empty(len(chosen), dtype=object)
    texts[is_live] = _live_texts(formatter, p, live[chosen[is_live]], minutes[is_live])
    k = chosen[~is_live] - n_live
    texts[~is_live] = _timetable_texts(formatter, s_trip[k], s_visit[k], s_time[k], s_origin[k], s_date[k],
                                       minutes[~is_live], p.cancelled)
    return BoardRows(stop_ids=net.stop_ids[chosen_stop[starts]].tolist(), starts=[*starts.tolist(), len(chosen)],
                     texts=texts.tolist(), seconds=second[chosen].tolist(), realtime=is_live.tolist(), live_rows=n_live,
                     scheduled_rows=len(s_visit))


def _live_texts(formatter: RowFormatter, p: CyclePredictions, j: IntArray, minutes: IntArray) -> list[str]:
    """The JSON of live rows ``j`` (indexes into the predictions)."""
    prefix, seq = formatter.trip_prefix, formatter.visit_seq
    local = formatter.local_times
    common = (p.trip[j].tolist(), p.visit[j].tolist(), formatter.dates(p.start_date[j].tolist()))
    scheduled, zs = local(p.scheduled[j])
    predicted, zp = local(p.predicted[j])
    vehicles = formatter.names(p.vehicle_id[j].tolist())
    tails = _live_tails(formatter, p, j, (scheduled, zs), (predicted, zp))
    if p.lower is None or p.upper is None:
        return [
            f'{prefix[t]}"stop_sequence":{seq[v]},"service_date":"{d}","scheduled_time":"{s}{zs}",'
            f'"predicted_time":"{t_}{zp}","interval":null,"vehicle_id":{veh},"minutes_away":{m},{tail}'
            for t, v, d, s, t_, veh, m, tail in zip(*common, scheduled, predicted, vehicles, minutes.tolist(), tails,
                                                     strict=True)
        ]
    early, ze = local(p.lower[j])
    late, zl = local(p.upper[j])
    return [
        f'{prefix[t]}"stop_sequence":{seq[v]},"service_date":"{d}","scheduled_time":"{s}{zs}",'
        f'"predicted_time":"{t_}{zp}","interval":{{"early":"{e}{ze}","late":"{lt}{zl}"}},"vehicle_id":{veh},'
        f'"minutes_away":{m},{tail}'
        for t, v, d, s, t_, e, lt, veh, m, tail in zip(*common, scheduled, predicted, early, late, vehicles,
                                                        minutes.tolist(), tails, strict=True)
    ]


def _live_tails(formatter: RowFormatter, p: CyclePredictions, j: IntArray, arrives: tuple[list[str], str],
                predicts: tuple[list[str], str]) -> list[str]:
    """Everything after ``minutes_away`` of live rows ``j`` (``arrives``, ``predicts``: their scheduled and
    predicted arrivals as ``local_times`` renders them): freshness, arrival and departure apart (the predicted
    departure keeps the scheduled dwell), deviation, stops and metres away, status and occupancy."""
    local = formatter.local_times
    (scheduled, zs), (predicted, zp) = arrives, predicts
    dwell = formatter.visit_dwell[p.visit[j]]
    leaves, zl = local(p.scheduled[j] + dwell)
    goes, zg = local(p.predicted[j] + dwell)
    updated, zu = local(p.observed_at[j])
    deviation = (np.floor(p.predicted[j]) - np.floor(p.scheduled[j])).astype(np.int64).tolist()
    # a bus overdue at its next stop (stalled, or its pings stopped): the board can say how long
    stalled = np.zeros(len(j), dtype=np.int64) if p.stalled_s is None else np.floor(p.stalled_s[j]).astype(np.int64)
    away = _numbers(None if p.stops_away is None else p.stops_away[j], len(j))
    metres = _numbers(None if p.distance_m is None else np.round(p.distance_m[j]), len(j))
    occupancy = ["null"] * len(j) if p.occupancy is None else formatter.names(p.occupancy[j].tolist())
    status = _live_status(p, j)
    return [f'"realtime":true,"stalled_s":{n},"last_update":"{u}{zu}","arrival_time":{{"scheduled":"{s}{zs}",'
            f'"predicted":"{t_}{zp}"}},"departure_time":{{"scheduled":"{lv}{zl}","predicted":"{g}{zg}"}},'
            f'"schedule_deviation_s":{dev},"stops_away":{a},"distance_m":{dm},"status":"{st}","occupancy":{o}}}'
            for n, u, s, t_, lv, g, dev, a, dm, st, o in zip(
                stalled.tolist(), updated, scheduled, predicted, leaves, goes, deviation, away, metres, status,
                occupancy, strict=True)]


def _numbers(values: npt.NDArray[np.int64] | FloatArray | None, n: int) -> list[str]:
    """Whole numbers as JSON text; ``null`` for all when the cycle has none, or where a value is not finite."""
    if values is None:
        return ["null"] * n
    finite = np.isfinite(values)
    text: list[str] = np.where(finite, np.where(finite, values, 0).astype(np.int64).astype(str), "null").tolist()
    return text


def _live_status(p: CyclePredictions, j: IntArray) -> list[str]:
    status = np.full(len(j), "live", dtype=object)
    if p.skipped is not None:
        status[p.skipped[j]] = "skipped"
    if p.cancelled:
        status[_cancelled(p.cancelled, p.trip[j], p.start_date[j])] = "cancelled"
    result: list[str] = status.tolist()
    return result


def _cancelled(runs: frozenset[tuple[int, str]], trips: IntArray, dates: npt.NDArray[np.object_]
               ) -> npt.NDArray[np.bool_]:
    """Which (trip, start date) rows belong to a cancelled run (only asked when some run is)."""
    return np.array([(t, d) in runs for t, d in zip(trips.tolist(), dates.tolist(), strict=True)], dtype=bool)


def _timetable_texts(formatter: RowFormatter, trips: IntArray, visits: IntArray, seconds: FloatArray,
                     origins: FloatArray, dates: npt.NDArray[np.object_], minutes: IntArray,
                     cancelled: frozenset[tuple[int, str]] = frozenset()) -> list[str]:
    """The JSON of timetable rows: all but ``minutes_away`` and ``status`` cached by (service day, visit)."""
    cache = formatter.timetable_rows
    if len(cache) > _CACHE_LIMIT:
        cache.clear()
    keys = ((origins.astype(np.int64) // 60) * (len(formatter.visit_seq) + 1) + visits).tolist()
    missing = [i for i, key in enumerate(keys) if key not in cache]
    if missing:
        at = np.array(missing, dtype=np.int64)
        prefix, seq = formatter.trip_prefix, formatter.visit_seq
        leaves = formatter.times(seconds[at] + formatter.visit_dwell[visits[at]])
        for i, t, v, d, s, lv in zip(missing, trips[at].tolist(), visits[at].tolist(),
                                     formatter.dates(dates[at].tolist()), formatter.times(seconds[at]), leaves,
                                     strict=True):
            cache[keys[i]] = (
                f'{prefix[t]}"stop_sequence":{seq[v]},"service_date":"{d}","scheduled_time":"{s}",'
                f'"predicted_time":"{s}","interval":null,"vehicle_id":null,"minutes_away":',
                f',"realtime":false,"stalled_s":null,"last_update":null,"arrival_time":{{"scheduled":"{s}",'
                f'"predicted":null}},"departure_time":{{"scheduled":"{lv}","predicted":null}},'
                f'"schedule_deviation_s":null,"stops_away":null,"distance_m":null,"status":')
    status = ["scheduled"] * len(keys)
    if cancelled:
        for i in np.flatnonzero(_cancelled(cancelled, trips, dates)).tolist():
            status[i] = "cancelled"
    return [f'{cache[key][0]}{m}{cache[key][1]}"{st}","occupancy":null}}'
            for key, m, st in zip(keys, minutes.tolist(), status, strict=True)]


def _no_calls() -> tuple[IntArray, IntArray, FloatArray, FloatArray, npt.NDArray[np.object_]]:
    return (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0),
            np.zeros(0, dtype=object))


def _timetable_calls(net: Network, formatter: RowFormatter, timetable: TimetableWindow, p: CyclePredictions, now: float,
                     window_min: int, owns_trip: Callable[[IntArray], npt.NDArray[np.bool_]]
                     ) -> tuple[IntArray, IntArray, FloatArray, FloatArray, npt.NDArray[np.object_]]:
    """(trip, visit, scheduled epoch, service-day origin, start date) of the owned runs in the window that were
    neither seen (``run_keys``) nor predicted (a bus predicts its block's next trip before that trip starts)."""
    trips, visits, times, origins, dates = [], [], [], [], []
    for day, origin, calls in timetable.calls(now, window_min * 60.0):
        trip = timetable.visit_trip[calls]
        stamp = day.strftime("%Y%m%d")
        keep = owns_trip(trip) & formatter.stop_known[net.visit_stop[calls]] & formatter.trip_ok[trip]
        live = np.concatenate([np.array([t for t, d in p.run_keys if d == stamp], dtype=np.int64),
                               p.trip[p.start_date == stamp]])
        if len(live):
            keep &= ~np.isin(trip, live)
        count = int(keep.sum())
        trips.append(trip[keep])
        visits.append(calls[keep])
        times.append(origin + net.visit_arr[calls[keep]].astype(float))
        origins.append(np.full(count, origin))
        dates.append(np.full(count, stamp, dtype=object))
    if not trips:
        return _no_calls()
    return (np.concatenate(trips).astype(np.int64), np.concatenate(visits).astype(np.int64),
            np.concatenate(times), np.concatenate(origins), np.concatenate(dates))
