"""Observed stop events: arrival and departure at every stop of a trip, interpolated between its pings.

Between two pings the bus's time is shared out along a *reference curve* — the schedule's running time per
segment plus an expected dwell at each stop — scaled to the observed interval. So a 4-minute gap that spans
three stops puts their events where the schedule's proportions say, not evenly by distance. A stop with a ping
inside its zone was seen: its arrival is the approach from the last ping before the zone at the trip's observed
pace (never after that ping), its departure likewise from the first ping after it. Stops passed between pings
are flagged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.matching import MatchSettings, ShapeLine, project_progress
from prediction.servicedays import service_day_start
from prediction.sim_network import SimNetwork

__all__ = ["EventSettings", "derive_events", "resolve_start_dates"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class EventSettings:
    """How close counts as "at the stop", the dwell expected where the schedule gives none, bridging limits."""

    stop_radius_m: float = 25.0
    default_dwell_s: float = 10.0
    bridge_gap_s: float = 600.0  # a vehicle's ping just before/after a trip can close its ends if this recent
    bridge_distance_m: float = 100.0
    pace_window_s: float = 300.0  # the trip's recent pace stretches approach and exit times at a seen stop
    pace_min_pings: int = 5
    match: MatchSettings = field(default_factory=MatchSettings)


def resolve_start_dates(pings: pd.DataFrame, net: SimNetwork) -> pd.Series:
    """The service day of each ping's trip where the feed gave none: the day (local date, or the one before for
    trips past midnight) whose scheduled run of that trip is nearest the ping's time."""
    out = pings["start_date"].astype("string").copy()
    todo = out.isna() & pings["trip_id"].notna()
    if not todo.any():
        return out
    index = pd.Series(np.arange(len(net.trip_ids)), index=net.trip_ids)
    trip = index.reindex(pings.loc[todo, "trip_id"].to_numpy()).to_numpy()
    known = ~np.isnan(trip)
    t = pings.loc[todo, "t"].to_numpy(dtype=float)[known]
    trip_i = trip[known].astype(np.int64)
    start = net.visit_dep[net.visit_ptr[trip_i]].astype(float)
    end = net.visit_arr[net.visit_ptr[trip_i + 1] - 1].astype(float)
    local = pd.to_datetime(t, unit="s", utc=True).tz_convert(net.tz).date
    best_day, best_gap = np.empty(len(t), dtype=object), np.full(len(t), np.inf)
    origins: dict[dt.date, float] = {}
    for back in (0, 1):
        days = np.array([d - dt.timedelta(days=back) for d in local], dtype=object)
        origin = np.array([origins.setdefault(d, service_day_start(d, net.tz).timestamp()) for d in days])
        gap = np.maximum(np.maximum(origin + start - t, t - origin - end), 0.0)
        better = gap < best_gap
        best_day[better], best_gap[better] = days[better], gap[better]
    labels = np.array([d.strftime("%Y%m%d") for d in best_day], dtype=object)
    rows = np.flatnonzero(todo.to_numpy())[known]
    out.iloc[rows] = labels
    return out


