"""The live view at time T: every active trip's last known stop, and one feature row per downstream stop.

``LiveState.advance(T)`` takes in the events that became known by T (in ``known_at`` order, never later ones);
``LiveState.snapshot(T)`` returns the rows the predictors score. The same code builds training rows and replays
a backtest, so training and serving see identical features.

Besides the downstream stops of the active trip, a bus also predicts the stops of the **next trip of its block**
(feeds with ``block_id``): the bus must first reach its terminal, then leaves at the later of the next trip's
scheduled departure and its own arrival. Those rows have ``block_ahead`` = 1. A bus standing at the terminal of a
finished trip keeps predicting its next trip until that trip's first departure is known.

Baselines are computed here, as their systems do: ``kalman_eta_s`` is TheTransitClock's Kalman filter per segment
(``prediction.eta.kalman``), ``deviation_eta_s`` OneBusAway's schedule deviation, which grows while the bus is
overdue at its next stop. A bus that stands still or falls silent keeps being predicted (for up to ``stale_s`` of
silence and ``past_end_s`` past its trip's scheduled end plus its delay: long enough for a breakdown, a detour or a
gap in the pings, short enough that a bus gone out of service stops showing), and no ETA is shorter than the time
still needed from its next stop on, plus ``_REACH_FLOOR_S`` to get there: the predicted arrival moves later while it
stands. ``stalled_s`` says for how long it has been overdue at its next stop. An event is known only some time after
the bus passed the stop (the next ping; 4 min on Austin's feed), so a bus not yet reported at its next stop may have
passed it that long ago: the floor, ``stalled_s`` and the overdue deviation all allow the feed's mean report lag so
far (``report_lag_s``); without it, on Austin, the floor held predictions minutes late. """

from __future__ import annotations

import weakref

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.eta.features import FEATURES, KnownEvents, SegmentHistory
from prediction.eta.kalman import INITIAL_ERROR, MIN_DAYS, kalman_run
from prediction.gtfs.blocks import next_trips
from prediction.network import Network

