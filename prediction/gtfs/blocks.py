"""The next trip of each bus: the feed's blocks where it gives them, else the chains a depot would roster.

A rider at a terminal wants the bus that is about to leave, which is the next trip of a bus still finishing its
current one: that needs each trip's successor in its vehicle's working day (its block). Feeds with ``block_id``
say it; many (Austin's among them) do not, so we infer it from the timetable with a scheduler's layover rules:

- the next trip starts at or near the stop where the previous one ended: the same stop, the same parent station,
  or within ``TERMINAL_NEAR_M`` (a walk across a terminal, or a short deadhead to the other side of the street);
- it leaves no earlier than the previous trip's scheduled end (``MIN_LAYOVER_S`` = 0) and at most
  ``MAX_LAYOVER_S`` after it (a longer gap is a vehicle going back to the depot, not a layover). Timetables
  already hold the recovery time: 11 % of the trips Austin's real buses ran next (5 % of HART's real block pairs)
  left less than 3 minutes after the previous one's scheduled end, often at the very minute, and requiring
  3 minutes lost more right pairs on both than it saved wrong ones (``bench/blocks.py``);
- it is on the same route and the same service. Interlining between routes is an operator's choice that the
  timetable does not reveal: a second pass chaining the trips left unchained across routes moved precision and
  recall by at most 0.001 on Austin and HART. Chaining across services would make a trip's successor depend on
  the day (a successor must hold on every day its trip runs, and two services share only some days); HART's real
  blocks keep to one service (332 of 335).

Among the pairings those rules allow, the one chosen per (service, route) is a minimum-cost assignment whose
cost is the *square* of each layover. It first chains as many trips as it can (an unchained trip costs more
than any set of links: a depot runs the fewest vehicles). Any assignment that chains the same trips has the same
total layover (the sum of next starts minus previous ends), so a linear cost could not choose among them; the
square spreads layovers evenly, which at one terminal is first-in first-out (the bus that arrived first leaves
first) — what depots do, and what the simulator's earliest-free rule does greedily, one trip at a time, where
the assignment weighs the whole day at once.

Measured by ``bench/blocks.py`` (precision / recall of the (trip, next trip) pairs, the greedy rule's beside):
Austin's real buses 0.55 / 0.51 (greedy 0.24 / 0.21) with the feed as it is, whose one all-week service mixes
weekday and weekend timetables, and 0.90 / 0.84 (greedy 0.81 / 0.75) with each trip's service the days it ran;
HART's hidden real blocks 0.87 / 0.87 (greedy 0.80 / 0.79). On Almaty's generated blocks greedy wins (0.72
against 0.47): that generator is itself a greedy first-in first-out roster with a 300 s minimum stand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]
from scipy.sparse import csr_matrix  # type: ignore[import-untyped]
from scipy.sparse.csgraph import connected_components  # type: ignore[import-untyped]

from prediction.geo import haversine_m

if TYPE_CHECKING:
    from prediction.network import Network

__all__ = ["MAX_LAYOVER_S", "MIN_LAYOVER_S", "TERMINAL_NEAR_M", "blocks_inferred", "near_terminal", "next_trips"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
MIN_LAYOVER_S = 0
MAX_LAYOVER_S = 3600
TERMINAL_NEAR_M = 400.0


def next_trips(net: Network) -> IntArray:
    """For every trip, the next trip of its vehicle on the same service, or -1: by ``block_id`` (in scheduled
    start order) for trips that have one, by the inferred chains for the others."""
    out = np.full(len(net.trip_ids), -1, dtype=np.int64)
    has_block = np.array([b is not None for b in net.trip_block], dtype=bool)
    _follow_feed_blocks(net, np.flatnonzero(has_block), out)
    loose = np.flatnonzero(~has_block)
    groups = pd.factorize(pd.Series(net.trip_service[loose].astype(str)) + "\x1f"
                          + pd.Series(net.trip_route[loose].astype(str)))[0]
    for group in np.unique(groups):
        trips = loose[groups == group]
        before, after = chain_trips(net, trips)
        out[before] = after
    return out


def blocks_inferred(net: Network) -> bool:
    """Whether some of ``next_trips(net)`` are inferred (some trip has no ``block_id``), for reports to say so."""
    return any(b is None for b in net.trip_block)


def near_terminal(net: Network, a: int, b: int) -> bool:
    """Whether a bus that ended at stop ``a`` can start at stop ``b``: same stop, same parent station, or close."""
    if a == b:
        return True
    stops = net.feed.stops
    if "parent_station" in stops.columns:
        parent_a, parent_b = stops["parent_station"].iat[a], stops["parent_station"].iat[b]
        # pandas-stubs: .iat's scalar union is wider than what pd.notna accepts
        if pd.notna(parent_a) and pd.notna(parent_b) and str(parent_a) == str(parent_b):  # type: ignore[arg-type]
            return True
    distance = haversine_m(net.stop_lat[a], net.stop_lon[a], net.stop_lat[b], net.stop_lon[b])
    return bool(distance <= TERMINAL_NEAR_M)


def chain_trips(net: Network, trips: IntArray) -> tuple[IntArray, IntArray]:
    """Links (previous trip, next trip) among ``trips`` by the layover rules and the squared-layover assignment
    described in the module docstring; each trip is at most once a previous and at most once a next trip."""
    start = net.visit_dep[net.visit_ptr[trips]].astype(np.int64)
    end = net.visit_arr[net.visit_ptr[trips + 1] - 1].astype(np.int64)
    layover = start[None, :] - end[:, None]
    feasible = (layover >= MIN_LAYOVER_S) & (layover <= MAX_LAYOVER_S)
    feasible &= _terminals_near(net, trips)
    before_parts, after_parts = [], []
    count, label = connected_components(csr_matrix(feasible), directed=False)
    for component in range(count):
        members = np.flatnonzero(label == component)
        if len(members) < 2:
            continue
        rows, cols = _assign(layover[np.ix_(members, members)], feasible[np.ix_(members, members)])
        before_parts.append(trips[members[rows]])
        after_parts.append(trips[members[cols]])
    if not before_parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(before_parts), np.concatenate(after_parts)


def _assign(layover: IntArray, feasible: BoolArray) -> tuple[IntArray, IntArray]:
    """The feasible links of a minimum squared-layover assignment; an unfeasible link costs more than any set of
    feasible ones, so the assignment chains as many trips as it can first."""
    cost = np.square(layover.astype(np.float64) / MAX_LAYOVER_S)
    cost[~feasible] = float(len(layover)) + 1.0  # each feasible link costs at most 1
    rows, cols = linear_sum_assignment(cost)
    keep = feasible[rows, cols]
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)


def _terminals_near(net: Network, trips: IntArray) -> BoolArray:
    """``[i, j]``: whether trip ``j`` starts near where trip ``i`` ends (``near_terminal`` on unique stop pairs)."""
    last = net.visit_stop[net.visit_ptr[trips + 1] - 1]
    first = net.visit_stop[net.visit_ptr[trips]]
    ends, end_of = np.unique(last, return_inverse=True)
    starts, start_of = np.unique(first, return_inverse=True)
    near = np.array([[near_terminal(net, int(a), int(b)) for b in starts] for a in ends], dtype=bool)
    return near[end_of.reshape(-1)][:, start_of.reshape(-1)]


def _follow_feed_blocks(net: Network, has: IntArray, out: IntArray) -> None:
    """Fill ``out`` for trips with a ``block_id``: the next trip of the same block and service by scheduled start."""
    if not len(has):
        return
    start = net.visit_dep[net.visit_ptr[has]]
    key = pd.factorize(pd.Series(net.trip_block[has].astype(str)) + "\x1f" + net.trip_service[has].astype(str))[0]
    order = np.lexsort((start, key))
    same = key[order]
    follow = same[1:] == same[:-1]
    out[has[order][:-1][follow]] = has[order][1:][follow]
