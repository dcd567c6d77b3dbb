"""Prediction features from observed stop events, built exactly as a live service would see them at time T.

Stop events are interpolated between pings, so an event is *known* only once the bus has been seen past it: at the
first ping of the same vehicle strictly after the event's departure (``known_at``; the AVL event table's own
``known_at`` column is used when the events carry one). A snapshot at T uses only events known by T. Segment
history (historical run times by segment, hour and day type; dwell by stop) is fitted on training events only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.avl.events import resolve_start_dates
from prediction.gtfs.servicedays import service_day_start
from prediction.network import Network

__all__ = ["FEATURES", "KnownEvents", "SegmentHistory", "TripDays", "prepare_events"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FEATURES = (
    "remaining_dist_m", "remaining_stops", "sched_remaining_s", "elapsed_s", "deviation_s", "hour", "day_type",
    "route", "direction", "hist_remaining_s", "recent_remaining_s", "recent_share", "kalman_remaining_s",
    "hist_dwell_ahead_s", "headway_s", "network_pace", "route_pace", "trip_pace", "trip_observed_s",
    "pace_adjust_s", "block_ahead", "layover_slack_s",
)
_SLOTS = 48  # hour of day × (weekday, weekend)
_KNOWN_FALLBACK_S = 60.0  # no later ping of the vehicle: assume the next report within a minute
# TheTransitClock's KalmanPredictionGeneratorImpl: at most 3 days of the same trip, looked for over 21 days back
_KALMAN_MAX_DAYS = 3
_KALMAN_SEARCH_DAYS = 21


@dataclass
class KnownEvents:
    """Observed stop events as arrays, sorted by ``known_at``; ``run`` numbers (trip, service day) pairs."""

    run: IntArray
    trip: IntArray  # index into net.trip_ids
    visit: IntArray  # index into net visits
    arrival: FloatArray
    departure: FloatArray
    known_at: FloatArray
    origin: FloatArray  # epoch of GTFS time 0 of the run's service day
    segment_run: FloatArray  # arrival − previous stop's departure of the same run (NaN when not observed)
    headway: FloatArray  # departure − the previous departure from this stop on the same route (NaN: none)
    slot: IntArray  # hour of day × (weekday, weekend) of the arrival, the SegmentHistory column

    def __len__(self) -> int:
        return len(self.run)

    def select(self, mask: npt.NDArray[np.bool_]) -> KnownEvents:
        return KnownEvents(**{name: getattr(self, name)[mask] for name in self.__dataclass_fields__})


def _slot(epoch: FloatArray, tz: dt.tzinfo) -> IntArray:
    local = pd.DatetimeIndex(pd.to_datetime(epoch, unit="s", utc=True)).tz_convert(tz)
    weekend = (local.day_of_week >= 5).astype(np.int64)
    return (local.hour.to_numpy(dtype=np.int64) + 24 * weekend).astype(np.int64)


def prepare_events(net: Network, events: pd.DataFrame, pings: pd.DataFrame) -> KnownEvents:
    """Attach visits, schedule origins and ``known_at`` (first ping of the vehicle after the departure)."""
    visits = pd.DataFrame({"trip_id": net.trip_ids[net.visit_trip], "stop_sequence": net.visit_seq,
                           "visit": np.arange(len(net.visit_seq))})
    frame = events.astype({"trip_id": str, "start_date": str}).merge(visits, on=["trip_id", "stop_sequence"])
    frame["run"] = pd.factorize(frame["trip_id"] + "/" + frame["start_date"])[0]
    origins = {d: service_day_start(dt.date(int(d[:4]), int(d[4:6]), int(d[6:8])), net.tz).timestamp()
               for d in frame["start_date"].unique()}
    frame["origin"] = frame["start_date"].map(origins).astype(float)
    frame = frame.sort_values(["run", "visit"]).reset_index(drop=True)
    same = frame["run"].eq(frame["run"].shift()) & frame["visit"].eq(frame["visit"].shift() + 1)
    frame["segment_run"] = np.where(same, frame["arrival"] - frame["departure"].shift(), np.nan)
    known_at = frame["known_at"].to_numpy(float) if "known_at" in frame else np.full(len(frame), np.nan)
    if np.isnan(known_at).any():  # events without the AVL ``known_at`` (older files, stored rows)
        known_at = np.where(np.isnan(known_at), _known_at(net, frame, pings), known_at)
    # passing a later stop proves the earlier ones were passed: known_at never decreases along a run
    frame["known_at"] = pd.Series(known_at[::-1], index=frame.index[::-1]).groupby(
        frame["run"].to_numpy()[::-1]).cummin().sort_index()
    frame["route_stop"] = net.trip_route[net.visit_trip[frame["visit"]]] * len(net.stop_ids) \
        + net.visit_stop[frame["visit"]]
    frame = frame.sort_values(["route_stop", "departure"])
    frame["headway"] = np.where(frame["route_stop"].eq(frame["route_stop"].shift()),
                                frame["departure"] - frame["departure"].shift(), np.nan)
    frame = frame.sort_values("known_at", kind="stable")
    trip = net.visit_trip[frame["visit"].to_numpy()]
    return KnownEvents(
        run=frame["run"].to_numpy(np.int64), trip=trip.astype(np.int64), visit=frame["visit"].to_numpy(np.int64),
        arrival=frame["arrival"].to_numpy(float), departure=frame["departure"].to_numpy(float),
        known_at=frame["known_at"].to_numpy(float), origin=frame["origin"].to_numpy(float),
        segment_run=frame["segment_run"].to_numpy(float), headway=frame["headway"].to_numpy(float),
        slot=_slot(frame["arrival"].to_numpy(float), net.tz),
    )


def _start_dates(pings: pd.DataFrame, net: Network) -> pd.Series:
    """``resolve_start_dates`` for the first ping of each unbroken (vehicle, trip) stretch only, copied to the
    rest of the stretch: it works per ping in Python, and 2 M pings took minutes."""
    frame = pings.sort_values(["vehicle_id", "t"], kind="stable")
    vehicle, trip = frame["vehicle_id"].astype(str), frame["trip_id"].astype(str)
    new = (vehicle != vehicle.shift()) | (trip != trip.shift()) | (frame["t"].diff() > 7200.0)
    stretch = new.cumsum()
    firsts = frame.loc[new.to_numpy()]
    resolved = pd.Series(resolve_start_dates(firsts, net).to_numpy(), index=stretch[new].to_numpy())
    dates = pd.Series(resolved.reindex(stretch.to_numpy()).to_numpy(), index=frame.index)
    return dates.reindex(pings.index)


def _known_at(net: Network, frame: pd.DataFrame, pings: pd.DataFrame) -> FloatArray:
    """First ping of the run's vehicle strictly after the departure: an event placed between two pings (or at
    the edge of a stop zone) is only certain once the later ping is in. The vehicle, not the trip, so the last
    stop of a trip becomes known by the first ping of the bus's next trip."""
    pings = pings.assign(start_date=_start_dates(pings, net))
    with_trip = pings.loc[pings["trip_id"].notna() & pings["start_date"].notna()]
    counts = with_trip.groupby([with_trip["trip_id"].astype(str), with_trip["start_date"].astype(str),
                                "vehicle_id"]).size().rename("n").reset_index()
    vehicle = counts.sort_values("n", ascending=False).drop_duplicates(["trip_id", "start_date"])
    left = frame[["trip_id", "start_date", "departure"]].reset_index().merge(
        vehicle[["trip_id", "start_date", "vehicle_id"]], on=["trip_id", "start_date"], how="left")
    left["vehicle_id"] = left["vehicle_id"].astype(str)
    left = left.sort_values("departure")
    right = pings[["vehicle_id", "t"]].astype({"vehicle_id": str}).sort_values("t")
    merged = pd.merge_asof(left, right, left_on="departure", right_on="t", by="vehicle_id", direction="forward",
                           tolerance=1800.0, allow_exact_matches=False)  # type: ignore[arg-type]  # numeric keys: float
    known = merged["t"].fillna(merged["departure"] + _KNOWN_FALLBACK_S)
    out = np.empty(len(frame))
    out[merged["index"].to_numpy()] = np.maximum(known.to_numpy(float), merged["departure"].to_numpy(float))
    return out