def derive_events(net: SimNetwork, pings: pd.DataFrame, settings: EventSettings | None = None) -> pd.DataFrame:
    """Stop events of every trip seen in ``pings`` (vehicle_id, t, latitude, longitude, trip_id, start_date).

    Returns trip_id, start_date, stop_sequence, stop_id, arrival and departure (epoch seconds),
    passed_between_pings and known_at: epoch seconds of the ping that made the event knowable, the first usable
    ping past the stop's zone (for an event interpolated between pings at t1 and t2, t2), never before the
    departure. Event times use no later ping, except that the projection checks each ping against the next one
    for GPS spikes and picks segments on looping shapes with the whole trip in view. Stops the pings cannot place
    (before the first or after the last usable ping) are left out rather than guessed.
    """
    cfg = settings or EventSettings()
    frame = pings.sort_values(["vehicle_id", "t"], kind="stable").drop_duplicates(["vehicle_id", "t"])
    frame = frame.reset_index(drop=True)
    frame["start_date"] = resolve_start_dates(frame, net)
    index = pd.Series(np.arange(len(net.trip_ids)), index=net.trip_ids)
    frame["_trip"] = index.reindex(frame["trip_id"].to_numpy()).to_numpy()
    usable = frame[frame["_trip"].notna() & frame["start_date"].notna()]
    arrays = _PingArrays(frame["vehicle_id"].to_numpy(), frame["t"].to_numpy(dtype=float),
                         frame["latitude"].to_numpy(dtype=float), frame["longitude"].to_numpy(dtype=float))
    parts = []
    for (trip_id, start_date), group in usable.groupby(["trip_id", "start_date"], sort=False):
        vehicle = group["vehicle_id"].value_counts().index[0]  # a trip claimed by two buses: trust the usual one
        rows = group.index[group["vehicle_id"] == vehicle].to_numpy()
        part = _trip_events(net, arrays, int(group["_trip"].iloc[0]), rows, cfg)
        if part is not None:
            part.insert(0, "start_date", start_date)
            part.insert(0, "trip_id", trip_id)
            parts.append(part)
    columns = ["trip_id", "start_date", "stop_sequence", "stop_id", "arrival", "departure", "passed_between_pings",
               "known_at"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


@dataclass(frozen=True)
class _PingArrays:
    """All pings sorted by vehicle and time, as arrays (so per-trip work never touches the whole frame)."""

    vehicle: npt.NDArray[np.object_]
    t: FloatArray
    lat: FloatArray
    lon: FloatArray


def _trip_events(net: SimNetwork, pings: _PingArrays, trip: int, rows: IntArray,
                 cfg: EventSettings) -> pd.DataFrame | None:
    line = net.lines[str(net.trip_shape[trip])]
    t = pings.t[rows]
    progress = project_progress(line, pings.lat[rows], pings.lon[rows], t, cfg.match)
    good = ~np.isnan(progress.dist_m)
    t, d = t[good], progress.dist_m[good]
    t, d = _bridge(pings, rows, line, t, d, cfg)
    if len(t) < 2:
        return None
    visits = np.arange(net.visit_ptr[trip], net.visit_ptr[trip + 1])
    stops = net.visit_dist[visits]
    arr_ref, dep_ref = _reference(net, visits, cfg.default_dwell_s)
    arrival, departure, passed, known = _stop_times(t, d, stops, arr_ref, dep_ref, cfg.stop_radius_m,
                                                    cfg.pace_window_s, cfg.pace_min_pings)
    keep = ~np.isnan(arrival) & ~np.isnan(departure)
    if not keep.any():
        return None
    return pd.DataFrame({
        "stop_sequence": net.visit_seq[visits][keep], "stop_id": net.stop_ids[net.visit_stop[visits]][keep],
        "arrival": arrival[keep], "departure": departure[keep], "passed_between_pings": passed[keep],
        "known_at": known[keep],
    })


def _bridge(pings: _PingArrays, rows: IntArray, line: ShapeLine, t: FloatArray, d: FloatArray,
            cfg: EventSettings) -> tuple[FloatArray, FloatArray]:
    """Borrow the vehicle's ping just before and just after this trip when it stands at the trip's ends:
    feeds switch to the next trip the moment a bus arrives, so the arrival at the last stop is only
    visible under the next trip's id (and the departure from the first, sometimes, under the previous one)."""
    vehicles, times = pings.vehicle, pings.t
    for neighbour, at_end in ((int(rows[-1]) + 1, True), (int(rows[0]) - 1, False)):
        if not 0 <= neighbour < len(times) or vehicles[neighbour] != vehicles[rows[0]]:
            continue
        if abs(times[neighbour] - (t[-1] if at_end and len(t) else t[0] if len(t) else times[rows[0]])) \
                > cfg.bridge_gap_s:
            continue
        along, offset = line.nearest(pings.lat[[neighbour]], pings.lon[[neighbour]])
        if offset[0] > cfg.match.off_route_m:
            continue
        if at_end and along[0] >= line.length_m - cfg.bridge_distance_m:
            t, d = np.append(t, times[neighbour]), np.append(d, max(along[0], d[-1] if len(d) else 0.0))
        elif not at_end and along[0] <= cfg.bridge_distance_m:
            t, d = np.insert(t, 0, times[neighbour]), np.insert(d, 0, min(along[0], d[0] if len(d) else along[0]))
    return t, d


def _reference(net: SimNetwork, visits: IntArray, default_dwell: float) -> tuple[FloatArray, FloatArray]:
    """Reference seconds from the trip's start at which the bus reaches and leaves each stop."""
    arr = net.visit_arr[visits].astype(float)
    dep = net.visit_dep[visits].astype(float)
    run = np.maximum(arr[1:] - dep[:-1], 1.0)
    dwell = np.maximum(dep - arr, default_dwell)
    dwell[[0, -1]] = 0.0
    leave = np.zeros(len(visits))
    reach = np.zeros(len(visits))
    for k in range(1, len(visits)):  # trips have tens of stops; a cumulative sum would need the same two lines
        reach[k] = leave[k - 1] + run[k - 1]
        leave[k] = reach[k] + dwell[k]
    return reach, leave


def _stop_times(t: FloatArray, d: FloatArray, stops: FloatArray, reach: FloatArray, leave: FloatArray,
                radius: float, pace_window_s: float = 300.0, pace_min_pings: int = 5
                ) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_], FloatArray]:
    """Arrival, departure, passed-between-pings and ``known_at`` of every stop (NaN where not placeable).

    Every event uses only pings up to the first one past the stop's zone, whose time is its ``known_at``: the
    pace that stretches the approach and the exit is measured from the trip's first ping to that ping, so a
    later ping never moves an event that was already known (the incremental tracker relies on this).
    """
    knots_x = np.repeat(stops, 2)
    knots_y = np.column_stack([reach, leave]).ravel()
    ref = np.interp(d, knots_x, knots_y)  # reference seconds of each ping's position
    n = len(t)
    a = np.searchsorted(d, stops - radius, side="left") - 1  # last ping before the stop's zone
    e = np.searchsorted(d, stops + radius, side="right")  # first ping after it
    seen = e > a + 1
    has_a, has_e = a >= 0, e < n
    ai, ei = np.clip(a, 0, n - 1), np.clip(e, 0, n - 1)
    bi, ci = np.clip(a + 1, 0, n - 1), np.clip(e - 1, 0, n - 1)
    pace = _pace(t, ref, ei, pace_window_s, pace_min_pings)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac_arr = (reach - ref[ai]) / (ref[ei] - ref[ai])
        frac_dep = (leave - ref[ai]) / (ref[ei] - ref[ai])
    between_arr = t[ai] + (t[ei] - t[ai]) * np.clip(frac_arr, 0.0, 1.0)
    between_dep = t[ai] + (t[ei] - t[ai]) * np.clip(frac_dep, 0.0, 1.0)
    seen_arr = np.where(has_a, np.clip(t[ai] + (reach - ref[ai]) * pace, t[ai], t[bi]), np.nan)
    seen_dep = np.where(has_e, np.clip(t[ei] - (ref[ei] - leave) * pace, t[ci], t[ei]), np.nan)
    arrival = np.where(seen, seen_arr, np.where(has_a & has_e, between_arr, np.nan))
    departure = np.where(seen, seen_dep, np.where(has_a & has_e, between_dep, np.nan))
    arrival[0] = departure[0]  # GTFS convention: a trip's first arrival is its departure, its last departure
    departure[-1] = arrival[-1]  # its arrival
    known = np.where(has_e, t[ei], np.nan)
    if seen[-1]:  # the last stop has no departure: its arrival is known from the first ping in its zone
        known[-1] = t[bi[-1]]
        if np.isnan(arrival[-1]):
            arrival[-1] = departure[-1] = t[bi[-1]]
    arrival, departure = _monotone(arrival, departure), _monotone_dep(arrival, departure)
    known = np.where(np.isnan(arrival) | np.isnan(departure), np.nan, np.fmax(known, departure))
    return arrival, departure, ~seen, known


