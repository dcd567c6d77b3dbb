"""The live view at time T: every active trip's last known stop, and one feature row per downstream stop.

``LiveState.advance(T)`` takes in the events that became known by T (in ``known_at`` order, never later ones);
``LiveState.snapshot(T)`` returns the rows the predictors score. The same code builds training rows and replays
a backtest, so training and serving see identical features.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.features import FEATURES, KnownEvents, SegmentHistory
from prediction.sim_network import SimNetwork

__all__ = ["LiveState"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class LiveState:
    """What a live service knows at the current replay time; advance it forwards only."""

    def __init__(self, net: SimNetwork, history: SegmentHistory, known: KnownEvents, *, stale_s: float = 900.0,
                 recent_s: float = 1800.0, max_elapsed_s: float = 1800.0) -> None:
        self.net, self.history, self.known = net, history, known
        self.stale_s, self.recent_s, self.max_elapsed_s = stale_s, recent_s, max_elapsed_s
        runs = int(known.run.max()) + 1 if len(known) else 0
        self.run_trip = np.zeros(runs, dtype=np.int64)
        self.run_trip[known.run] = known.trip
        self.run_origin = np.zeros(runs)
        self.run_origin[known.run] = known.origin
        self.last_visit = np.full(runs, -1, dtype=np.int64)
        self.last_dep = np.full(runs, np.nan)
        self.last_known = np.full(runs, -np.inf)
        self.last_headway = np.full(runs, np.nan)
        self.recent_run = np.full(net.segment_count, np.nan)
        self.recent_at = np.full(net.segment_count, -np.inf)
        self.now = -np.inf
        self._next = 0
        directions = net.feed.trips.drop_duplicates("trip_id").set_index("trip_id")
        column = directions["direction_id"] if "direction_id" in directions else pd.Series(0, index=directions.index)
        self.trip_direction = pd.to_numeric(column.reindex(net.trip_ids), errors="coerce").fillna(0).to_numpy(float)
        self.trip_end = net.visit_ptr[1:] - 1

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
        order = rows[np.lexsort((k.visit[rows], k.run[rows]))]
        last = order[np.r_[k.run[order][1:] != k.run[order][:-1], True]]  # furthest visit per run
        newer = k.visit[last] > self.last_visit[k.run[last]]
        last = last[newer]
        runs = k.run[last]
        self.last_visit[runs], self.last_dep[runs] = k.visit[last], k.departure[last]
        self.last_known[runs], self.last_headway[runs] = k.known_at[last], k.headway[last]
        seg_rows = rows[np.isfinite(k.segment_run[rows])]
        seg_rows = seg_rows[np.argsort(k.arrival[seg_rows], kind="stable")]
        segment = self.net.visit_segment[k.visit[seg_rows]]
        self.recent_run[segment], self.recent_at[segment] = k.segment_run[seg_rows], k.arrival[seg_rows]

    def active_runs(self, now: float) -> IntArray:
        runs = np.flatnonzero((self.last_visit >= 0) & (self.last_known >= now - self.stale_s))
        visit = self.last_visit[runs]
        live = (visit < self.trip_end[self.run_trip[runs]]) & (now - self.last_dep[runs] <= self.max_elapsed_s)
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
        return {"hist": np.cumsum(run_h + dwell), "recent": np.cumsum(run_r + dwell),
                "kalman": np.cumsum(run_k + dwell), "fresh": np.cumsum(np.where(fresh, run_h, 0.0)),
                "run": np.cumsum(run_h), "dwell": np.cumsum(dwell), "dwell_at": dwell,
                "pace": np.array([self._network_pace(now, slot)]),
                "hour": np.array([stamp.hour + stamp.minute / 60.0]),
                "day_type": np.array([max(stamp.day_of_week - 4, 0)])}  # weekday 0, Saturday 1, Sunday 2

    def _network_pace(self, now: float, slot: int) -> float:
        """Observed ÷ historical run time over every segment traversed in the last ``recent_s``: how fast the
        whole city runs today (weather, events) — what one trip's own deviation cannot show yet."""
        fresh = now - self.recent_at <= self.recent_s
        expected = float(self.history.run_s[fresh, slot].sum())
        return float(self.recent_run[fresh].sum()) / expected if expected > 0 else 1.0

    def _trip_visits(self, trips: IntArray) -> tuple[IntArray, IntArray]:
        """The visits of ``trips`` (unique) concatenated, and where each trip starts in that array."""
        ptr = self.net.visit_ptr
        counts = ptr[trips + 1] - ptr[trips]
        offset = np.cumsum(counts) - counts
        visits = np.repeat(ptr[trips] - offset, counts) + np.arange(counts.sum())
        return visits, offset

    @staticmethod
    def _empty() -> pd.DataFrame:
        columns = [*FEATURES, "run", "visit", "made_at", "sched_eta_s", "kalman_eta_s"]
        frame = pd.DataFrame({name: np.zeros(0) for name in columns})
        return frame.astype({"run": np.int64, "visit": np.int64})

    def snapshot(self, now: float, *, max_ahead_s: float | None = None) -> pd.DataFrame:
        """One row per downstream stop of every active trip: FEATURES plus run, visit, made_at and baseline ETAs
        (``sched_eta_s``, ``kalman_eta_s``; seconds from ``now``)."""
        self.advance(now)
        runs = self.active_runs(now)
        if not len(runs):
            return self._empty()
        net = self.net
        k = self.last_visit[runs]
        counts = self.trip_end[self.run_trip[runs]] - k
        run = np.repeat(runs, counts)
        base = np.repeat(k, counts)
        j = base + 1 + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
        trip = self.run_trip[run]
        if max_ahead_s is not None:
            keep = net.visit_arr[j] - net.visit_dep[base] <= max_ahead_s
            run, base, j, trip = run[keep], base[keep], j[keep], trip[keep]
        trips, slot_of = np.unique(trip, return_inverse=True)
        visits, offset = self._trip_visits(trips)
        c = self._cumulative(now, visits)
        shift = offset[slot_of] - net.visit_ptr[trip]  # net visit index -> position in ``visits``
        pj, pb = j + shift, base + shift
        dwell_j = c["dwell_at"][pj]
        ahead = {name: c[name][pj] - c[name][pb] - dwell_j for name in ("hist", "recent", "kalman")}
        run_total = np.maximum(c["run"][pj] - c["run"][pb], 1.0)
        elapsed = now - self.last_dep[run]
        sched_dep = self.run_origin[run] + net.visit_dep[base]
        sched_arr = self.run_origin[run] + net.visit_arr[j]
        frame = pd.DataFrame({
            "remaining_dist_m": net.visit_dist[j] - net.visit_dist[base], "remaining_stops": (j - base).astype(float),
            "sched_remaining_s": (net.visit_arr[j] - net.visit_dep[base]).astype(float), "elapsed_s": elapsed,
            "deviation_s": self.last_dep[run] - sched_dep, "hour": np.full(len(j), c["hour"][0]),
            "day_type": np.full(len(j), float(c["day_type"][0])), "route": net.trip_route[trip].astype(float),
            "direction": self.trip_direction[trip], "hist_remaining_s": ahead["hist"],
            "recent_remaining_s": ahead["recent"], "recent_share": (c["fresh"][pj] - c["fresh"][pb]) / run_total,
            "kalman_remaining_s": ahead["kalman"], "hist_dwell_ahead_s": c["dwell"][pj] - c["dwell"][pb] - dwell_j,
            "headway_s": self.last_headway[run], "network_pace": np.full(len(j), c["pace"][0]),
        })
        frame["run"], frame["visit"], frame["made_at"] = run, j, now
        frame["sched_eta_s"] = sched_arr - now
        frame["kalman_eta_s"] = np.maximum(frame["kalman_remaining_s"] - elapsed, 0.0)
        assert list(frame.columns[: len(FEATURES)]) == list(FEATURES)
        return frame