@dataclass
class TripDays:
    """Per network visit: the same trip's run time into that stop on its last days before the history's end (at
    most 3 days, looked for over 21 days; TheTransitClock's ``lastDaysTimes``), as their mean, population variance
    and how many days were found. The Kalman baseline needs 3 days (``minKalmanDays``) before it trusts them."""

    mean_s: FloatArray
    variance_s2: FloatArray
    days: IntArray


@dataclass
class SegmentHistory:
    """Historical mean run time per (segment, slot) and dwell per (stop, slot), a steady-state gain blending the
    last vehicle's run time into the historical one (a model feature), and the same trip's last days' run times
    per visit (``trip_days``: what TheTransitClock's Kalman filter starts from; ``None`` in older model files)."""

    run_s: FloatArray  # [segment, slot]
    dwell_s: FloatArray  # [stop, slot]
    gain: float
    trip_days: TripDays | None = None

    @classmethod
    def fit(cls, net: Network, known: KnownEvents) -> SegmentHistory:
        slot = _slot(known.arrival, net.tz)
        half = known.run % 2 == 0
        # the gain is cross-fitted: a mean fitted on the same traversals it is tested on would absorb the very
        # deviations the last vehicle is supposed to reveal (in-sample it comes out near 0)
        crossed = [_run_table(net, known, slot, ~half), _run_table(net, known, slot, half)]
        hist_for = np.where(half, 0, 1)  # even runs are judged against the table of odd runs
        dwell = _table(len(net.stop_ids), net.visit_stop[known.visit], slot,
                       np.clip(known.departure - known.arrival, 0, 600), np.full(len(net.stop_ids), 10.0))
        gain = _kalman_gain(net.visit_segment[known.visit], known, crossed, hist_for, slot)
        all_runs = np.ones(len(known), dtype=bool)
        return cls(run_s=_run_table(net, known, slot, all_runs), dwell_s=dwell, gain=gain,
                   trip_days=_trip_days(len(net.visit_seq), known))


