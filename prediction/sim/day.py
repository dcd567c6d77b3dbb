"""One simulated service day: true arrival and departure times at every stop visit, and boardings.

Travel time of a segment = length / free speed, scaled by a persistent corridor factor, the hour's profile,
the day's (weather-like) factor, a per-trip and a per-traversal factor, and any incident on that segment.
Dwell is driven by boardings, and boardings by the headway since the previous bus of the route at that stop, so
a late bus collects more riders and gets later still (bunching). That feedback is solved as a fixed point over a
few passes, which keeps the whole day vectorised instead of stepping buses one by one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.network import Network
from prediction.sim.params import SimParams, demand_factor, hourly_factor

__all__ = ["DayTruth", "simulate_day"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DayTruth:
    """True times of one service day. Visits are grouped by trip in ``trips`` order (GTFS seconds, floats)."""

    day: dt.date
    trips: IntArray  # network trip indexes running this day
    vehicle: IntArray  # per trip
    visit_ptr: IntArray  # per trip, into the visit arrays below
    visit: IntArray  # network visit index
    arrival: FloatArray
    departure: FloatArray
    boardings: IntArray


@dataclass(frozen=True)
class _Visits:
    visit: IntArray
    trip: IntArray  # local trip number
    ptr: IntArray
    length: FloatArray  # metres from the previous stop of the trip
    first: npt.NDArray[np.bool_]
    last: npt.NDArray[np.bool_]


def _gather(net: Network, trips: IntArray) -> _Visits:
    counts = net.visit_ptr[trips + 1] - net.visit_ptr[trips]
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    local = np.repeat(np.arange(len(trips)), counts)
    visit = (net.visit_ptr[trips][local] + (np.arange(ptr[-1]) - ptr[:-1][local])).astype(np.int64)
    first = np.zeros(len(visit), dtype=bool)
    first[ptr[:-1]] = True
    last = np.zeros(len(visit), dtype=bool)
    last[ptr[1:] - 1] = True
    dist = net.visit_dist[visit]
    length = np.where(first, 0.0, dist - np.concatenate([[0.0], dist[:-1]]))
    return _Visits(visit, local, ptr, np.maximum(length, 0.0), first, last)


def simulate_day(net: Network, day: dt.date, params: SimParams, *, seed: int, day_factor: float,
                 corridor: FloatArray, popularity: FloatArray, pace: FloatArray | None = None) -> DayTruth:
    """Simulate service day ``day``; ``corridor`` (per segment), ``popularity`` (per stop) and ``pace`` (a running
    time multiplier per route, 1 when not given) persist across days."""
    rng = np.random.default_rng([seed, day.toordinal()])
    trips = net.trips_on(day)
    vehicle = net.vehicle_of_trip(day)[trips]
    v = _gather(net, trips)
    weekend = day.weekday() >= 5
    profile = params.weekend_profile if weekend else params.weekday_profile
    seg = net.visit_segment[v.visit]
    noise = (np.exp(rng.normal(0.0, params.trip_sigma, len(trips)))[v.trip]
             * np.exp(rng.normal(0.0, params.segment_sigma, len(v.visit)) - params.segment_sigma ** 2 / 2))
    base_run = v.length / (params.free_speed_kmh / 3.6) * np.where(seg >= 0, corridor[np.maximum(seg, 0)], 1.0)
    base_run = base_run * noise * day_factor
    if pace is not None:
        base_run = base_run * pace[net.trip_route[trips]][v.trip]
    incidents = _incidents(rng, net, seg, params)
    sched_dep = net.visit_dep[v.visit].astype(float)
    arrival, departure = sched_dep.copy(), sched_dep.copy()
    boardings = np.zeros(len(v.visit), dtype=np.int64)
    order = _block_order(vehicle, net.visit_dep[net.visit_ptr[trips]])
    for _ in range(max(1, params.bunching_iterations)):
        run = base_run * hourly_factor(profile, departure) * _incident_factor(incidents, seg, departure)
        boardings, alightings = _riders(rng, net, v, trips, arrival, popularity, weekend, params)
        dwell = np.where(boardings + alightings > 0,
                         params.door_s + np.maximum(boardings * params.boarding_s, alightings * params.alighting_s),
                         0.0)
        dwell[v.first | v.last] = 0.0
        run = run + np.where((dwell > 0) | v.last, params.stop_penalty_s, 0.0)
        run[v.first] = 0.0
        arrival, departure = _timeline(v, run, dwell, sched_dep, order, params)
    return DayTruth(day, trips, vehicle, v.ptr, v.visit, arrival, departure, boardings)


def _block_order(vehicle: IntArray, start: IntArray) -> IntArray:
    """For each trip, the local index of the same vehicle's previous trip (-1 for its first)."""
    order = np.lexsort((start, vehicle))
    prev = np.full(len(vehicle), -1, dtype=np.int64)
    same = vehicle[order][1:] == vehicle[order][:-1]
    prev[order[1:][same]] = order[:-1][same]
    return prev


