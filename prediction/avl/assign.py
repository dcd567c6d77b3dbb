"""Trip assignment for pings without a trip id: a hidden Markov model over each vehicle's whole track.

A vehicle's hidden state is the trip run it is on (or none: parked, out of service), together with how far along
the trip's shape it has come. Candidates come from the shapes near the ping (a spatial grid), then the runs of
those shapes scheduled around the ping's time. Each hypothesis is scored like a Viterbi path, in log-likelihood
units:

- emission: distance from the shape (Gaussian, capped); a ping no reachable part of the shape explains is a miss
  and is skipped, so progress is never dragged by it: a single one costs what a rare GPS jump should, several in
  a row (a detour) about what being out of service does;
- progress along a trip is monotone and speed-bounded, and a run standing still between its ends pays; a run is
  left only at its end (the last stop plus alighting), into the next run of its block (cheap), another run
  leaving that terminal (dearer; much dearer once the block has ended: the bus parks) or none, or by a costly
  "cold" start anywhere;
- the schedule: a bus standing at a run's first stop is waiting for it (a little likelier than being out of
  service, then paying for lateness past the departure time), and the moment it leaves is scored against the
  scheduled departure — the observation that tells apart runs of one route a headway apart, since buses leave
  terminals near their time but drift freely en route; runs born mid-route are scored by their deviation from
  schedule there.

Live, each ping is labelled with the best hypothesis as it arrives (the state is kept per vehicle between batches);
in batch the best final path is traced back, so a layover or a cold start is labelled with what the bus did next.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.avl.assign_index import NearShapes, ScheduledRun, ShapeIndex, TripTable
from prediction.network import Network

__all__ = ["AssignSettings", "TripAssigner", "VehicleTrack", "assign_pings", "fill_trips"]

FloatArray = npt.NDArray[np.float64]
_NONE = -1  # the "no trip" state's slot
_Path = tuple[int, int, "_Path | None"]  # (slot, first ping of the stretch, the path before it)


@dataclass(frozen=True)
class AssignSettings:
    """Distances in metres, times in seconds, costs in log-likelihood units (per ``ping_s`` where per ping)."""

    radius_m: float = 100.0  # shapes further than this do not explain a ping
    gps_sigma_m: float = 25.0
    max_speed_mps: float = 25.0
    back_tolerance_m: float = 40.0
    jump_slack_m: float = 150.0
    start_m: float = 150.0  # this close to a run's start: standing at its first stop
    arrived_m: float = 50.0  # this close to the last stop: arrived
    alight_s: float = 20.0  # from arriving at the last stop to being on the next run
    confirm_within_s: float = 90.0  # a departure seen by a ping this soon after the last waits for the next
    wait_ahead_s: float = 1800.0  # a bus may stand at a run's start this long before its departure
    late_start_s: float = 1800.0  # a run may leave this late
    max_deviation_s: float = 2400.0  # further from schedule than this en route costs ``off_schedule`` per ping
    ping_s: float = 30.0
    first_miss: float = 1.5  # one ping off the shape: a GPS jump is common
    miss: float = 1.25  # more in a row: a detour (no likelier than out of service), or another route
    far: float = 1.25  # the most a ping near the shape costs: beyond ~40 m it is as good as a miss
    none: float = 1.0
    wait: float = 0.8  # standing at a run's first stop: a little likelier than standing out of service
    to_none: float = 2.0
    overstay: float = 2.0
    off_schedule: float = 2.0
    stall_s: float = 150.0
    stall: float = 2.0
    block: float = 0.5
    switch: float = 4.0
    block_end: float = 9.0  # after the last run of its block a bus goes out of service
    cold: float = 9.0
    wait_scale_s: float = 1800.0  # standing at a terminal, a later departure is less likely, by this scale
    cold_every: int = 20  # pings between searches for runs starting mid-route while a trip fits
    max_hypotheses: int = 8
    prune: float = 12.0


class _Hypothesis:
    """One state of the vehicle: a run (or none), its distance along, and the best path's score into it."""

    __slots__ = ("d", "d_safe", "departed", "done_t", "leaving", "misses", "path", "score", "slot", "speed",
                 "t_moved", "t_on")

    def __init__(self, slot: int, d: float, t: float, score: float, path: _Path | None, departed: bool) -> None:
        self.slot, self.d, self.t_on, self.score, self.path = slot, d, t, score, path
        self.d_safe = d  # the distance before the last step forward: that step may have been a GPS spike
        self.t_moved = t  # when it last moved on along the shape
        self.departed = departed
        self.done_t: float | None = None  # when the bus reached the last stop
        self.leaving: float | None = None  # when it seems to have left the first stop, until the next ping agrees
        self.speed = 0.0  # along the shape between the last two pings, m/s
        self.misses = 0