def _pace(t: FloatArray, ref: FloatArray, upto: IntArray, window_s: float, min_pings: int) -> FloatArray:
    """Observed ÷ reference seconds over the last ``window_s`` (at least ``min_pings`` pings) up to ping
    ``upto`` (per stop), clipped to 0.3–3.

    Local, because traffic changes along a trip (the whole trip's pace gave 4.2 s MAE at 20 s pings, the last
    5 min 3.1 s); causal, so the pace an event uses is fixed once the ping that makes it known has arrived.
    """
    first = np.searchsorted(t, t[upto] - window_s, side="left")
    first = np.minimum(first, np.maximum(upto - min_pings, 0))
    span = ref[upto] - ref[first]
    with np.errstate(divide="ignore", invalid="ignore"):
        pace = np.clip((t[upto] - t[first]) / span, 0.3, 3.0)
    return np.where(span > 30.0, pace, 1.0)


def _interleaved(arrival: FloatArray, departure: FloatArray) -> FloatArray:
    times = np.column_stack([arrival, departure]).ravel()
    filled = np.where(np.isnan(times), -np.inf, times)
    running = np.maximum.accumulate(filled)
    return np.where(np.isnan(times), np.nan, running)


def _monotone(arrival: FloatArray, departure: FloatArray) -> FloatArray:
    return _interleaved(arrival, departure)[0::2]


def _monotone_dep(arrival: FloatArray, departure: FloatArray) -> FloatArray:
    return _interleaved(arrival, departure)[1::2]