def _timeline(v: _Visits, run: FloatArray, dwell: FloatArray, sched_dep: FloatArray, prev: IntArray,
              params: SimParams) -> tuple[FloatArray, FloatArray]:
    """Arrival/departure at every visit: each trip leaves its first stop at the schedule or, when its vehicle is
    still on the previous trip, after that trip ends plus a minimum layover; on the way, a bus ahead of the
    timetable waits at every timepoint until it is at most ``hold_early_s`` early (drivers hold, as they are told)."""
    step = run + dwell
    within = np.cumsum(step)
    within = within - within[v.ptr[:-1]][v.trip]  # seconds since leaving the first stop, without holding
    hold = _holding_floor(v, within, sched_dep, params)  # per visit: earliest start that no hold so far delays
    last = v.ptr[1:] - 1
    sched_start = sched_dep[v.ptr[:-1]]
    start = sched_start.copy()
    depth = _chain_depth(prev)
    for level in range(1, int(depth.max(initial=0)) + 1):
        idx = np.flatnonzero(depth == level)
        p = prev[idx]
        ready = within[last[p]] + np.maximum(start[p], hold[last[p]]) + params.min_layover_s
        start[idx] = np.maximum(sched_start[idx], ready)
    offset = np.maximum(start[v.trip], hold)
    departure = within + offset
    before = np.where(v.first, start[v.trip], np.concatenate([[0.0], offset[:-1]]))
    arrival = within - dwell + before  # reached the stop before any hold there
    return arrival, departure


def _holding_floor(v: _Visits, within: FloatArray, sched_dep: FloatArray, params: SimParams) -> FloatArray:
    """Running maximum along each trip of (hold-until time − seconds run so far) over the timepoints passed."""
    position = np.arange(len(within)) - v.ptr[:-1][v.trip]
    timepoint = (position % params.timepoint_every == 0) & ~v.first & ~v.last
    wait_until = np.where(timepoint, sched_dep - params.hold_early_s - within, -np.inf)
    floor = pd.Series(wait_until).groupby(v.trip).cummax().to_numpy(dtype=np.float64)
    return np.asarray(floor, dtype=np.float64)


def _chain_depth(prev: IntArray) -> IntArray:
    """How many trips precede each trip in its block (so blocks are resolved level by level)."""
    depth = np.zeros(len(prev), dtype=np.int64)
    current = prev.copy()
    while (current >= 0).any():
        has = current >= 0
        depth[has] += 1
        current = np.where(has, prev[np.maximum(current, 0)], -1)
    return depth


def _riders(rng: np.random.Generator, net: Network, v: _Visits, trips: IntArray, arrival: FloatArray,
            popularity: FloatArray, weekend: bool, params: SimParams) -> tuple[IntArray, IntArray]:
    """Boardings from the headway since the previous bus of the route at the stop; alightings proportional."""
    stop = net.visit_stop[v.visit]
    route = net.trip_route[trips][v.trip]
    order = np.lexsort((arrival, stop, route))
    headway = np.full(len(arrival), params.max_headway_s)
    same = (stop[order][1:] == stop[order][:-1]) & (route[order][1:] == route[order][:-1])
    gaps = np.diff(arrival[order])
    headway[order[1:][same]] = gaps[same]
    headway = np.clip(headway, 30.0, params.max_headway_s)
    rate = params.boardings_per_min_peak * popularity[stop] * demand_factor(arrival, weekend)
    boardings = rng.poisson(np.where(v.last, 0.0, rate * headway / 60.0))
    alightings = rng.poisson(np.where(v.first, 0.0, 0.8 * rate * headway / 60.0))
    return boardings.astype(np.int64), alightings.astype(np.int64)


@dataclass(frozen=True)
class _Incidents:
    segment: IntArray
    start: FloatArray
    end: FloatArray
    factor: FloatArray


def _incidents(rng: np.random.Generator, net: Network, seg: IntArray, params: SimParams) -> _Incidents:
    """Incidents slow one segment (a street between two stops) for every bus passing during 10–40 min."""
    candidates = np.unique(seg[seg >= 0])
    n = int(rng.poisson(params.incidents_per_route_day * len(net.route_ids))) if len(candidates) else 0
    start = rng.uniform(6.5 * 3600, 21 * 3600, n)
    minutes = rng.uniform(*params.incident_minutes, n)
    segments = rng.choice(candidates, n) if n else np.zeros(0, dtype=np.int64)
    return _Incidents(segments, start, start + 60.0 * minutes, rng.uniform(*params.incident_slowdown, n))


def _incident_factor(incidents: _Incidents, seg: IntArray, time: FloatArray) -> FloatArray:
    factor = np.ones(len(seg))
    for s, a, b, f in zip(incidents.segment, incidents.start, incidents.end, incidents.factor, strict=True):
        hit = (seg == s) & (time >= a) & (time <= b)
        factor[hit] *= f
    return factor