def _trip_days(visits: int, known: KnownEvents) -> TripDays:
    """The last ``_KALMAN_MAX_DAYS`` service days (within ``_KALMAN_SEARCH_DAYS`` of the newest one) on which each
    visit's run time was observed, reduced to mean, variance and count."""
    ok = np.flatnonzero(np.isfinite(known.segment_run))
    if len(ok):
        ok = ok[known.origin[ok] >= known.origin[ok].max() - _KALMAN_SEARCH_DAYS * 86400.0]
    order = ok[np.lexsort((-known.origin[ok], known.visit[ok]))]  # per visit, newest day first
    visit = known.visit[order]
    start = np.r_[True, visit[1:] != visit[:-1]] if len(order) else np.zeros(0, dtype=bool)
    rank = np.arange(len(order)) - np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
    keep = order[rank < _KALMAN_MAX_DAYS]
    v, run = known.visit[keep], known.segment_run[keep]
    days = np.bincount(v, minlength=visits)
    mean = np.bincount(v, weights=run, minlength=visits) / np.maximum(days, 1)
    variance = np.bincount(v, weights=(run - mean[v]) ** 2, minlength=visits) / np.maximum(days, 1)
    return TripDays(mean_s=mean, variance_s2=variance, days=days.astype(np.int64))


def _run_table(net: Network, known: KnownEvents, slot: IntArray, rows: npt.NDArray[np.bool_]) -> FloatArray:
    sched_run = np.maximum(net.visit_arr[1:] - net.visit_dep[:-1], 1).astype(float)
    seg = net.visit_segment
    ok = rows & np.isfinite(known.segment_run)
    return _table(net.segment_count, seg[known.visit[ok]], slot[ok], known.segment_run[ok],
                  _schedule_default(net.segment_count, seg[1:], sched_run))


def _schedule_default(count: int, seg: IntArray, sched_run: FloatArray) -> FloatArray:
    keep = seg >= 0
    sums = np.bincount(seg[keep], weights=sched_run[keep], minlength=count)
    n = np.bincount(seg[keep], minlength=count)
    return np.where(n > 0, sums / np.maximum(n, 1), 60.0)


def _table(count: int, key: IntArray, slot: IntArray, value: FloatArray, default: FloatArray) -> FloatArray:
    """Mean of ``value`` per (key, slot); falls back to the key's mean over all slots, then to ``default``."""
    flat = key * _SLOTS + slot
    sums = np.bincount(flat, weights=value, minlength=count * _SLOTS).reshape(count, _SLOTS)
    n = np.bincount(flat, minlength=count * _SLOTS).reshape(count, _SLOTS)
    overall = np.where(n.sum(1) > 0, sums.sum(1) / np.maximum(n.sum(1), 1), default)
    return np.where(n >= 3, sums / np.maximum(n, 1), overall[:, None])


def _kalman_gain(seg: IntArray, known: KnownEvents, tables: list[FloatArray], table_of: IntArray,
                 slot: IntArray) -> float:
    """Least-squares gain g in run ≈ hist + g·(previous bus's run − hist), on consecutive traversals ≤ 30 min apart,
    with ``hist`` for each traversal taken from ``tables[table_of[row]]`` (fitted without that traversal)."""
    ok = np.flatnonzero(np.isfinite(known.segment_run) & (seg >= 0))
    order = ok[np.lexsort((known.arrival[ok], seg[ok]))]
    s, t, r = seg[order], known.arrival[order], known.segment_run[order]
    pair = (s[1:] == s[:-1]) & (t[1:] - t[:-1] <= 1800.0)
    if pair.sum() < 20:
        return 0.5
    later = order[1:][pair]
    stacked = np.stack(tables)
    hist = stacked[table_of[later], seg[later], slot[later]]
    innovation = r[:-1][pair] - hist
    target = r[1:][pair] - hist
    denom = float((innovation ** 2).sum())
    return float(np.clip((innovation * target).sum() / denom, 0.0, 1.0)) if denom > 0 else 0.5
