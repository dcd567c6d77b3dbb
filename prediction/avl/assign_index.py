"""What trip assignment looks up: shapes near a ping (a grid over every shape segment) and the trips of a service
day that run on a shape around a time, with their schedule along the shape and their block successor.

Every shape is projected into one flat frame for the whole network (metres east/north of the feed's mean
latitude), so one grid serves all shapes; distances along a shape stay the shape's own (``ShapeLine.dist``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from prediction.geo import EARTH_RADIUS_M
from prediction.gtfs.servicedays import service_day_start
from prediction.network import Network

__all__ = ["NearShapes", "ScheduledRun", "ShapeIndex", "TripTable"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_SCALE = np.pi / 180.0 * EARTH_RADIUS_M


@dataclass(frozen=True)
class NearShapes:
    """For a batch of pings, every shape segment within the radius: CSR by ping (``ptr``), rows sorted by ping,
    shape and distance along; ``shape``, ``along`` and ``offset`` as Python lists for the per-ping loop."""

    ptr: list[int]
    shape: list[int]
    along: list[float]
    offset: list[float]


class ShapeIndex:
    """Every segment of every shape in one metric frame, bucketed in square cells of ``cell_m``.

    A cell lists the segments passing within ``radius_m`` of any point in it, so the segments near a ping are
    those of its own cell alone.
    """

    def __init__(self, net: Network, radius_m: float, cell_m: float = 250.0) -> None:
        self.radius_m = radius_m
        self.cell_m = cell_m
        self.shape_ids = sorted(net.lines)
        self.shape_code = {shape_id: i for i, shape_id in enumerate(self.shape_ids)}
        lats = [net.lines[s].lat for s in self.shape_ids]
        self.lat0 = float(np.mean(np.concatenate(lats))) if lats else 0.0
        self.length = [net.lines[s].length_m for s in self.shape_ids]
        parts: dict[str, list[FloatArray]] = {k: [] for k in ("ax", "ay", "bx", "by", "d0", "d1", "shape")}
        for code, shape_id in enumerate(self.shape_ids):
            line = net.lines[shape_id]
            x, y = self._xy(line.lat, line.lon)
            if len(x) == 1:
                x, y, dist = np.repeat(x, 2), np.repeat(y, 2), np.repeat(line.dist, 2)
            else:
                dist = line.dist
            for key, values in (("ax", x[:-1]), ("ay", y[:-1]), ("bx", x[1:]), ("by", y[1:]), ("d0", dist[:-1]),
                                ("d1", dist[1:]), ("shape", np.full(len(x) - 1, code, dtype=float))):
                parts[key].append(values)
        cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
        self.ax, self.ay, self.bx, self.by = cat["ax"], cat["ay"], cat["bx"], cat["by"]
        self.d0, self.dd = cat["d0"], cat["d1"] - cat["d0"]
        self.seg_shape = cat["shape"].astype(np.int64)
        self.dx, self.dy = self.bx - self.ax, self.by - self.ay
        self.seg2 = np.maximum(self.dx ** 2 + self.dy ** 2, 1e-9)
        self._build_grid()

    def _xy(self, lat: FloatArray, lon: FloatArray) -> tuple[FloatArray, FloatArray]:
        return np.asarray(lon, dtype=float) * _SCALE * np.cos(np.radians(self.lat0)), np.asarray(lat) * _SCALE

    def _build_grid(self) -> None:
        c, r = self.cell_m, self.radius_m
        lo_x = np.floor((np.minimum(self.ax, self.bx) - r) / c).astype(np.int64)
        hi_x = np.floor((np.maximum(self.ax, self.bx) + r) / c).astype(np.int64)
        lo_y = np.floor((np.minimum(self.ay, self.by) - r) / c).astype(np.int64)
        hi_y = np.floor((np.maximum(self.ay, self.by) + r) / c).astype(np.int64)
        keys, segs = [], []
        for s in range(len(self.ax)):  # bounding boxes: a few cells per segment, built once per feed
            gx, gy = np.meshgrid(np.arange(lo_x[s], hi_x[s] + 1), np.arange(lo_y[s], hi_y[s] + 1))
            keys.append(self._key(gx.ravel(), gy.ravel()))
            segs.append(np.full(gx.size, s, dtype=np.int64))
        key = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        seg = np.concatenate(segs) if segs else np.zeros(0, dtype=np.int64)
        order = np.lexsort((seg, key))
        self.cell_keys, cell_start = np.unique(key[order], return_index=True)
        self.cell_ptr = np.append(cell_start, len(order)).astype(np.int64)
        self.cell_segs = seg[order]

    @staticmethod
    def _key(gx: IntArray, gy: IntArray) -> IntArray:
        return (gx + 2 ** 30) * 2 ** 31 + (gy + 2 ** 30)

    def near(self, lat: FloatArray, lon: FloatArray) -> NearShapes:
        """Shape segments within ``radius_m`` of each ping, with the foot point's distance along and offset."""
        px, py = self._xy(np.asarray(lat, dtype=float), np.asarray(lon, dtype=float))
        key = self._key(np.floor(px / self.cell_m).astype(np.int64), np.floor(py / self.cell_m).astype(np.int64))
        pos = np.clip(np.searchsorted(self.cell_keys, key), 0, max(len(self.cell_keys) - 1, 0))
        hit = (self.cell_keys[pos] == key) if len(self.cell_keys) else np.zeros(len(key), dtype=bool)
        lo = np.where(hit, self.cell_ptr[pos] if len(self.cell_keys) else 0, 0)
        hi = np.where(hit, self.cell_ptr[np.minimum(pos + 1, len(self.cell_ptr) - 1)], 0)
        counts = hi - lo
        ping = np.repeat(np.arange(len(key)), counts)
        seg = self.cell_segs[np.repeat(lo, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts,
                                                                                        counts)]
        u = np.clip(((px[ping] - self.ax[seg]) * self.dx[seg] + (py[ping] - self.ay[seg]) * self.dy[seg])
                    / self.seg2[seg], 0.0, 1.0)
        offset = np.hypot(px[ping] - self.ax[seg] - u * self.dx[seg], py[ping] - self.ay[seg] - u * self.dy[seg])
        keep = offset <= self.radius_m
        ping, seg, offset = ping[keep], seg[keep], offset[keep]
        along = self.d0[seg] + u[keep] * self.dd[seg]
        shape = self.seg_shape[seg]
        order = np.lexsort((along, shape, ping))
        ptr = np.searchsorted(ping[order], np.arange(len(key) + 1))
        return NearShapes(ptr.tolist(), shape[order].tolist(), along[order].tolist(), offset[order].tolist())


