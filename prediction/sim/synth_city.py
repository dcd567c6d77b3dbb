"""A synthetic grid city for benchmarks: streets, stops, bus routes and their timetables (numpy only)."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "SynthCity",
    "SynthRoute",
    "Timetable",
    "assign_blocks",
    "build_city",
    "departures",
    "grid_size",
    "path_km",
    "timetable",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SPACING_KM = 0.4  # between neighbouring streets, so stops are ~400 m apart
ORIGIN = (43.20, 76.80)  # south-west corner of the grid
KM_PER_DEG_LAT = 111.2
JITTER_KM = 0.03  # stops stand a little off the exact crossing, as real ones do
MIN_STOPS, MAX_STOPS = 28, 40  # stops per route
LAYOVER_S = 300  # minimum stand at a terminal before the bus turns back
DWELL_S = 20  # extra stand at transfer stops (served by >= 3 routes)


@dataclass(frozen=True)
class SynthRoute:
    """A bus route: grid nodes of direction 0, headways (minutes), speed factor."""

    index: int
    nodes: IntArray
    peak: int
    base: int
    evening: int
    weekend: int
    late: bool
    speed_factor: float

    @property
    def route_id(self) -> str:
        return f"R{self.index + 1}"


@dataclass(frozen=True)
class SynthCity:
    """Street grid of ``size`` x ``size`` crossings (node = row * size + column) and its routes."""

    size: int
    lat: FloatArray
    lon: FloatArray
    routes: list[SynthRoute]


@dataclass(frozen=True)
class Timetable:
    """Trips of one route direction and service: departure and per-stop arrival/departure seconds."""

    start: IntArray  # (trips,)
    arrival: IntArray  # (trips, stops)
    departure: IntArray  # (trips, stops)


def grid_size(routes: int) -> int:
    """Streets per side: large enough for the longest route, growing with the network."""
    return max(MAX_STOPS + 2, math.ceil(3 * math.sqrt(routes)))


def build_city(routes: int, seed: int) -> SynthCity:
    """Lay out the grid and draw every route; route k depends only on (seed, k, grid size)."""
    if routes < 1:
        raise ValueError("a synthetic city needs at least one route")
    size = grid_size(routes)
    rng = np.random.default_rng([seed, 0])
    row, col = np.divmod(np.arange(size * size, dtype=np.int64), size)
    km_per_deg_lon = KM_PER_DEG_LAT * math.cos(math.radians(ORIGIN[0]))
    north_km = row * SPACING_KM + rng.uniform(-JITTER_KM, JITTER_KM, size * size)
    east_km = col * SPACING_KM + rng.uniform(-JITTER_KM, JITTER_KM, size * size)
    lat = np.round(ORIGIN[0] + north_km / KM_PER_DEG_LAT, 5)
    lon = np.round(ORIGIN[1] + east_km / km_per_deg_lon, 5)
    drawn = [_draw_route(k, size, np.random.default_rng([seed, 1, k])) for k in range(routes)]
    return SynthCity(size=size, lat=lat, lon=lon, routes=drawn)


def _draw_route(index: int, size: int, rng: np.random.Generator) -> SynthRoute:
    """An L- or Z-shaped path along the streets, alternating between rows and columns."""
    n_stops = int(rng.integers(MIN_STOPS, MAX_STOPS + 1))
    n_legs = int(rng.integers(2, 4))
    cuts = np.sort(rng.choice(np.arange(3, n_stops - 3), size=n_legs - 1, replace=False))
    lengths = np.diff(np.concatenate(([0], cuts, [n_stops - 1])))
    horizontal = bool(rng.integers(0, 2))
    steps_row: list[int] = []
    steps_col: list[int] = []
    for length in lengths:
        sign = 1 if rng.integers(0, 2) else -1
        steps_row += [0 if horizontal else sign] * int(length)
        steps_col += [sign if horizontal else 0] * int(length)
        horizontal = not horizontal
    rows = np.concatenate(([0], np.cumsum(steps_row)))
    cols = np.concatenate(([0], np.cumsum(steps_col)))
    row0 = int(rng.integers(-rows.min(), size - rows.max()))
    col0 = int(rng.integers(-cols.min(), size - cols.max()))
    nodes = ((rows + row0) * size + (cols + col0)).astype(np.int64)
    return SynthRoute(
        index=index, nodes=nodes, peak=int(rng.integers(6, 11)), base=int(rng.integers(12, 16)),
        evening=int(rng.integers(15, 21)), weekend=int(rng.integers(12, 19)), late=bool(rng.random() < 0.3),
        speed_factor=float(rng.uniform(0.9, 1.1)),
    )


def path_km(lat: FloatArray, lon: FloatArray) -> FloatArray:
    """Distance along a polyline from its first point, in kilometres (haversine)."""
    p = np.radians(lat)
    dlat = np.diff(p)
    dlon = np.radians(np.diff(lon))
    h = np.sin(dlat / 2) ** 2 + np.cos(p[:-1]) * np.cos(p[1:]) * np.sin(dlon / 2) ** 2
    steps = 2 * 6371.0088 * np.arcsin(np.sqrt(h))
    return np.concatenate(([0.0], np.cumsum(steps)))


def departures(route: SynthRoute, service_id: str, offset_min: int) -> IntArray:
    """Departure times (s) from a terminal: peak 07-10 and 17-20, midday, evening; flatter weekends."""
    minutes: list[int] = []
    if service_id == "weekday":
        t, last = 360 + offset_min, (24 * 60 + 30 if route.late else 23 * 60 + 30)
        while t <= last:
            minutes.append(t)
            if 420 <= t < 600 or 1020 <= t < 1200:
                t += route.peak
            else:
                t += route.base if t < 1200 else route.evening
    else:
        t, last = 390 + offset_min, 23 * 60
        while t <= last:
            minutes.append(t)
            t += route.weekend + (5 if t < 480 or t >= 1260 else 0)
    return np.asarray(minutes, dtype=np.int64) * 60


def _speed_kmh(service_id: str, start: IntArray) -> FloatArray:
    """Average bus speed including dwell, by departure hour: slowest in the weekday peaks."""
    hour = start / 3600
    if service_id == "weekend":
        return np.where((hour < 9) | (hour >= 20), 21.0, 19.0)
    peak = ((hour >= 7) & (hour < 10)) | ((hour >= 17) & (hour < 20))
    night = (hour < 7) | (hour >= 22)
    return np.select([peak, night, hour >= 20], [16.5, 22.0, 20.0], default=18.5)


def timetable(route: SynthRoute, service_id: str, stop_km: FloatArray, dwell_s: IntArray,
              offset_min: int) -> Timetable:
    """Stop times of every trip of one direction, vectorised over trips and stops."""
    start = departures(route, service_id, offset_min)
    speed = _speed_kmh(service_id, start) * route.speed_factor
    run_s = np.rint(stop_km[None, :] / speed[:, None] * 3600).astype(np.int64)
    waited = np.cumsum(dwell_s) - dwell_s  # dwell spent at earlier stops
    arrival = start[:, None] + run_s + waited[None, :]
    return Timetable(start=start, arrival=arrival, departure=arrival + dwell_s[None, :])


def assign_blocks(starts: list[int], ends: list[int], directions: list[int]) -> list[int]:
    """Chain trips (sorted by start) into buses shuttling between the two terminals; returns bus numbers."""
    waiting: list[list[tuple[int, int]]] = [[], []]  # buses standing at the terminal where direction d starts
    buses: list[int] = []
    fleet = 0
    for start, end, direction in zip(starts, ends, directions, strict=True):
        stand = waiting[direction]
        if stand and stand[0][0] <= start:
            _, bus = heapq.heappop(stand)
        else:
            fleet += 1
            bus = fleet
        heapq.heappush(waiting[1 - direction], (end + LAYOVER_S, bus))
        buses.append(bus)
    return buses
