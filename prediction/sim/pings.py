"""GPS pings from a simulated day: each vehicle reports every few seconds along its true space–time path.

A vehicle's path is piecewise linear through knots (time, distance along its current trip): standing at the
first stop from the end of its previous trip (layover, reporting the next trip as GTFS-rt feeds do), then
arrival and departure at each stop. Pings get GPS noise, rare outliers, and are missed, delayed (written out
of order) or duplicated at configurable rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.network import Network
from prediction.sim.day import DayTruth
from prediction.sim.params import SimParams

__all__ = ["SimPings", "generate_pings"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_SPAN = 400_000.0  # seconds per vehicle on the shared key axis; larger than any service day
_ALIGHT_S = 20.0
_M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class SimPings:
    """Pings of one day in file order: GTFS seconds of the service day, vehicle number, local trip number."""

    t: FloatArray
    vehicle: IntArray
    trip: IntArray
    lat: FloatArray
    lon: FloatArray
    bearing: FloatArray
    speed: FloatArray
    parked: npt.NDArray[np.bool_]  # after the vehicle's last trip: standing at the terminal, no trip reported


def _knots(truth: DayTruth, net: Network, params: SimParams) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per trip, the reporting window start and the knots (key, distance) of every vehicle's path."""
    ptr = truth.visit_ptr
    first, last = ptr[:-1], ptr[1:] - 1
    start = truth.departure[first] - params.pull_out_s
    order = np.lexsort((truth.departure[first], truth.vehicle))
    same = truth.vehicle[order][1:] == truth.vehicle[order][:-1]
    start[order[1:][same]] = truth.arrival[last[order[:-1][same]]] + _ALIGHT_S
    end = truth.arrival[last] + _ALIGHT_S - 1e-3  # strictly before the next trip's window opens
    base = truth.vehicle.astype(float) * _SPAN
    dist = net.visit_dist[truth.visit]
    n = len(truth.visit)
    trip_of = np.repeat(np.arange(len(first)), np.diff(ptr))
    # knots: window start, then (arrival, departure) per visit, then window end
    keys = np.concatenate([start + base, truth.arrival + base[trip_of], truth.departure + base[trip_of],
                           end + base])
    dists = np.concatenate([dist[first], dist, dist, dist[last]])
    rank = np.concatenate([np.zeros(len(first)), 1 + np.arange(n) * 2.0 - 2 * ptr[:-1][trip_of],
                           2 + np.arange(n) * 2.0 - 2 * ptr[:-1][trip_of], np.full(len(first), 2.0 * n + 3)])
    trip_key = np.concatenate([np.arange(len(first)), trip_of, trip_of, np.arange(len(first))])
    sort = np.lexsort((rank, trip_key, keys))
    return start + base, keys[sort], dists[sort]


def generate_pings(truth: DayTruth, net: Network, params: SimParams, interval_s: float, *,
                   seed: int) -> SimPings:
    """All pings of the day, with noise and reporting faults applied (deterministic for ``seed``)."""
    rng = np.random.default_rng([seed, truth.day.toordinal(), 7])
    window_key, knot_key, knot_dist = _knots(truth, net, params)
    ptr = truth.visit_ptr
    end_key = truth.arrival[ptr[1:] - 1] + _ALIGHT_S + truth.vehicle * _SPAN
    vehicles = np.unique(truth.vehicle)
    # pandas-stubs: .loc does not list integer arrays of labels
    v_start = pd.Series(window_key).groupby(truth.vehicle).min().loc[vehicles].to_numpy()  # type: ignore[index]
    v_end = pd.Series(end_key).groupby(truth.vehicle).max().loc[vehicles].to_numpy() + params.pull_out_s  # type: ignore[index]
    phase = rng.uniform(0.0, interval_s, len(vehicles))
    counts = np.maximum(((v_end - v_start - phase) // interval_s).astype(np.int64) + 1, 0)
    owner = np.repeat(np.arange(len(vehicles)), counts)
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    key = v_start[owner] + phase[owner] + step * interval_s + rng.uniform(-1.0, 1.0, len(owner))
    trip_order = np.argsort(window_key, kind="stable")
    trip = trip_order[np.clip(np.searchsorted(window_key[trip_order], key, side="right") - 1, 0, None)]
    keep = truth.vehicle[trip] == vehicles[owner]
    key, trip = key[keep], trip[keep]
    parked = key > end_key[trip]  # only past a vehicle's last trip: its windows are contiguous before that
    dist = np.where(parked, net.visit_dist[truth.visit[ptr[1:] - 1]][trip], np.interp(key, knot_key, knot_dist))
    speed = np.where(parked, 0.0, _speed(key, knot_key, knot_dist))
    lat, lon, bearing = _positions(net, truth, trip, dist)
    t = key - truth.vehicle[trip] * _SPAN
    lat, lon = _gps_noise(rng, lat, lon, params)
    bearing = (bearing + rng.normal(0.0, 4.0, len(bearing))) % 360.0
    order = _reporting_faults(rng, len(t), t, params)
    return SimPings(t[order], truth.vehicle[trip][order], trip[order], lat[order], lon[order], bearing[order],
                    speed[order], parked[order])


def _speed(key: FloatArray, knot_key: FloatArray, knot_dist: FloatArray) -> FloatArray:
    j = np.clip(np.searchsorted(knot_key, key, side="right") - 1, 0, len(knot_key) - 2)
    dt = knot_key[j + 1] - knot_key[j]
    dd = knot_dist[j + 1] - knot_dist[j]
    return np.where((dt > 0) & (dd > 0), dd / np.maximum(dt, 1e-9), 0.0)


def _positions(net: Network, truth: DayTruth, trip: IntArray, dist: FloatArray
               ) -> tuple[FloatArray, FloatArray, FloatArray]:
    lat, lon, bearing = np.zeros(len(trip)), np.zeros(len(trip)), np.zeros(len(trip))
    shapes = net.trip_shape[truth.trips[trip]]
    for shape_id in np.unique(shapes):
        rows = np.flatnonzero(shapes == shape_id)
        lat[rows], lon[rows], bearing[rows] = net.lines[str(shape_id)].locate(dist[rows])
    return lat, lon, bearing


def _gps_noise(rng: np.random.Generator, lat: FloatArray, lon: FloatArray,
               params: SimParams) -> tuple[FloatArray, FloatArray]:
    north = rng.normal(0.0, params.gps_sigma_m, len(lat))
    east = rng.normal(0.0, params.gps_sigma_m, len(lat))
    outlier = rng.random(len(lat)) < params.gps_outlier_share
    angle = rng.uniform(0, 2 * np.pi, outlier.sum())
    size = rng.uniform(50.0, 300.0, outlier.sum())
    north[outlier] += size * np.cos(angle)
    east[outlier] += size * np.sin(angle)
    return lat + north / _M_PER_DEG, lon + east / (_M_PER_DEG * np.cos(np.radians(lat)))


def _reporting_faults(rng: np.random.Generator, n: int, t: FloatArray, params: SimParams) -> IntArray:
    """Row order of the written file: missed pings dropped, a few duplicated, delayed ones written late."""
    kept = np.flatnonzero(rng.random(n) >= params.missed_ping_share)
    dup = kept[rng.random(len(kept)) < params.duplicate_ping_share]
    rows = np.concatenate([kept, dup])
    arrival = t[rows] + np.where(rng.random(len(rows)) < params.delayed_ping_share, rng.uniform(30, 180, len(rows)),
                                 0.0)
    return rows[np.argsort(arrival, kind="stable")]