__all__ = ["OUTPUT_COLUMNS", "LiveState"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# every snapshot column after FEATURES; ``run`` is -1 for a next trip with no observed event in ``known``
OUTPUT_COLUMNS = ("run", "visit", "trip", "origin", "made_at", "sched_eta_s", "kalman_eta_s", "block_deviation_s",
                  "deviation_eta_s", "stalled_s")
_PACE_PRIOR_S = 300.0  # shrinks a trip's own pace toward 1 until it has run a few minutes
_ROUTE_PRIOR_S = 600.0
_REACH_FLOOR_S = 30.0  # the least time a bus not yet seen at its next stop needs to get there
_MAX_LAG_S = 600.0  # a report lag longer than this is a gap in the pings, not the feed's rhythm
_SOURCES = ("hist", "recent", "kalman", "transitclock")
_EMPTY = pd.DataFrame({name: np.zeros(0) for name in (*FEATURES, *OUTPUT_COLUMNS)}).astype(
    {"run": np.int64, "visit": np.int64, "trip": np.int64})


_TRIP_TABLES: dict[int, tuple[weakref.ref[Network], FloatArray, IntArray]] = {}


def _trip_tables(net: Network) -> tuple[FloatArray, IntArray]:
    """Each trip's direction and the next trip of its block: fixed for a network, so computed once per network
    (a live worker builds a ``LiveState`` every cycle; these cost it more than the snapshot)."""
    found = _TRIP_TABLES.get(id(net))
    if found is not None and found[0]() is net:
        return found[1], found[2]
    directions = net.feed.trips.drop_duplicates("trip_id").set_index("trip_id")
    column = directions["direction_id"] if "direction_id" in directions else pd.Series(0, index=directions.index)
    direction = pd.to_numeric(column.reindex(net.trip_ids), errors="coerce").fillna(0).to_numpy(float)
    following = next_trips(net)
    for key in [k for k, (ref, _, _) in _TRIP_TABLES.items() if ref() is None]:
        del _TRIP_TABLES[key]
    _TRIP_TABLES[id(net)] = (weakref.ref(net), direction, following)
    return direction, following


class LiveState:
    """What a live service knows at the current replay time; advance it forwards only."""

    def __init__(self, net: Network, history: SegmentHistory, known: KnownEvents, *, stale_s: float = 3600.0,
                 recent_s: float = 1800.0, past_end_s: float = 1800.0) -> None:
        self.net, self.history, self.known = net, history, known
        self.stale_s, self.recent_s, self.past_end_s = stale_s, recent_s, past_end_s
        runs = int(known.run.max()) + 1 if len(known) else 0
        self.run_trip = np.zeros(runs, dtype=np.int64)
        self.run_trip[known.run] = known.trip
        self.run_origin = np.zeros(runs)
        self.run_origin[known.run] = known.origin
        run_key = self.run_origin.astype(np.int64) * len(net.trip_ids) + self.run_trip
        self._key_order = np.argsort(run_key, kind="stable")
        self._keys = run_key[self._key_order]
        self.last_visit = np.full(runs, -1, dtype=np.int64)
        self.last_dep = np.full(runs, np.nan)
        self.last_known = np.full(runs, -np.inf)
        self.last_headway = np.full(runs, np.nan)
        self.pace_obs = np.zeros(runs)  # observed run seconds of the run so far (known events only)
        self.pace_hist = np.zeros(runs)  # historical seconds of the same segments
        self.recent_run = np.full(net.segment_count, np.nan)
        self.recent_at = np.full(net.segment_count, -np.inf)
        self.recent_route = np.zeros(net.segment_count, dtype=np.int64)
        self.recent_visit = np.full(net.segment_count, -1, dtype=np.int64)  # the last traversal's (trip, stop path)
        self.kalman_error = np.full(len(net.visit_seq), np.nan)  # TheTransitClock's KalmanErrorCache
        self.now = -np.inf
        self._next = 0
        self._lag_sum, self._lag_count = 0.0, 0
        self._cum_obs, self._cum_hist = self._trip_pace_sums()
        self.trip_direction, self.next_trip = _trip_tables(net)
        self.trip_end = net.visit_ptr[1:] - 1

    def _trip_pace_sums(self) -> tuple[FloatArray, FloatArray]:
        """Per event: observed and historical run seconds of its run up to and including it (in visit order), so
        taking in an event gives the run's pace so far without touching its earlier events again."""
        k, hist = self.known, self.history
        seg = self.net.visit_segment[k.visit]
        ok = np.isfinite(k.segment_run) & (seg >= 0)
        obs = np.where(ok, k.segment_run, 0.0)
        expected = np.where(ok, hist.run_s[np.maximum(seg, 0), k.slot], 0.0)
        order = np.lexsort((k.visit, k.run))
        start = np.r_[True, k.run[order][1:] != k.run[order][:-1]]
        cum_obs, cum_hist = np.empty(len(k)), np.empty(len(k))
        for values, out in ((obs, cum_obs), (expected, cum_hist)):
            total = np.cumsum(values[order])
            group_start = np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
            before = np.where(group_start > 0, total[np.maximum(group_start - 1, 0)], 0.0)
            out[order] = total - before
        return cum_obs, cum_hist

    def run_of(self, trips: IntArray, origins: FloatArray) -> IntArray:
        """The run numbers of (trip, service-day origin) pairs; -1 where no event of that run is in ``known``."""
        key = origins.astype(np.int64) * len(self.net.trip_ids) + trips
        pos = np.clip(np.searchsorted(self._keys, key), 0, max(len(self._keys) - 1, 0))
        if not len(self._keys):
            return np.full(len(key), -1, dtype=np.int64)
        return np.where(self._keys[pos] == key, self._key_order[pos], -1).astype(np.int64)

    def advance(self, now: float) -> None:
        """Take in every event known at or before ``now``."""
        if now < self.now:
            raise ValueError("LiveState only moves forwards in time")
        self.now = now
        stop = int(np.searchsorted(self.known.known_at, now, side="right"))
        if stop <= self._next:
            return
        rows = np.arange(self._next, stop)
        self._next = stop
        k = self.known
        self._lag_sum += float(np.clip(k.known_at[rows] - k.departure[rows], 0.0, _MAX_LAG_S).sum())
        self._lag_count += len(rows)
        order = rows[np.lexsort((k.visit[rows], k.run[rows]))]
        last = order[np.r_[k.run[order][1:] != k.run[order][:-1], True]]  # furthest visit per run
        newer = k.visit[last] > self.last_visit[k.run[last]]
        last = last[newer]
        runs = k.run[last]
        self.last_visit[runs], self.last_dep[runs] = k.visit[last], k.departure[last]
        self.last_known[runs], self.last_headway[runs] = k.known_at[last], k.headway[last]
        self.pace_obs[runs], self.pace_hist[runs] = self._cum_obs[last], self._cum_hist[last]
        seg_rows = rows[np.isfinite(k.segment_run[rows])]
        seg_rows = seg_rows[np.argsort(k.arrival[seg_rows], kind="stable")]
        segment = self.net.visit_segment[k.visit[seg_rows]]
        self.recent_run[segment], self.recent_at[segment] = k.segment_run[seg_rows], k.arrival[seg_rows]
        self.recent_route[segment] = self.net.trip_route[k.trip[seg_rows]]
        self.recent_visit[segment] = k.visit[seg_rows]

    @property
    def report_lag_s(self) -> float:
        """Mean seconds from a departure to the moment its event became known, over the events taken in so far."""
        return self._lag_sum / self._lag_count if self._lag_count else 0.0

    def active_runs(self, now: float) -> IntArray:
        """Runs heard from within ``stale_s`` and not finished — or finished but with a next trip of the block still
        to start — until ``past_end_s`` after the scheduled end (plus the delay) of the trip they are on, or, waiting
        at a terminal, after the scheduled start of the next one."""
        net = self.net
        runs = np.flatnonzero((self.last_visit >= 0) & (self.last_known >= now - self.stale_s))
        visit, trip, origin = self.last_visit[runs], self.run_trip[runs], self.run_origin[runs]
        running = visit < self.trip_end[trip]
        waiting = ~running & (self.next_trip[trip] >= 0)
        if waiting.any():
            following = self.run_of(self.next_trip[trip[waiting]], origin[waiting])
            started = np.zeros(len(following), dtype=bool)
            started[following >= 0] = self.last_visit[following[following >= 0]] >= 0
            waiting[np.flatnonzero(waiting)] = ~started
        delay = np.maximum(self.last_dep[runs] - (origin + net.visit_dep[visit]), 0.0)
        ends = np.where(running, net.visit_arr[self.trip_end[trip]] + delay,
                        net.visit_dep[net.visit_ptr[np.maximum(self.next_trip[trip], 0)]])
        live = (running | waiting) & (now <= origin + ends + self.past_end_s)
        return runs[live]

    def _cumulative(self, now: float, visits: IntArray) -> dict[str, FloatArray]:
        """Cumulative seconds (run + dwell) along ``visits`` (whole trips, in order), by source, for the slot of
        ``now``; differences between two visits of one trip give the time between them."""
        net, hist = self.net, self.history
        stamp = pd.Timestamp(now, unit="s", tz="UTC").tz_convert(net.tz)
        slot = stamp.hour + (24 if stamp.day_of_week >= 5 else 0)
        seg = net.visit_segment[visits]
        first, seg0 = seg < 0, np.maximum(seg, 0)
        run_h = np.where(first, 0.0, hist.run_s[seg0, slot])
        dwell = hist.dwell_s[net.visit_stop[visits], slot]
        fresh = ~first & (now - self.recent_at[seg0] <= self.recent_s)
        run_r = np.where(fresh, self.recent_run[seg0], run_h)
        run_k = run_h + hist.gain * (run_r - run_h)
        day_start = now - (stamp.hour * 3600.0 + stamp.minute * 60.0 + stamp.second)
        today = ~first & (self.recent_at[seg0] >= day_start)  # TheTransitClock's stop history is kept per day
        run_tc, error = self._transitclock_runs(visits, today, weekend=slot >= 24)
        return {"hist": np.cumsum(run_h + dwell), "recent": np.cumsum(run_r + dwell),
                "kalman": np.cumsum(run_k + dwell), "fresh": np.cumsum(np.where(fresh, run_h, 0.0)),
                "transitclock": np.cumsum(run_tc + dwell), "kalman_error": error,
                "run": np.cumsum(run_h), "dwell": np.cumsum(dwell), "dwell_at": dwell,
                "pace": np.array([self._network_pace(now, slot)]), "route_pace": self._route_pace(now, slot),
                "hour": np.array([stamp.hour + stamp.minute / 60.0]),
                "day_type": np.array([max(stamp.day_of_week - 4, 0)])}  # weekday 0, Saturday 1, Sunday 2

    def _transitclock_runs(self, visits: IntArray, last_today: npt.NDArray[np.bool_], *, weekend: bool
                           ) -> tuple[FloatArray, FloatArray]:
        """Run seconds into each of ``visits`` as TheTransitClock's Kalman generator gives them, and the filter error
        to store for it (NaN where the filter was not used): with a last vehicle today and ``MIN_DAYS`` of the same
        trip, the filter; otherwise the historical mean for the hour the trip is scheduled there."""
        net, hist = self.net, self.history
        seg0 = np.maximum(net.visit_segment[visits], 0)
        slot = (net.visit_arr[visits] // 3600) % 24 + (24 if weekend else 0)
        fallback = np.where(net.visit_segment[visits] < 0, 0.0, hist.run_s[seg0, slot])
        days = hist.trip_days
        if days is None:
            return fallback, np.full(len(visits), np.nan)
        use = last_today & (days.days[visits] >= MIN_DAYS)
        previous = self.recent_visit[seg0]
        error = np.where(previous >= 0, self.kalman_error[np.maximum(previous, 0)], np.nan)
        run, new_error = kalman_run(self.recent_run[seg0], days.mean_s[visits], days.variance_s2[visits],
                                    np.where(np.isnan(error), INITIAL_ERROR, error))
        return np.where(use, run, fallback), np.where(use, new_error, np.nan)

    def _network_pace(self, now: float, slot: int) -> float:
        """Observed ÷ historical run time over every segment traversed in the last ``recent_s``: how fast the
        whole city runs today (weather, events) — what one trip's own deviation cannot show yet."""
        fresh = now - self.recent_at <= self.recent_s
        expected = float(self.history.run_s[fresh, slot].sum())
        return float(self.recent_run[fresh].sum()) / expected if expected > 0 else 1.0

    def _route_pace(self, now: float, slot: int) -> FloatArray:
        """The same per route (segments last traversed by a bus of that route), shrunk toward 1."""
        fresh = np.flatnonzero(now - self.recent_at <= self.recent_s)
        routes = len(self.net.route_ids)
        route = self.recent_route[fresh]
        observed = np.bincount(route, weights=self.recent_run[fresh], minlength=routes)
        expected = np.bincount(route, weights=self.history.run_s[fresh, slot], minlength=routes)
        return (observed + _ROUTE_PRIOR_S) / (expected + _ROUTE_PRIOR_S)

    def _trip_visits(self, trips: IntArray) -> tuple[IntArray, IntArray]:
        """The visits of ``trips`` (unique) concatenated, and where each trip starts in that array."""
        ptr = self.net.visit_ptr
        counts = ptr[trips + 1] - ptr[trips]
        offset = np.cumsum(counts) - counts
        visits = np.repeat(ptr[trips] - offset, counts) + np.arange(counts.sum())
        return visits, offset

    @staticmethod
    def _empty() -> pd.DataFrame:
        return _EMPTY.copy()  # building it each time cost ~20 ms, on every quiet night-time moment

    @staticmethod
    def _expand(first: IntArray, counts: IntArray) -> tuple[IntArray, IntArray]:
        """(owner index, visit) for ``counts[i]`` consecutive visits from ``first[i]``."""
        owner = np.repeat(np.arange(len(first)), counts)
        step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return owner, np.repeat(first, counts) + step

    def snapshot(self, now: float, *, max_ahead_s: float | None = None, next_trip_ahead_s: float = 3600.0
                 ) -> pd.DataFrame:
        """One row per downstream stop of every active trip and of the next trip of its block: FEATURES, then
        OUTPUT_COLUMNS (run, visit, trip, origin, made_at and the baseline inputs ``sched_eta_s``,
        ``kalman_eta_s`` and ``block_deviation_s``; ETAs in seconds from ``now``). ``max_ahead_s`` limits rows to
        stops scheduled at most that long after the bus's last departure; next-trip rows are always limited to
        ``next_trip_ahead_s`` (an hour: beyond it the rider sees the timetable, and a cycle stays cheap)."""
        self.advance(now)
        runs = self.active_runs(now)
        if not len(runs):
            return self._empty()
        net = self.net
        trip_all = self.run_trip[runs]
        nxt = self.next_trip[trip_all]
        trips = np.unique(np.concatenate([trip_all, nxt[nxt >= 0]]))
        visits, offset = self._trip_visits(trips)
        c = self._cumulative(now, visits)
        pos = np.full(len(net.trip_ids), -1, dtype=np.int64)
        pos[trips] = offset - net.visit_ptr[trips]  # net visit index + pos[trip] = position in ``visits``
        current = self._current_rows(now, runs, c, pos, max_ahead_s)
        limit = next_trip_ahead_s if max_ahead_s is None else min(max_ahead_s, next_trip_ahead_s)
        following = self._next_rows(now, runs, c, pos, limit)
        frame = pd.concat([current, following], ignore_index=True) if len(following) else current
        assert list(frame.columns[: len(FEATURES)]) == list(FEATURES)
        return frame

    def _ahead(self, c: dict[str, FloatArray], pb: IntArray, pj: IntArray) -> dict[str, FloatArray]:
        """Seconds from the departure at position ``pb`` to the arrival at ``pj`` (same trip), by source; run
        and dwell sums and the fresh share's numerator along the way."""
        dwell_j = c["dwell_at"][pj]
        out = {name: c[name][pj] - c[name][pb] - dwell_j for name in _SOURCES}
        out["run"] = c["run"][pj] - c["run"][pb]
        out["fresh"] = c["fresh"][pj] - c["fresh"][pb]
        out["dwell"] = c["dwell"][pj] - c["dwell"][pb] - dwell_j
        return out

    def _run_features(self, now: float, run: IntArray, c: dict[str, FloatArray]) -> dict[str, FloatArray]:
        """Features of the bus itself, repeated on each of its rows."""
        base, trip = self.last_visit[run], self.run_trip[run]
        pace = (self.pace_obs[run] + _PACE_PRIOR_S) / (self.pace_hist[run] + _PACE_PRIOR_S)
        return {"elapsed_s": now - self.last_dep[run],
                "deviation_s": self.last_dep[run] - (self.run_origin[run] + self.net.visit_dep[base]),
                "hour": np.full(len(run), c["hour"][0]), "day_type": np.full(len(run), float(c["day_type"][0])),
                "headway_s": self.last_headway[run], "network_pace": np.full(len(run), c["pace"][0]),
                "trip_pace": pace, "trip_observed_s": self.pace_hist[run],
                "route_pace": c["route_pace"][self.net.trip_route[trip]]}

    def _frame(self, now: float, run: IntArray, c: dict[str, FloatArray], ahead: dict[str, FloatArray],
               *, trip: IntArray, visit: IntArray, dist: FloatArray, stops: FloatArray, sched_remaining: FloatArray,
               block_ahead: float, slack: FloatArray, baselines: dict[str, FloatArray]) -> pd.DataFrame:
        bus = self._run_features(now, run, c)
        run_total = np.maximum(ahead["run"], 1.0)
        columns = {
            "remaining_dist_m": dist, "remaining_stops": stops, "sched_remaining_s": sched_remaining,
            "elapsed_s": bus["elapsed_s"], "deviation_s": bus["deviation_s"], "hour": bus["hour"],
            "day_type": bus["day_type"], "route": self.net.trip_route[trip].astype(float),
            "direction": self.trip_direction[trip], "hist_remaining_s": ahead["hist"],
            "recent_remaining_s": ahead["recent"], "recent_share": ahead["fresh"] / run_total,
            "kalman_remaining_s": ahead["kalman"], "hist_dwell_ahead_s": ahead["dwell"],
            "headway_s": bus["headway_s"], "network_pace": bus["network_pace"], "route_pace": bus["route_pace"],
            "trip_pace": bus["trip_pace"], "trip_observed_s": bus["trip_observed_s"],
            "pace_adjust_s": (bus["trip_pace"] - 1.0) * ahead["run"], "block_ahead": np.full(len(run), block_ahead),
            "layover_slack_s": slack,
        }
        origin = self.run_origin[run]
        columns |= {  # one constructor call: inserting columns one by one into a frame cost more than the maths
            "run": run if block_ahead == 0 else self.run_of(trip, origin), "visit": visit, "trip": trip,
            "origin": origin, "made_at": np.full(len(run), now),
            "sched_eta_s": origin + self.net.visit_arr[visit] - now, **baselines,
        }
        return pd.DataFrame(columns, copy=False)

    def _overdue(self, now: float, runs: IntArray) -> FloatArray:
        """OneBusAway's schedule deviation of each run now: the last observed one, or, once the bus is later than
        that at its next stop, now − the next stop's scheduled arrival."""
        net, base = self.net, self.last_visit[runs]
        origin = self.run_origin[runs]
        deviation = self.last_dep[runs] - (origin + net.visit_dep[base])
        following = np.minimum(base + 1, self.trip_end[self.run_trip[runs]])
        overdue = now - self.report_lag_s - (origin + net.visit_arr[following])
        return np.where(following > base, np.maximum(deviation, overdue), deviation)

    def _current_rows(self, now: float, runs: IntArray, c: dict[str, FloatArray], pos: IntArray,
                      max_ahead_s: float | None) -> pd.DataFrame:
        net = self.net
        k = self.last_visit[runs]
        owner, j = self._expand(k + 1, self.trip_end[self.run_trip[runs]] - k)
        if max_ahead_s is not None:
            keep = net.visit_arr[j] - net.visit_dep[k[owner]] <= max_ahead_s
            owner, j = owner[keep], j[keep]
        run, base = runs[owner], k[owner]
        trip = self.run_trip[run]
        ahead = self._ahead(c, base + pos[trip], j + pos[trip])
        used = np.isfinite(c["kalman_error"][j + pos[trip]])  # TheTransitClock stores the error it predicted with
        self.kalman_error[j[used]] = c["kalman_error"][j + pos[trip]][used]
        elapsed = now - self.last_dep[run]
        to_next = self._ahead(c, base + pos[trip], base + 1 + pos[trip])["transitclock"]
        lag = self.report_lag_s
        eta = np.maximum(ahead["transitclock"] - elapsed,
                         np.maximum(ahead["transitclock"] - to_next - lag, 0.0) + _REACH_FLOOR_S)
        deviation = self._overdue(now, runs)[owner]
        baselines = {"kalman_eta_s": eta, "block_deviation_s": self.last_dep[run] - (
                         self.run_origin[run] + net.visit_dep[base]),
                     "deviation_eta_s": np.maximum(self.run_origin[run] + net.visit_arr[j] + deviation - now, 0.0),
                     "stalled_s": np.maximum(elapsed - to_next - lag, 0.0)}
        return self._frame(now, run, c, ahead, trip=trip, visit=j, dist=net.visit_dist[j] - net.visit_dist[base],
                           stops=(j - base).astype(float),
                           sched_remaining=(net.visit_arr[j] - net.visit_dep[base]).astype(float), block_ahead=0.0,
                           slack=np.zeros(len(j)), baselines=baselines)

    def _leave(self, now: float, runs: IntArray, c: dict[str, FloatArray], pos: IntArray
               ) -> tuple[dict[str, FloatArray], dict[str, FloatArray], FloatArray]:
        """Per run: seconds from its last departure to its terminal by source (``to_end``), seconds from now until
        it leaves on its next trip by source — the later of that trip's scheduled departure and its arrival, no
        sooner for TheTransitClock than the time from its next stop on (less the report lag) plus ``_REACH_FLOOR_S``
        — and how long it has been overdue at its next stop (at the terminal: past the next trip's scheduled
        departure)."""
        net = self.net
        trip, base = self.run_trip[runs], self.last_visit[runs]
        end, first = self.trip_end[trip], net.visit_ptr[self.next_trip[trip]]
        elapsed = now - self.last_dep[runs]
        to_end = self._ahead(c, base + pos[trip], end + pos[trip])
        to_next = self._ahead(c, base + pos[trip], np.minimum(base + 1, end) + pos[trip])["transitclock"]
        running = end > base
        slack = self.run_origin[runs] + net.visit_dep[first] - now  # until the next trip's scheduled departure
        leave = {name: np.maximum(slack, np.where(running, np.maximum(to_end[name] - elapsed, 0.0), 0.0))
                 for name in _SOURCES}
        lag = self.report_lag_s
        floor = np.maximum(to_end["transitclock"] - to_next - lag, 0.0) + _REACH_FLOOR_S
        leave["transitclock"] = np.maximum(leave["transitclock"], np.where(running, floor, 0.0))
        stalled = np.where(running, np.maximum(elapsed - to_next - lag, 0.0), np.maximum(-slack, 0.0))
        return to_end, leave, stalled

    def _next_rows(self, now: float, runs: IntArray, c: dict[str, FloatArray], pos: IntArray,
                   max_ahead_s: float | None) -> pd.DataFrame:
        """Rows for the next trip of each bus's block: reach the terminal, leave at max(scheduled, arrival)."""
        net = self.net
        runs = runs[self.next_trip[self.run_trip[runs]] >= 0]
        if not len(runs):
            return self._empty()
        trip, base = self.run_trip[runs], self.last_visit[runs]
        end, nxt = self.trip_end[trip], self.next_trip[trip]
        first = net.visit_ptr[nxt]
        elapsed = now - self.last_dep[runs]
        to_end, leave, stalled = self._leave(now, runs, c, pos)
        running = end > base
        origin = self.run_origin[runs]
        slack = origin + net.visit_dep[first] - now
        owner, j = self._expand(first + 1, net.visit_ptr[nxt + 1] - first - 1)
        if max_ahead_s is not None:
            keep = net.visit_arr[j] - net.visit_dep[base[owner]] <= max_ahead_s
            owner, j = owner[keep], j[keep]
        if not len(j):
            return self._empty()
        t2 = nxt[owner]
        along = self._ahead(c, first[owner] + pos[t2], j + pos[t2])
        ahead = {name: leave[name][owner] + elapsed[owner] + along[name] for name in _SOURCES}
        end_o, base_o = end[owner], base[owner]
        ahead["run"] = np.where(running[owner], to_end["run"][owner], 0.0) + along["run"]
        ahead["fresh"] = np.where(running[owner], to_end["fresh"][owner], 0.0) + along["fresh"]
        ahead["dwell"] = np.where(running[owner], to_end["dwell"][owner], 0.0) + along["dwell"]
        deviation = self.last_dep[runs] - (origin + net.visit_dep[base])
        sched_first = origin + net.visit_dep[first]
        block_deviation = np.maximum(origin + net.visit_arr[end] + deviation - sched_first, 0.0)  # OneBusAway
        overdue = np.maximum(origin + net.visit_arr[end] + self._overdue(now, runs) - sched_first, -slack)
        sched_eta = origin[owner] + net.visit_arr[j] - now
        baselines = {"kalman_eta_s": np.maximum(ahead["transitclock"] - elapsed[owner], 0.0),
                     "block_deviation_s": block_deviation[owner],
                     "deviation_eta_s": np.maximum(sched_eta + np.maximum(overdue, 0.0)[owner], 0.0),
                     "stalled_s": stalled[owner]}
        dist = (net.visit_dist[end_o] - net.visit_dist[base_o]) + (net.visit_dist[j] - net.visit_dist[first[owner]])
        return self._frame(now, runs[owner], c, ahead, trip=t2, visit=j, dist=dist,
                           stops=((end_o - base_o) + (j - first[owner]) + 1).astype(float),
                           sched_remaining=(net.visit_arr[j] - net.visit_dep[base_o]).astype(float),
                           block_ahead=1.0, slack=(slack - np.maximum(to_end["kalman"] - elapsed, 0.0))[owner],
                           baselines=baselines)
