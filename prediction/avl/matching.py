"""Matching: place GPS pings on a trip's shape (distance along it); ``prediction.avl.assign`` finds the trip when a
ping has none.

Projection works in a local flat frame per shape (metres east/north of the shape's mean latitude), which at
city scale differs from the haversine distance by far less than GPS noise. Progress along a trip is kept
monotone: a bus never drives backwards along its own trip, so a ping that projects behind the last position is
noise (or a loop in the shape matched to the wrong pass) and is held at the last position instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.geo import EARTH_RADIUS_M

__all__ = [
    "MatchSettings",
    "ProgressResult",
    "ShapeLine",
    "project_progress",
    "shape_lines",
    "stop_distances",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class MatchSettings:
    """Tolerances of the matcher; defaults suit city buses with consumer-grade GPS."""

    off_route_m: float = 80.0  # further from the shape than this: detour or bad fix, not used for progress
    back_tolerance_m: float = 40.0  # backward steps up to this are GPS noise, held at the last progress
    max_speed_mps: float = 25.0  # 90 km/h: faster apparent progress is a jump
    jump_slack_m: float = 150.0


@dataclass(frozen=True)
class ShapeLine:
    """A shape as a polyline in a local metric frame, with each vertex's distance along the shape."""

    shape_id: str
    lat: FloatArray
    lon: FloatArray
    dist: FloatArray
    x: FloatArray
    y: FloatArray
    lat0: float

    @classmethod
    def from_points(cls, shape_id: str, lat: FloatArray, lon: FloatArray, dist: FloatArray) -> ShapeLine:
        lat0 = float(np.mean(lat))
        x, y = _to_xy(lat, lon, lat0)
        return cls(shape_id, lat, lon, dist, x, y, lat0)

    @property
    def length_m(self) -> float:
        return float(self.dist[-1]) if len(self.dist) else 0.0

    def segment_candidates(self, lat: FloatArray, lon: FloatArray) -> tuple[FloatArray, FloatArray]:
        """For every point and every segment: distance along the shape of the foot point, and offset from it.

        Shapes of one point are a single zero-length segment.
        """
        px, py = _to_xy(np.asarray(lat, dtype=float), np.asarray(lon, dtype=float), self.lat0)
        if len(self.x) < 2:
            offset = np.hypot(px - self.x[0], py - self.y[0])[:, None]
            return np.zeros_like(offset), offset
        ax, ay, bx, by = self.x[:-1], self.y[:-1], self.x[1:], self.y[1:]
        dx, dy = bx - ax, by - ay
        seg2 = np.maximum(dx * dx + dy * dy, 1e-9)
        t = np.clip(((px[:, None] - ax) * dx + (py[:, None] - ay) * dy) / seg2, 0.0, 1.0)
        fx, fy = ax + t * dx, ay + t * dy
        offset = np.hypot(px[:, None] - fx, py[:, None] - fy)
        along = self.dist[:-1] + t * (self.dist[1:] - self.dist[:-1])
        return along, offset

    def nearest(self, lat: FloatArray, lon: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Distance along and offset of the nearest point of the shape (no monotone constraint)."""
        n = len(lat)
        along, offset = np.zeros(n), np.zeros(n)
        step = max(1, _CHUNK_CELLS // max(1, len(self.x)))
        for start in range(0, n, step):
            a, o = self.segment_candidates(lat[start:start + step], lon[start:start + step])
            best = np.argmin(o, axis=1)
            rows = np.arange(len(best))
            along[start:start + step], offset[start:start + step] = a[rows, best], o[rows, best]
        return along, offset

    def locate(self, dist: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Latitude, longitude and bearing (degrees from north) at distances along the shape."""
        d = np.clip(np.asarray(dist, dtype=float), 0.0, self.length_m)
        lat = np.interp(d, self.dist, self.lat)
        lon = np.interp(d, self.dist, self.lon)
        if len(self.x) < 2:
            return lat, lon, np.zeros_like(d)
        seg = np.clip(np.searchsorted(self.dist, d, side="right") - 1, 0, len(self.x) - 2)
        bearing = np.degrees(np.arctan2(self.x[seg + 1] - self.x[seg], self.y[seg + 1] - self.y[seg])) % 360.0
        return lat, lon, bearing


def _to_xy(lat: FloatArray, lon: FloatArray, lat0: float) -> tuple[FloatArray, FloatArray]:
    scale = np.pi / 180.0 * EARTH_RADIUS_M
    return lon * scale * np.cos(np.radians(lat0)), lat * scale


def shape_lines(shape_points: pd.DataFrame) -> dict[str, ShapeLine]:
    """One ``ShapeLine`` per shape of a ``ScheduleFeed.shape_points`` frame (sorted, with ``dist_m``)."""
    lines = {}
    for shape_id, group in shape_points.groupby("shape_id", sort=False):
        lines[str(shape_id)] = ShapeLine.from_points(
            str(shape_id), group["shape_pt_lat"].to_numpy(dtype=float), group["shape_pt_lon"].to_numpy(dtype=float),
            group["dist_m"].to_numpy(dtype=float))
    return lines


def _monotone_stop_distances(line: ShapeLine, lat: FloatArray, lon: FloatArray) -> FloatArray:
    """Each stop's distance along the shape, never decreasing along the trip.

    Among the segments near a stop, the earliest one at or after the previous stop wins, so a stop on a street
    the route uses twice is placed on the pass the trip is actually making.
    """
    along, offset = line.segment_candidates(lat, lon)
    out = np.zeros(len(lat))
    previous = 0.0
    for i in range(len(lat)):
        ahead = along[i] >= previous - 1e-6
        if not ahead.any():
            out[i] = previous
            continue
        best = offset[i][ahead].min()
        near = ahead & (offset[i] <= best + 30.0)
        previous = float(along[i][near].min())
        out[i] = previous
    return out


def stop_distances(stop_times: pd.DataFrame, trips: pd.DataFrame, stops: pd.DataFrame,
                   lines: dict[str, ShapeLine]) -> FloatArray:
    """``dist_m`` for every row of ``stop_times`` (sorted by trip and stop_sequence): the stop along its trip's shape.

    Computed once per distinct (shape, stop pattern), as trips of one pattern share it.
    """
    shape_of = trips.set_index("trip_id")["shape_id"].astype(str)
    coords = stops.set_index("stop_id")[["stop_lat", "stop_lon"]]
    trip_ids = stop_times["trip_id"].to_numpy()
    starts = np.flatnonzero(np.concatenate([[True], trip_ids[1:] != trip_ids[:-1]]))
    ends = np.append(starts[1:], len(trip_ids))
    stop_ids = stop_times["stop_id"].to_numpy()
    out = np.zeros(len(stop_times))
    cache: dict[tuple[str, tuple[str, ...]], FloatArray] = {}
    for start, end in zip(starts, ends, strict=True):
        shape_id = shape_of[trip_ids[start]]
        key = (shape_id, tuple(stop_ids[start:end]))
        if key not in cache:
            where = coords.loc[list(key[1])]
            cache[key] = _monotone_stop_distances(lines[shape_id], where["stop_lat"].to_numpy(dtype=float),
                                                  where["stop_lon"].to_numpy(dtype=float))
        out[start:end] = cache[key]
    return out


@dataclass(frozen=True)
class ProgressResult:
    """Per ping: distance along the trip (monotone; NaN when unusable), offset from the shape and why rejected."""

    dist_m: FloatArray
    offset_m: FloatArray
    reason: npt.NDArray[np.object_]  # "" for used pings, else "off_route" / "backward" / "jump"


def project_progress(line: ShapeLine, lat: FloatArray, lon: FloatArray, t: FloatArray,
                     settings: MatchSettings | None = None) -> ProgressResult:
    """Project a trip's pings (sorted by time ``t`` in seconds) onto its shape with monotone progress.

    Each ping may match every segment within ``off_route_m``; the chosen one lies in the window the bus can
    have reached since the last good ping (a little behind for noise, at most ``max_speed`` ahead). Pings with
    no such match are rejected with a reason rather than bending the trajectory.
    """
    cfg = settings or MatchSettings()
    along, offset = line.segment_candidates(lat, lon)
    spike = _forward_spikes(along, offset, cfg)
    offset[spike] = np.inf  # treated as off route: one wild fix must not drag monotone progress ahead
    quick = _nearest_if_consistent(along, offset, t, cfg)
    if quick is not None:
        return quick
    return _progress_stepwise(along, offset, t, cfg)


def _forward_spikes(along: FloatArray, offset: FloatArray, cfg: MatchSettings) -> BoolArray:
    """Pings whose nearest position is well ahead of both neighbours' — a GPS jump, not a bus moving."""
    d = along[np.arange(len(along)), np.argmin(offset, axis=1)]
    if len(d) < 3:
        return np.zeros(len(d), dtype=bool)
    spike = np.zeros(len(d), dtype=bool)
    margin = cfg.back_tolerance_m
    spike[1:-1] = (d[1:-1] > d[:-2] + margin) & (d[1:-1] > d[2:] + margin)
    return spike


def _nearest_if_consistent(along: FloatArray, offset: FloatArray, t: FloatArray,
                           cfg: MatchSettings) -> ProgressResult | None:
    """The fast path: every ping's nearest point already forms a plausible forward path (no loops met, no jumps).

    Returns None when any ping would need the careful, ping-by-ping choice.
    """
    best = np.argmin(offset, axis=1)
    rows = np.arange(len(best))
    d, o = along[rows, best], offset[rows, best]
    on = o <= cfg.off_route_m
    if not on.any():
        return None
    d_on, t_on = d[on], t[on]
    if _first_pick(along[np.flatnonzero(on)[0]], offset[np.flatnonzero(on)[0]]) != best[np.flatnonzero(on)[0]]:
        return None
    ahead = np.maximum.accumulate(d_on)
    back = d_on[1:] < ahead[:-1] - cfg.back_tolerance_m
    jump = d_on[1:] > ahead[:-1] + cfg.max_speed_mps * np.maximum(np.diff(t_on), 0.0) + cfg.jump_slack_m
    if back.any() or jump.any():
        return None
    dist = np.full(len(d), np.nan)
    dist[on] = ahead
    reason = np.where(on, "", np.where(np.isfinite(o), "off_route", "jump")).astype(object)
    return ProgressResult(dist, np.where(on, o, np.nan), reason)


def _progress_stepwise(along: FloatArray, offset: FloatArray, t: FloatArray, cfg: MatchSettings) -> ProgressResult:
    n = len(t)
    dist, off = np.full(n, np.nan), np.full(n, np.nan)
    reason = np.full(n, "", dtype=object)
    prev_d, prev_t = np.nan, np.nan
    for i in range(n):
        near = offset[i] <= cfg.off_route_m
        if not near.any():
            reason[i] = "off_route" if np.isfinite(offset[i]).any() else "jump"
            continue
        a, o = along[i][near], offset[i][near]
        if np.isnan(prev_d):
            pick = _first_pick(a, o)
        else:
            reach = prev_d + cfg.max_speed_mps * max(t[i] - prev_t, 0.0) + cfg.jump_slack_m
            window = (a >= prev_d - cfg.back_tolerance_m) & (a <= reach)
            if not window.any():
                reason[i] = "backward" if (a < prev_d).all() else "jump"
                continue
            pick = int(np.flatnonzero(window)[np.argmin(o[window])])
        dist[i] = a[pick] if np.isnan(prev_d) else max(prev_d, a[pick])
        off[i] = o[pick]
        prev_d, prev_t = dist[i], t[i]
    return ProgressResult(dist, off, reason)


def _first_pick(along: FloatArray, offset: FloatArray) -> int:
    """The first ping prefers the earliest pass among near-equal fits: a bus at a loop's terminal is at the start."""
    good = offset <= offset.min() + 20.0
    return int(np.flatnonzero(good)[np.argmin(along[good])])
