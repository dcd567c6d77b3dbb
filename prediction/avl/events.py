"""Observed stop events: arrival and departure at every stop of a trip, interpolated between its pings.

Between two pings the bus's time is shared out along a *reference curve* — the schedule's running time per
segment plus an expected dwell at each stop — scaled to the observed interval. So a 4-minute gap that spans
three stops puts their events where the schedule's proportions say, not evenly by distance. A stop with a ping
inside its zone was seen: its arrival is the approach from the last ping before the zone at the trip's observed
pace (never after that ping), its departure likewise from the first ping after it. Stops passed between pings
are flagged.

An event's ``known_at`` is when the live service emits it, so a replay knows no more than the service did: the
time of the raw ping whose arrival releases it (a ping is only decided once the next one has come, to rule out a
GPS spike). A vehicle silent for more than ``EventSettings.silence_s`` has left its trip run: the feed's first
ping (of any vehicle) after that limit closes it, in the live tracker and in a replay alike.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import multiprocessing
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.avl.matching import MatchSettings, ShapeLine, _first_pick
from prediction.gtfs.servicedays import service_day_start
from prediction.network import Network

__all__ = ["EVENT_FIELDS", "EventContext", "EventSettings", "VehicleFollower", "derive_events", "resolve_start_dates"]

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
    silence_s: float = 900.0  # a vehicle this long without a ping has left its trip run (at least bridge_gap_s)
    match: MatchSettings = field(default_factory=MatchSettings)


def resolve_start_dates(pings: pd.DataFrame, net: Network) -> pd.Series:
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
    out.iloc[rows] = labels  # type: ignore[call-overload]  # pandas-stubs: no overload for an object array of str
    return out


PARALLEL_MIN_PINGS = 50_000  # below this a process pool costs more than it saves


def derive_events(net: Network, pings: pd.DataFrame, settings: EventSettings | None = None, *,
                  workers: int | None = None) -> pd.DataFrame:
    """Stop events of every trip seen in ``pings`` (vehicle_id, t, latitude, longitude, trip_id, start_date).

    Returns trip_id, start_date, stop_sequence, stop_id, arrival and departure (epoch seconds),
    passed_between_pings and known_at: epoch seconds at which the live ``VehicleFollower``, fed one ping at a
    time, emits the event. That is the arrival of the ping that decides the first usable ping past the stop's
    zone (for a trip's last stop, the first ping inside it) — normally the vehicle's next ping — or of the ping
    that closes the run (another trip's, or none), or, when the vehicle falls silent (also at the end of its
    data), of the first ping of any vehicle after its last + ``silence_s`` (past the end of all pings, that limit
    itself); never before the departure, nor before an earlier stop's. Stops the pings cannot place (before the
    first or after the last usable ping) are left out rather than guessed.

    Each vehicle's pings go through a ``VehicleFollower`` in time order, the very code the service runs as pings
    arrive, so stored events and these agree by construction; no event uses a ping after its ``known_at``. A trip
    run claimed by two vehicles keeps the events of the one with more of its pings. Vehicles are independent, so
    with ``workers`` > 1 (by default one per core for ``PARALLEL_MIN_PINGS`` pings or more) they are shared out
    among forked processes; the result is the same row for row.
    """
    frame = pings.sort_values(["vehicle_id", "t"], kind="stable").drop_duplicates(["vehicle_id", "t"])
    frame = frame.reset_index(drop=True)
    frame["start_date"] = resolve_start_dates(frame, net)
    vehicles = frame["vehicle_id"].astype(str).to_numpy()
    columns = (
        vehicles, frame["t"].to_numpy(dtype=float),
        frame["latitude"].to_numpy(dtype=float), frame["longitude"].to_numpy(dtype=float),
        frame["trip_id"].astype(object).where(frame["trip_id"].notna(), None).to_numpy(),
        frame["start_date"].astype(object).where(frame["start_date"].notna(), None).to_numpy(),
    )
    bounds = np.flatnonzero(np.concatenate([[True], vehicles[1:] != vehicles[:-1], [True]]))
    if not len(frame):
        bounds = bounds[:1]  # no vehicles at all
    job = (EventContext(net, settings, clock=np.unique(columns[1])), bounds, columns)
    if workers is None:
        workers = (os.cpu_count() or 1) if len(frame) >= PARALLEL_MIN_PINGS else 1
    parts = _parts(bounds, max(workers, 1) * 4)
    if workers > 1 and len(parts) > 1 and "fork" in multiprocessing.get_all_start_methods():
        global _JOB
        _JOB = job  # handed to the forked children by the fork itself, not pickled
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                results = pool.map(_follow_part, parts, chunksize=1)
        finally:
            _JOB = None
    else:
        results = [_follow(job, part) for part in parts]
    rows = [row for found, _ in results for row in found]
    owner = [vehicle for _, owners in results for vehicle in owners]
    events = pd.DataFrame(rows, columns=list(EVENT_FIELDS))
    if events.empty:
        return events.astype({"arrival": float, "departure": float, "known_at": float,
                              "passed_between_pings": bool})
    events["_vehicle"] = owner
    counts = frame.assign(vehicle_id=vehicles).groupby(["trip_id", "start_date", "vehicle_id"]).size()
    claims = counts.reset_index(name="n").sort_values(["n", "vehicle_id"], ascending=[False, True])
    usual = claims.drop_duplicates(["trip_id", "start_date"]).rename(columns={"vehicle_id": "_vehicle"})
    events = events.merge(usual[["trip_id", "start_date", "_vehicle"]], on=["trip_id", "start_date", "_vehicle"])
    return events.drop(columns="_vehicle").reset_index(drop=True)


_Job = tuple["EventContext", IntArray, tuple[Any, ...]]
_JOB: _Job | None = None


def _parts(bounds: IntArray, count: int) -> list[tuple[int, int]]:
    """Vehicles ``[i, j)`` (vehicle v's pings are ``bounds[v]:bounds[v + 1]``) cut into about ``count``
    consecutive runs of similar ping counts."""
    vehicles = len(bounds) - 1
    cuts = np.searchsorted(bounds, np.linspace(0, bounds[-1], count + 1)[1:-1])
    edges = np.unique(np.concatenate([[0], np.clip(cuts, 0, vehicles), [vehicles]]))
    return [(int(i), int(j)) for i, j in itertools.pairwise(edges) if j > i]


def _follow_part(part: tuple[int, int]) -> tuple[list[EventTuple], list[str]]:
    assert _JOB is not None
    return _follow(_JOB, part)


def _follow(job: _Job, part: tuple[int, int]) -> tuple[list[EventTuple], list[str]]:
    """The events of vehicles ``part`` = [i, j), each vehicle's pings through its own follower."""
    ctx, bounds, (vehicles, t, lat, lon, trips, dates) = job
    rows: list[EventTuple] = []
    owner: list[str] = []
    for v in range(*part):
        lo, hi = bounds[v], bounds[v + 1]
        follower = VehicleFollower(ctx, vehicles[lo])
        found = follower.feed(t[lo:hi], lat[lo:hi], lon[lo:hi], trips[lo:hi], dates[lo:hi]) + follower.close()
        rows.extend(found)
        owner.extend([vehicles[lo]] * len(found))
    return rows, owner


def _reference(net: Network, visits: IntArray, default_dwell: float) -> tuple[FloatArray, FloatArray]:
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


# --- the incremental engine: one vehicle's pings in time order, events as soon as they are known ---------------

EventTuple = tuple[str, str, int, str, float, float, bool, float]
EVENT_FIELDS = ("trip_id", "start_date", "stop_sequence", "stop_id", "arrival", "departure", "passed_between_pings",
                "known_at")


@dataclass(frozen=True)
class _TripPlan:
    """What every run of one trip shares: its shape's segments, its stops along it and the reference curve."""

    line: ShapeLine
    ax: FloatArray
    ay: FloatArray
    dx: FloatArray
    dy: FloatArray
    seg2: FloatArray
    d0: FloatArray
    dd: FloatArray
    stops: FloatArray
    reach: FloatArray
    leave: FloatArray
    knots_x: FloatArray
    knots_y: FloatArray
    seq: IntArray
    stop_ids: npt.NDArray[np.object_]

    def candidates(self, lat: FloatArray, lon: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Like ``ShapeLine.segment_candidates`` with the segment arrays computed once per trip plan."""
        line = self.line
        scale = np.pi / 180.0 * 6_371_008.8
        px = np.asarray(lon, dtype=float) * scale * np.cos(np.radians(line.lat0))
        py = np.asarray(lat, dtype=float) * scale
        if len(self.ax) == 0:
            offset = np.hypot(px - line.x[0], py - line.y[0])[:, None]
            return np.zeros_like(offset), offset
        u = np.clip(((px[:, None] - self.ax) * self.dx + (py[:, None] - self.ay) * self.dy) / self.seg2, 0.0, 1.0)
        offset = np.hypot(px[:, None] - (self.ax + u * self.dx), py[:, None] - (self.ay + u * self.dy))
        return self.d0 + u * self.dd, offset


class EventContext:
    """A network and settings with per-trip plans cached, shared by every vehicle's follower.

    ``clock``, the sorted times of the feed's pings (all vehicles'; a replay gives the whole file's, the live
    tracker each batch's): a silent vehicle's run closes as the first of them after the silence limit arrives."""

    def __init__(self, net: Network, settings: EventSettings | None = None, *,
                 clock: FloatArray | None = None) -> None:
        self.net = net
        self.cfg = settings or EventSettings()
        self.clock = clock
        self.trip_index = {str(trip_id): i for i, trip_id in enumerate(net.trip_ids)}
        self._plans: dict[int, _TripPlan] = {}

    def plan(self, trip: int) -> _TripPlan:
        plan = self._plans.get(trip)
        if plan is None:
            plan = self._plans[trip] = self._build(trip)
        return plan

    def _build(self, trip: int) -> _TripPlan:
        net = self.net
        line = net.lines[str(net.trip_shape[trip])]
        visits = np.arange(net.visit_ptr[trip], net.visit_ptr[trip + 1])
        reach, leave = _reference(net, visits, self.cfg.default_dwell_s)
        stops = net.visit_dist[visits].astype(float)
        return _TripPlan(
            line, line.x[:-1], line.y[:-1], np.diff(line.x), np.diff(line.y),
            np.maximum(np.diff(line.x) ** 2 + np.diff(line.y) ** 2, 1e-9), line.dist[:-1], np.diff(line.dist),
            stops, reach, leave, np.repeat(stops, 2), np.column_stack([reach, leave]).ravel(),
            net.visit_seq[visits], net.stop_ids[net.visit_stop[visits]])


class _Run:
    """One vehicle's progress along one trip run: decided pings (time, distance, reference seconds, and the time
    of the ping whose arrival decided each), the ping awaiting its GPS-spike check, and the stops whose events are
    already out."""

    def __init__(self, key: tuple[str, str], plan: _TripPlan, before: tuple[float, float, float] | None) -> None:
        self.key = key
        self.plan = plan
        self.before = before  # the vehicle's previous ping (t, lat, lon): may close this trip's start
        self.t: list[float] = []
        self.d: list[float] = []
        self.ref: list[float] = []
        self.decided_at: list[float] = []
        self.pending: tuple[float, FloatArray, FloatArray, float] | None = None  # t, along, offset, nearest d
        self.prev_near = np.nan  # nearest distance of the ping before the pending one
        self.pings = 0
        self.next_stop = 0
        self.running = -np.inf
        self.released = -np.inf  # when the latest stop came out: events are emitted in stop order
        self.done: list[EventTuple] = []


class VehicleFollower:
    """One vehicle's pings, fed in time order (in any batches), give the same events as ``derive_events`` over
    all of them: each stop's event is emitted once, when the ping that makes it known has been decided, and is
    stamped ``known_at`` the time of the raw ping whose arrival did it — so fed one ping at a time, every event
    comes out of the ``feed`` call of the ping it is stamped with.

    A ping is decided when the next one arrives (it may be a GPS spike only in view of its neighbours), or when
    the run ends: a ping of another trip (or of none) closes the run, and may close the trip's last stop. A
    vehicle silent for more than ``silence_s`` has left its run: ``expire(now)`` closes it (the live tracker
    calls it whenever the feed's clock moves on), and so do ``feed`` on the vehicle's ping after such a gap and
    ``close`` at the end of the data, at the feed's first ping past the limit when the context has the clock.
    """

    def __init__(self, ctx: EventContext, vehicle_id: str) -> None:
        self.ctx = ctx
        self.vehicle_id = vehicle_id
        self.run: _Run | None = None
        self.last: tuple[float, float, float] | None = None  # previous ping (t, lat, lon)
        self.finished: list[tuple[str, str]] = []  # recent trip runs already closed: never reopened

    def feed(self, t: FloatArray, lat: FloatArray, lon: FloatArray, trip_id: npt.ArrayLike,
             start_date: npt.ArrayLike) -> list[EventTuple]:
        """Pings later than every ping fed so far (earlier ones are ignored); returns the events now known."""
        out: list[EventTuple] = []
        trips, dates = np.asarray(trip_id, dtype=object), np.asarray(start_date, dtype=object)
        i, n = 0, len(t)
        silence = self.ctx.cfg.silence_s
        while i < n:
            if self.last is not None and t[i] <= self.last[0]:
                i += 1
                continue
            out.extend(self.expire(float(t[i])))
            key = _key(trips[i], dates[i])
            if key is not None and (key in self.finished or key[0] not in self.ctx.trip_index):
                key = None
            if self.run is not None and key != self.run.key:
                out.extend(self._close(float(t[i]), (float(lat[i]), float(lon[i]))))
            if key is not None and self.run is None:
                self.run = _Run(key, self.ctx.plan(self.ctx.trip_index[key[0]]), self.last)
            j = i + 1  # a stretch of pings of the same key goes to the run in one call
            while j < n and _key(trips[j], dates[j]) == key and t[j - 1] < t[j] <= t[j - 1] + silence:
                j += 1
            if self.run is not None:
                out.extend(self._advance(self.run, t[i:j], lat[i:j], lon[i:j]))
            self.last = (float(t[j - 1]), float(lat[j - 1]), float(lon[j - 1]))
            i = j
        return out

    def close(self) -> list[EventTuple]:
        """End of the data: the vehicle is silent from its last ping on, so its run closes as ``expire`` would."""
        if self.run is None or self.last is None:
            return []
        return self._close(self._silence_heard(None), None)

    def expire(self, now: float) -> list[EventTuple]:
        """Close the run if at ``now`` (the feed's clock: its newest ping, of any vehicle) the vehicle has been
        silent for more than ``silence_s``; what that makes known is stamped ``now``."""
        if self.run is None or self.last is None or now <= self.last[0] + self.ctx.cfg.silence_s:
            return []
        return self._close(self._silence_heard(now), None)

    def _silence_heard(self, now: float | None) -> float:
        """When the silence of this vehicle comes to light: the feed's first ping after the last one here +
        ``silence_s`` (found in the context's clock, else ``now``); past the end of the data, that limit itself."""
        assert self.last is not None
        limit = self.last[0] + self.ctx.cfg.silence_s
        clock = self.ctx.clock
        if clock is not None:
            i = int(np.searchsorted(clock, limit, side="right"))
            if i < len(clock):
                return float(clock[i]) if now is None else min(float(clock[i]), now)
        return limit if now is None else now

    def _close(self, at: float, ping: tuple[float, float] | None) -> list[EventTuple]:
        """End the run at ``at``: the time of ``ping`` (latitude, longitude: the vehicle's next ping, not of this
        run, which may close the trip's end) or the moment the vehicle counts as silent."""
        run = self.run
        if run is None:
            return []
        self.run = None
        self.finished = [*self.finished[-7:], run.key]
        if run.pending is not None:
            p_t, p_along, p_offset, _ = run.pending
            run.pending = None
            self._decide(run, p_t, p_along, p_offset, False, at)
        if ping is not None and run.t:
            self._bridge_end(run, at, *ping)
        self._emit(run)
        if len(run.t) == 1:
            self._lone_ping(run, at)
        return run.done

    def _lone_ping(self, run: _Run, at: float) -> None:
        """A run with one usable ping (a sparse feed's snapshot): if it stands at a stop, the bus was there at that
        time — the event is that instant (arrival ≤ t ≤ departure, so off by at most the dwell), known when the
        run closes at ``at``; else nothing."""
        plan, t, d = run.plan, run.t[0], run.d[0]
        k = int(np.argmin(np.abs(plan.stops - d)))
        if abs(plan.stops[k] - d) <= self.ctx.cfg.stop_radius_m:
            run.done.append((run.key[0], run.key[1], int(plan.seq[k]), str(plan.stop_ids[k]), t, t, False, at))

    def _advance(self, run: _Run, t: FloatArray, lat: FloatArray, lon: FloatArray) -> list[EventTuple]:
        along, offset = run.plan.candidates(lat, lon)
        near = along[np.arange(len(t)), np.argmin(offset, axis=1)]
        if run.pending is not None:  # the pending ping is decided now, with the new ones but the last
            p_t, p_along, p_offset, p_near = run.pending
            t = np.concatenate([[p_t], t])
            along, offset = np.vstack([p_along[None, :], along]), np.vstack([p_offset[None, :], offset])
            near = np.concatenate([[p_near], near])
        m = len(t) - 1
        run.pending = (float(t[m]), along[m], offset[m], float(near[m]))
        if m > 0:
            margin = self.ctx.cfg.match.back_tolerance_m
            before = np.concatenate([[run.prev_near], near[:m - 1]])
            spike = (near[:m] > before + margin) & (near[:m] > near[1:m + 1] + margin)  # NaN: never the first
            run.prev_near = float(near[m - 1])
            self._decide_rows(run, t[:m], along[:m], offset[:m], spike, t[1:])  # each row decided by the next
        self._emit(run)
        out, run.done = run.done, []
        return out

    def _decide_rows(self, run: _Run, t: FloatArray, along: FloatArray, offset: FloatArray,
                     spike: npt.NDArray[np.bool_], by: FloatArray) -> None:
        """Decide pings in order, row k by the arrival of a ping at ``by[k]``; when every nearest fit is a
        plausible step forward, all at once."""
        cfg = self.ctx.cfg.match
        start = 0
        while start < len(t) and not run.d:
            self._decide(run, float(t[start]), along[start], offset[start], bool(spike[start]), float(by[start]))
            start += 1
        if start >= len(t):
            return
        t, along, offset, spike, by = t[start:], along[start:], offset[start:], spike[start:], by[start:]
        rows = np.arange(len(t))
        best = np.argmin(offset, axis=1)
        d, o = along[rows, best], offset[rows, best]
        on = (o <= cfg.off_route_m) & ~spike
        d_on, t_on = d[on], t[on]
        ahead = np.maximum.accumulate(np.concatenate([[run.d[-1]], d_on]))
        last_t = np.concatenate([[run.t[-1]], t_on[:-1]])
        back = d_on < ahead[:-1] - cfg.back_tolerance_m
        jump = d_on > ahead[:-1] + cfg.max_speed_mps * np.maximum(t_on - last_t, 0.0) + cfg.jump_slack_m
        if back.any() or jump.any():
            for k in range(len(t)):
                self._decide(run, float(t[k]), along[k], offset[k], bool(spike[k]), float(by[k]))
            return
        run.pings += len(t)
        self._extend(run, t_on, ahead[1:], by[on])

    def _decide(self, run: _Run, t: float, along: FloatArray, offset: FloatArray, spike: bool, by: float) -> None:
        """The stepwise monotone projection of ``prediction.avl.matching`` for one ping."""
        run.pings += 1
        cfg = self.ctx.cfg.match
        if spike:
            return
        near = offset <= cfg.off_route_m
        if not near.any():
            return
        a, o = along[near], offset[near]
        if not run.d:
            self._start(run, t, float(a[_first_pick(a, o)]), by)
            return
        prev_d, prev_t = run.d[-1], run.t[-1]
        reach = prev_d + cfg.max_speed_mps * max(t - prev_t, 0.0) + cfg.jump_slack_m
        window = (a >= prev_d - cfg.back_tolerance_m) & (a <= reach)
        if not window.any():
            return
        pick = int(np.flatnonzero(window)[np.argmin(o[window])])
        self._append(run, t, max(prev_d, float(a[pick])), by)

    def _extend(self, run: _Run, t: FloatArray, d: FloatArray, by: FloatArray) -> None:
        run.t.extend(t.tolist())
        run.d.extend(d.tolist())
        run.ref.extend(np.interp(d, run.plan.knots_x, run.plan.knots_y).tolist())
        run.decided_at.extend(by.tolist())

    def _start(self, run: _Run, t: float, d: float, by: float) -> None:
        """The first usable ping; the vehicle's ping just before, standing at the trip's start, goes first."""
        cfg = self.ctx.cfg
        before = run.before
        if before is not None and abs(before[0] - t) <= cfg.bridge_gap_s:
            along, offset = run.plan.line.nearest(np.array([before[1]]), np.array([before[2]]))
            if offset[0] <= cfg.match.off_route_m and along[0] <= cfg.bridge_distance_m:
                self._append(run, before[0], min(float(along[0]), d), by)
        self._append(run, t, d, by)

    def _bridge_end(self, run: _Run, t: float, lat: float, lon: float) -> None:
        cfg = self.ctx.cfg
        if abs(t - run.t[-1]) > cfg.bridge_gap_s:
            return
        along, offset = run.plan.line.nearest(np.array([lat]), np.array([lon]))
        if offset[0] <= cfg.match.off_route_m and along[0] >= run.plan.line.length_m - cfg.bridge_distance_m:
            self._append(run, t, max(float(along[0]), run.d[-1]), t)  # decided by its own arrival

    def _append(self, run: _Run, t: float, d: float, by: float) -> None:
        run.t.append(t)
        run.d.append(d)
        run.ref.append(float(np.interp(d, run.plan.knots_x, run.plan.knots_y)))
        run.decided_at.append(by)

    def _emit(self, run: _Run) -> None:
        """Events of the stops the decided pings now place, in stop order."""
        plan, n = run.plan, len(run.t)
        if n < 2:
            return
        last = len(plan.stops) - 1
        radius = self.ctx.cfg.stop_radius_m
        while run.next_stop <= last:
            k = run.next_stop
            a = bisect.bisect_left(run.d, plan.stops[k] - radius) - 1
            e = bisect.bisect_right(run.d, plan.stops[k] + radius)
            seen = e > a + 1
            if e >= n and not (k == last and seen):
                return
            run.next_stop += 1
            # the decided ping that places the stop (a last stop's first inside its zone); events need two pings
            placed = a + 1 if k == last and seen else e
            run.released = max(run.released, run.decided_at[max(placed, 1)])
            self._stop_event(run, k, a, e, seen, k == last)

    def _stop_event(self, run: _Run, k: int, a: int, e: int, seen: bool, is_last: bool) -> None:
        plan, t, ref = run.plan, run.t, run.ref
        n = len(t)
        has_a, has_e = a >= 0, e < n
        ai, ei, bi, ci = min(max(a, 0), n - 1), min(e, n - 1), min(a + 1, n - 1), max(min(e - 1, n - 1), 0)
        reach, leave = float(plan.reach[k]), float(plan.leave[k])
        if seen:
            pace_arr = self._pace(run, bi if is_last else ei)
            arrival = min(max(t[ai] + (reach - ref[ai]) * pace_arr, t[ai]), t[bi]) if has_a else np.nan
            departure = min(max(t[ei] - (ref[ei] - leave) * pace_arr, t[ci]), t[ei]) if has_e else np.nan
        elif has_a and has_e:
            span = ref[ei] - ref[ai]
            arrival = t[ai] + (t[ei] - t[ai]) * _clip01((reach - ref[ai]) / span if span else np.nan)
            departure = t[ai] + (t[ei] - t[ai]) * _clip01((leave - ref[ai]) / span if span else np.nan)
        else:
            arrival = departure = np.nan
        if k == 0:
            arrival = departure
        if is_last:
            if seen and np.isnan(arrival):
                arrival = t[bi]
            departure = arrival
        if not np.isnan(arrival):
            arrival = max(arrival, run.running)
            run.running = arrival
        if not np.isnan(departure):
            departure = max(departure, run.running)
            run.running = departure
        if np.isnan(arrival) or np.isnan(departure):
            return
        known = max(run.released, departure)
        run.done.append((run.key[0], run.key[1], int(plan.seq[k]), str(plan.stop_ids[k]), float(arrival),
                         float(departure), not seen, float(known)))

    def _pace(self, run: _Run, upto: int) -> float:
        cfg = self.ctx.cfg
        t, ref = run.t, run.ref
        first = min(bisect.bisect_left(t, t[upto] - cfg.pace_window_s), max(upto - cfg.pace_min_pings, 0))
        span = ref[upto] - ref[first]
        if span <= 30.0:
            return 1.0
        return min(max((t[upto] - t[first]) / span, 0.3), 3.0)


def _clip01(x: float) -> float:
    return x if np.isnan(x) else min(max(x, 0.0), 1.0)


def _key(trip_id: object, start_date: object) -> tuple[str, str] | None:
    if trip_id is None or start_date is None or trip_id is pd.NA or start_date is pd.NA:
        return None
    if isinstance(trip_id, float) or isinstance(start_date, float):
        return None
    return str(trip_id), str(start_date)