class TripAssigner:
    """The network-wide part: shapes near a ping and runs by shape and time, shared by every vehicle."""

    def __init__(self, net: Network, settings: AssignSettings | None = None) -> None:
        self.net = net
        self.cfg = settings or AssignSettings()
        self.index = ShapeIndex(net, self.cfg.radius_m)
        self.table = TripTable(net, self.index)

    def near(self, t: FloatArray, lat: FloatArray, lon: FloatArray) -> NearShapes:
        self.table.ensure_days(t)
        return self.index.near(lat, lon)

    def label(self, slot: int) -> tuple[str | None, str | None]:
        """(trip_id, start_date) of a slot; (None, None) for no trip."""
        run = self.table.slots.get(slot)
        if run is None:  # no trip, or a run of a day forgotten since
            return None, None
        return str(self.net.trip_ids[run.trip]), run.date


class VehicleTrack:
    """One vehicle's hypotheses, carried from ping to ping; ``step`` takes pings in time order."""

    def __init__(self, assigner: TripAssigner, *, keep_paths: bool = False) -> None:
        self.a = assigner
        self.cfg = assigner.cfg
        self.keep_paths = keep_paths
        start: _Path | None = (_NONE, 0, None) if keep_paths else None
        self.hyps: dict[int, _Hypothesis] = {_NONE: _Hypothesis(_NONE, 0.0, 0.0, 0.0, start, False)}
        self.last_t: float | None = None
        self.count = 0
        self.best = _NONE

    def step(self, t: float, near: NearShapes, row: int) -> int:
        """Take the ping at epoch ``t`` whose nearby shapes are ``near``'s row ``row``; return the best slot."""
        cfg = self.cfg
        w = 1.0 if self.last_t is None else min(max((t - self.last_t) / cfg.ping_s, 0.2), 4.0)
        groups = _by_shape(near, row)
        slots = self.a.table.slots
        if any(h.slot not in slots for h in self.hyps.values() if h.slot != _NONE):  # a day forgotten
            self.hyps = {s: h for s, h in self.hyps.items() if s == _NONE or s in slots}
        before = max(self.hyps.values(), key=lambda h: h.score)
        # runs whose bus reached the last stop (and let its riders off) by this ping: it may be on another run now,
        # so those runs' states at the previous ping lead to the next runs
        finished = []
        hit_best = False
        for h in self.hyps.values():
            if h.slot == _NONE:
                h.score -= cfg.none * w
                continue
            prior = (h.slot, h.score, h.path)
            if self._advance(h, t, w, near, groups.get(self.a.table.slots[h.slot].shape)) and h is before:
                hit_best = True
            if h.done_t is not None and t >= h.done_t + cfg.alight_s:
                finished.append(prior)
        if self.count == 0:
            self.hyps[_NONE].score = -cfg.to_none
        self._none_from(before, w)
        for slot, score, path in finished:
            after = self.a.table.slots[slot].after
            if after >= 0:
                self._birth_at_start(after, t, near, groups, score - cfg.block, path, block=True)
        if groups:
            self._births(t, near, groups, before, finished, hit_best)
        self._prune()
        self.last_t = t
        self.count += 1
        self.best = max(self.hyps.values(), key=lambda h: h.score).slot
        return self.best

    def _advance(self, h: _Hypothesis, t: float, w: float, near: NearShapes, rows: tuple[int, int] | None) -> bool:
        """Move a run's hypothesis to this ping; False when the ping is a miss for it."""
        cfg, slot = self.cfg, self.a.table.slots[h.slot]
        pick, best_o = -1, np.inf
        if rows is not None:
            reach = h.d + cfg.max_speed_mps * max(t - h.t_on, 0.0) + cfg.jump_slack_m
            low = min(h.d_safe, h.d) - cfg.back_tolerance_m
            along, offset = near.along, near.offset
            for r in range(rows[0], rows[1]):
                if low <= along[r] <= reach and offset[r] < best_o:
                    pick, best_o = r, offset[r]
        if pick < 0:
            h.score -= cfg.miss * w if h.misses else cfg.first_miss
            h.misses += 1
            return False
        h.misses = 0
        h.score -= min(0.5 * (best_o / cfg.gps_sigma_m) ** 2, cfg.far)
        a = near.along[pick]
        if a >= h.d - cfg.back_tolerance_m:
            h.d_safe, h.d = h.d, max(h.d, a)
        else:  # behind the last step forward but not the one before: that step was a spike
            h.d = max(h.d_safe, a)
        t_prev, h.t_on = h.t_on, t
        speed, h.speed = h.speed, (h.d - h.d_safe) / max(t - t_prev, 1.0)
        if not h.departed:
            self._waiting(h, slot, t, t_prev, w)
        end = slot.stop_dist[-1]
        if h.d >= end - cfg.arrived_m:
            if h.done_t is None:  # between the pings, at the pace of the step before
                h.done_t = min(max(t_prev + (end - h.d_safe) / max(speed, 2.0), t_prev), t)
            elif t > h.done_t + cfg.alight_s + cfg.ping_s:
                h.score -= cfg.overstay * w
        elif h.departed:
            if abs(t - slot.scheduled_at(h.d)) > cfg.max_deviation_s:
                h.score -= cfg.off_schedule * w
            if h.d > h.d_safe + cfg.back_tolerance_m:
                h.t_moved = t
            elif t - h.t_moved > cfg.stall_s:  # a bus on a run does not stand still for long between its ends
                h.score -= cfg.stall * w
        return True

    def _waiting(self, h: _Hypothesis, slot: ScheduledRun, t: float, t_prev: float, w: float) -> None:
        """A run not yet left its first stop: standing there explains a ping no better than being out of service
        (and costs lateness past the departure time); it has left when two pings in a row are past the stop."""
        cfg = self.cfg
        if h.d <= slot.stop_dist[0] + cfg.start_m:
            h.leaving = None
            h.score -= _late_cost(t - slot.start) - _late_cost(t_prev - slot.start) + cfg.wait * w
            return
        left = max(t_prev, t - (h.d - slot.stop_dist[0]) / 6.0)
        if h.leaving is None and t - t_prev < cfg.confirm_within_s:  # a GPS jump along the street must not
            h.leaving = left                                         # start the run: the next ping confirms
            h.score -= _late_cost(t - slot.start) - _late_cost(t_prev - slot.start) + cfg.wait * w
            return
        if h.leaving is not None:
            left = h.leaving
        h.departed = True  # lateness up to the last ping is paid already
        h.score -= _early_cost(left - slot.start) + _late_cost(left - slot.start) - _late_cost(t_prev - slot.start)

    def _none_from(self, before: _Hypothesis, w: float) -> None:
        none = self.hyps[_NONE]
        score = before.score - self.cfg.to_none - self.cfg.none * w
        if before.slot != _NONE and score > none.score:
            none.score, none.path = score, self._path(_NONE, before.path)

    def _births(self, t: float, near: NearShapes, groups: dict[int, tuple[int, int]], before: _Hypothesis,
                finished: list[tuple[int, float, _Path | None]], hit_best: bool) -> None:
        cfg = self.cfg
        cold = before.score - (cfg.cold if self.count else 0.0)  # the first ping: any state is a start
        done = max(finished, key=lambda f: f[1], default=None)
        base, parent = (cold, before.path)
        if done is not None:
            # a run whose block goes on leads to another run here now and then; one that ends its block, rarely
            switch = cfg.switch if self.a.table.slots[done[0]].after >= 0 else cfg.block_end
            if done[1] - switch > cold:
                base, parent = done[1] - switch, done[2]
        search_mid = not hit_best or before.slot == _NONE or self.count % cfg.cold_every == 0
        table = self.a.table
        for shape, (lo, hi) in groups.items():
            if near.along[lo] <= cfg.start_m:
                for slot in table.starting(shape, t - cfg.late_start_s, t + cfg.wait_ahead_s):
                    self._birth_at_start(slot, t, near, groups, base, parent)
            if search_mid:
                for slot in table.starting(shape, t - table.longest[shape] - cfg.max_deviation_s, t):
                    self._birth_mid(slot, t, near, lo, hi, cold, before.path)

    def _birth_at_start(self, slot: int, t: float, near: NearShapes, groups: dict[int, tuple[int, int]],
                        base: float, parent: _Path | None, *, block: bool = False) -> None:
        have = self.hyps.get(slot)
        if have is not None and have.score >= base:
            return  # births cost: this one cannot beat the run's hypothesis
        cfg = self.cfg
        run = self.a.table.slots[slot]
        rows = groups.get(run.shape)
        if rows is None:
            return
        pick, best_o = -1, np.inf
        for r in range(rows[0], rows[1]):
            if near.along[r] <= run.stop_dist[0] + cfg.start_m and near.offset[r] < best_o:
                pick, best_o = r, near.offset[r]
        if pick < 0:
            return
        score = base - min(0.5 * (best_o / cfg.gps_sigma_m) ** 2, cfg.far) - _late_cost(t - run.start)
        if not block:  # a block gives the bus's next run; else the sooner departure is the likelier
            score -= max(run.start - t, 0.0) / cfg.wait_scale_s
        self._offer(slot, near.along[pick], t, score, parent, False)

    def _birth_mid(self, slot: int, t: float, near: NearShapes, lo: int, hi: int, base: float,
                   parent: _Path | None) -> None:
        cfg = self.cfg
        run = self.a.table.slots[slot]
        have = self.hyps.get(slot)
        if t > run.end + cfg.max_deviation_s or (have is not None and have.score >= base):
            return
        for r in range(lo, hi):
            a = near.along[r]
            if a <= run.stop_dist[0] + cfg.start_m or a >= run.stop_dist[-1] - cfg.arrived_m:
                continue
            deviation = abs(t - run.scheduled_at(a))
            if deviation > cfg.max_deviation_s:
                continue
            score = base - min(0.5 * (near.offset[r] / cfg.gps_sigma_m) ** 2, cfg.far) - deviation / 120.0
            self._offer(slot, a, t, score, parent, True)

    def _offer(self, slot: int, d: float, t: float, score: float, parent: _Path | None, departed: bool) -> None:
        have = self.hyps.get(slot)
        if have is not None and have.score >= score:
            return
        self.hyps[slot] = _Hypothesis(slot, d, t, score, self._path(slot, parent), departed)

    def _path(self, slot: int, parent: _Path | None) -> _Path | None:
        return (slot, self.count, parent) if self.keep_paths else None

    def _prune(self) -> None:
        ranked = sorted(self.hyps.values(), key=lambda h: -h.score)
        floor = ranked[0].score - self.cfg.prune
        keep = {h.slot: h for h in ranked[:self.cfg.max_hypotheses] if h.score >= floor}
        keep[_NONE] = self.hyps[_NONE]
        top = ranked[0].score
        if top < -1e6:  # keep scores bounded over a long live day: only differences matter
            for h in keep.values():
                h.score -= top
        self.hyps = keep

    def best_path(self) -> list[tuple[int, int]]:
        """(slot, first ping) stretches of the best path so far, in ping order (needs ``keep_paths``)."""
        best = max(self.hyps.values(), key=lambda h: h.score)
        path, out = best.path, []
        while path is not None:
            out.append((path[0], path[1]))
            path = path[2]
        return out[::-1]