@dataclass
class ScheduledRun:
    """One run of a trip on one service day: epoch seconds of its first departure and last arrival, its schedule
    along the shape (distances and epoch times of each stop), and the run its block continues with."""

    trip: int
    date: str
    shape: int
    start: float
    end: float
    stop_dist: list[float]
    stop_time: list[float]
    after: int = -1  # slot of the block's next trip, -1 if none known

    def scheduled_at(self, along: float) -> float:
        """Scheduled epoch time at ``along`` metres (linear between stops)."""
        dist, time = self.stop_dist, self.stop_time
        k = bisect.bisect_right(dist, along)
        if k <= 0:
            return time[0]
        if k >= len(dist):
            return time[-1]
        span = dist[k] - dist[k - 1]
        share = (along - dist[k - 1]) / span if span > 0 else 1.0
        return time[k - 1] + share * (time[k] - time[k - 1])


class TripTable:
    """Runs of trips (slots) of the service days loaded, findable by shape and time. Days before those a call
    needs are forgotten, so a live process holds two or three days of runs, not every day it has run."""

    def __init__(self, net: Network, index: ShapeIndex) -> None:
        self.net = net
        self.index = index
        self.slots: dict[int, ScheduledRun] = {}
        self._next = 0
        self._days: dict[dt.date, list[int]] = {}  # day -> its slots
        self._by_shape: dict[int, tuple[list[float], list[int]]] = {}  # shape -> (sorted starts, slots)
        self.longest: dict[int, float] = {}  # shape -> longest scheduled run on it, seconds

    def ensure_days(self, epochs: FloatArray) -> None:
        """Load the service days that may have trips running at these epoch seconds (the local day and the one
        before, for trips past midnight); forget the days before those."""
        tz = self.net.tz
        hours = np.unique(np.floor(np.asarray(epochs, dtype=float) / 3600.0))
        wanted: set[dt.date] = set()
        for hour in hours:
            local = dt.datetime.fromtimestamp(float(hour) * 3600.0, tz).date()
            wanted.update((local, local - dt.timedelta(days=1)))
        if not wanted:
            return
        stale = [day for day in self._days if day < min(wanted)]
        missing = sorted(wanted - set(self._days))
        for day in stale:
            for slot in self._days.pop(day):
                del self.slots[slot]
        for day in missing:
            self._load(day)
        if stale or missing:
            self._index()

    def _load(self, day: dt.date) -> None:
        net = self.net
        running = net.trips_on(day)
        origin = service_day_start(day, net.tz).timestamp()
        label = day.strftime("%Y%m%d")
        slot_of = {}
        for trip in running.tolist():
            lo, hi = int(net.visit_ptr[trip]), int(net.visit_ptr[trip + 1])
            slot_of[trip] = self._next
            self.slots[self._next] = ScheduledRun(
                trip, label, self.index.shape_code[str(net.trip_shape[trip])], origin + float(net.visit_dep[lo]),
                origin + float(net.visit_arr[hi - 1]), net.visit_dist[lo:hi].astype(float).tolist(),
                (origin + net.visit_arr[lo:hi].astype(float)).tolist())
            self._next += 1
        self._days[day] = list(slot_of.values())
        if len(running) == 0:
            return
        vehicle = net.vehicle_of_trip(day)
        chains: dict[int, list[int]] = {}
        for trip in running.tolist():
            if vehicle[trip] >= 0:
                chains.setdefault(int(vehicle[trip]), []).append(slot_of[trip])
        for chain in chains.values():
            chain.sort(key=lambda s: self.slots[s].start)
            for a, b in itertools.pairwise(chain):
                self.slots[a].after = b

    def _index(self) -> None:
        groups: dict[int, list[tuple[float, int]]] = {}
        self.longest = {}
        for s, slot in self.slots.items():
            groups.setdefault(slot.shape, []).append((slot.start, s))
            self.longest[slot.shape] = max(self.longest.get(slot.shape, 0.0), slot.end - slot.start)
        self._by_shape = {}
        for shape, pairs in groups.items():
            pairs.sort()
            self._by_shape[shape] = ([p[0] for p in pairs], [p[1] for p in pairs])

    def starting(self, shape: int, lo: float, hi: float) -> list[int]:
        """Slots of ``shape`` whose first departure is in [lo, hi]."""
        found = self._by_shape.get(shape)
        if found is None:
            return []
        starts, slots = found
        return slots[bisect.bisect_left(starts, lo):bisect.bisect_right(starts, hi)]