def _by_shape(near: NearShapes, row: int) -> dict[int, tuple[int, int]]:
    """The ping's candidate rows grouped by shape (rows are sorted by shape)."""
    lo, hi = near.ptr[row], near.ptr[row + 1]
    out: dict[int, tuple[int, int]] = {}
    shape = near.shape
    start = lo
    for r in range(lo + 1, hi + 1):
        if r == hi or shape[r] != shape[start]:
            out[shape[start]] = (start, r)
            start = r
    return out


def _early_cost(late_s: float) -> float:
    """Leaving a terminal early is rare: a bus leaving minutes before a run's time is on another run."""
    return min(max(-late_s - 60.0, 0.0) / 30.0, 20.0)


def _late_cost(late_s: float) -> float:
    """Late by a couple of minutes is common, by a headway less so; paid as the wait goes on."""
    return min(max(late_s - 120.0, 0.0) / 90.0, 20.0)


def assign_pings(assigner: TripAssigner, pings: pd.DataFrame, *, smooth: bool = True) -> pd.DataFrame:
    """``trip_id`` and ``start_date`` for every ping (vehicle_id, t, latitude, longitude), aligned with its index.

    ``smooth`` traces each vehicle's best path back at the end of its pings (batch); otherwise each ping gets the
    best hypothesis at its own time, as the live service does.
    """
    frame = pings[["vehicle_id", "t", "latitude", "longitude"]]
    order = np.lexsort((frame["t"].to_numpy(dtype=float), frame["vehicle_id"].astype(str).to_numpy()))
    vehicles = frame["vehicle_id"].astype(str).to_numpy()[order]
    t = frame["t"].to_numpy(dtype=float)[order]
    near = assigner.near(t, frame["latitude"].to_numpy(dtype=float)[order],
                         frame["longitude"].to_numpy(dtype=float)[order])
    slots = np.full(len(order), _NONE, dtype=np.int64)
    bounds = np.flatnonzero(np.concatenate([[True], vehicles[1:] != vehicles[:-1], [True]]))
    for lo, hi in itertools.pairwise(bounds.tolist()):
        track = VehicleTrack(assigner, keep_paths=smooth)
        times = t[lo:hi].tolist()
        for i in range(hi - lo):
            slots[lo + i] = track.step(times[i], near, lo + i)
        if smooth:
            stretches = track.best_path()
            for (slot, first), nxt in zip(stretches, [*stretches[1:], (_NONE, hi - lo)], strict=True):
                slots[lo + first:lo + nxt[1]] = slot
    labels = {int(s): assigner.label(int(s)) for s in np.unique(slots)}
    trip = np.empty(len(order), dtype=object)
    date = np.empty(len(order), dtype=object)
    trip[order] = [labels[s][0] for s in slots.tolist()]
    date[order] = [labels[s][1] for s in slots.tolist()]
    return pd.DataFrame({"trip_id": trip, "start_date": date}, index=pings.index)


def fill_trips(net: Network, pings: pd.DataFrame, settings: AssignSettings | None = None) -> pd.DataFrame:
    """``pings`` with trip_id and start_date assigned in batch when none of them gives a trip; a file that does
    give trips is trusted where it gives none (a bus laying over) and returned as it is."""
    if pings.empty or pings["trip_id"].notna().any():
        return pings
    found = assign_pings(TripAssigner(net, settings), pings, smooth=True)
    return pings.assign(trip_id=found["trip_id"], start_date=found["start_date"])
