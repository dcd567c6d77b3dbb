"""The simulator's static view of a feed: flat numpy arrays of trips and stop visits, and vehicle blocks.

Built once per feed so that every simulated day is array work: stop visits are stored trip after trip (a CSR
layout: ``visit_ptr[i]:visit_ptr[i + 1]`` are trip ``i``'s visits), with each stop's distance along the shape.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.avl.matching import ShapeLine, shape_lines, stop_distances
from prediction.gtfs.blocks import MAX_LAYOVER_S, near_terminal
from prediction.gtfs.schedule import ScheduleFeed
from prediction.gtfs.servicedays import CalendarException, CalendarRule, ServiceCalendar

__all__ = ["Network", "build_network", "feed_calendar", "infer_blocks"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_STAND_S = 180  # a simulated bus stands this long at a terminal before its next trip


def feed_calendar(feed: ScheduleFeed) -> ServiceCalendar:
    """The feed's calendar.txt and calendar_dates.txt as a ``ServiceCalendar``."""
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    rules = [CalendarRule(str(r["service_id"]), tuple(bool(int(r[d])) for d in days),  # type: ignore[arg-type]
                          r["start_date"], r["end_date"]) for _, r in feed.calendar.iterrows()]
    exceptions = [CalendarException(str(r["service_id"]), r["date"], int(r["exception_type"]))
                  for _, r in feed.calendar_dates.iterrows()]
    return ServiceCalendar.build(rules, exceptions)


@dataclass
class Network:
    """Trips and stop visits of a feed as arrays; ``blocks`` caches vehicle chains per set of services."""

    feed: ScheduleFeed
    tz: ZoneInfo
    calendar: ServiceCalendar
    lines: dict[str, ShapeLine]
    trip_ids: npt.NDArray[np.object_]
    trip_route: IntArray  # index into route_ids
    route_ids: npt.NDArray[np.object_]
    trip_service: npt.NDArray[np.object_]
    trip_shape: npt.NDArray[np.object_]
    trip_block: npt.NDArray[np.object_]  # block_id or None
    visit_ptr: IntArray
    visit_stop: IntArray  # index into stop_ids
    visit_seq: IntArray
    visit_dist: FloatArray
    visit_arr: IntArray
    visit_dep: IntArray
    visit_segment: IntArray  # id of the (previous stop, stop) pair; -1 at a trip's first stop
    stop_ids: npt.NDArray[np.object_]
    stop_lat: FloatArray
    stop_lon: FloatArray
    segment_count: int
    blocks: dict[frozenset[str], IntArray] = field(default_factory=dict)

    @property
    def visit_trip(self) -> IntArray:
        return np.repeat(np.arange(len(self.trip_ids)), np.diff(self.visit_ptr))

    def trips_on(self, day: dt.date) -> IntArray:
        """Indexes of the trips that run on service day ``day``."""
        active = self.calendar.active_on(day)
        return np.flatnonzero(np.isin(self.trip_service, list(active)))

    def vehicle_of_trip(self, day: dt.date) -> IntArray:
        """A vehicle number per trip for this day (-1 for trips not running); cached per set of services."""
        active = self.calendar.active_on(day)
        if active not in self.blocks:
            self.blocks[active] = infer_blocks(self, self.trips_on(day))
        return self.blocks[active]


def build_network(feed: ScheduleFeed) -> Network:
    """Flatten ``feed`` for the simulator (shapes, stop distances along them, segment ids)."""
    st = feed.stop_times.sort_values(["trip_id", "stop_sequence"], kind="stable").reset_index(drop=True)
    # pandas-stubs: .loc does not list arrays of labels
    trips = feed.trips.set_index("trip_id").loc[pd.unique(st["trip_id"])].reset_index()  # type: ignore[index]
    lines = shape_lines(feed.shape_points)
    dist = stop_distances(st, trips, feed.stops, lines)
    stop_ids = feed.stops["stop_id"].astype(str).to_numpy(dtype=object)
    stop_index = pd.Series(np.arange(len(stop_ids)), index=stop_ids)
    visit_stop = stop_index.loc[st["stop_id"].astype(str).to_numpy()].to_numpy(dtype=np.int64)  # type: ignore[index]
    counts = st.groupby("trip_id", sort=False).size().loc[trips["trip_id"]].to_numpy()
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    first = np.zeros(len(st), dtype=bool)
    first[ptr[:-1]] = True
    prev_stop = np.concatenate([[-1], visit_stop[:-1]])
    pair = np.where(first, -1, prev_stop * len(stop_ids) + visit_stop)
    codes, uniques = pd.factorize(pair[~first])
    segment = np.full(len(st), -1, dtype=np.int64)
    segment[~first] = codes
    route_codes, route_ids = pd.factorize(trips["route_id"].astype(str))
    block = trips["block_id"].astype(object) if "block_id" in trips else pd.Series(None, index=trips.index)
    return Network(
        feed=feed, tz=ZoneInfo(feed.timezone), calendar=feed_calendar(feed), lines=lines,
        trip_ids=trips["trip_id"].astype(str).to_numpy(dtype=object), trip_route=route_codes.astype(np.int64),
        route_ids=np.asarray(route_ids, dtype=object),
        trip_service=trips["service_id"].astype(str).to_numpy(dtype=object),
        trip_shape=trips["shape_id"].astype(str).to_numpy(dtype=object),
        trip_block=np.array([None if pd.isna(b) else str(b) for b in block], dtype=object),
        visit_ptr=ptr, visit_stop=visit_stop, visit_seq=st["stop_sequence"].to_numpy(dtype=np.int64),
        visit_dist=dist, visit_arr=st["arrival_s"].to_numpy(dtype=np.int64),
        visit_dep=st["departure_s"].to_numpy(dtype=np.int64), visit_segment=segment, stop_ids=stop_ids,
        stop_lat=feed.stops["stop_lat"].to_numpy(dtype=float), stop_lon=feed.stops["stop_lon"].to_numpy(dtype=float),
        segment_count=len(uniques),
    )


def infer_blocks(net: Network, running: IntArray) -> IntArray:
    """A vehicle number for each running trip: the feed's block_id where given, else chains we infer.

    A trip without a block follows the earliest-free vehicle of its route that ended near the trip's first stop
    (``prediction.gtfs.blocks.near_terminal``) at least ``_STAND_S`` before it starts; otherwise it gets a new vehicle.
    That mirrors how depots roster buses on a line and gives realistic layovers and late-trip propagation.
    ``prediction.gtfs.blocks.next_trips`` chains by an assignment instead, for predictions; the simulator keeps this
    greedy rule and its stand time (its maximum gap counts from the end of the stand), so simulated cities stay
    as they were.
    """
    vehicle = np.full(len(net.trip_ids), -1, dtype=np.int64)
    with_block = [i for i in running if net.trip_block[i] is not None]
    codes, _ = pd.factorize(np.array([net.trip_block[i] for i in with_block], dtype=object))
    vehicle[np.asarray(with_block, dtype=np.int64)] = codes
    next_id = int(codes.max()) + 1 if len(codes) else 0
    loose = np.array([i for i in running if net.trip_block[i] is None], dtype=np.int64)
    if len(loose) == 0:
        return vehicle
    first_v, last_v = net.visit_ptr[loose], net.visit_ptr[loose + 1] - 1
    start, end = net.visit_dep[first_v], net.visit_arr[last_v]
    free: dict[int, list[tuple[int, int, int]]] = {}  # route -> [(free at, last stop, vehicle)]
    for k in np.argsort(start, kind="stable"):
        trip = int(loose[k])
        pool = free.setdefault(int(net.trip_route[trip]), [])
        origin = int(net.visit_stop[first_v[k]])
        pick = _pick_vehicle(net, pool, origin, int(start[k]))
        if pick is None:
            pick, next_id = next_id, next_id + 1
        vehicle[trip] = pick
        pool.append((int(end[k]) + _STAND_S, int(net.visit_stop[last_v[k]]), pick))
    return vehicle


def _pick_vehicle(net: Network, pool: list[tuple[int, int, int]], origin: int, start: int) -> int | None:
    for n, (free_at, where, vehicle) in enumerate(pool):
        if free_at > start or start - free_at > MAX_LAYOVER_S:
            continue
        if near_terminal(net, where, origin):
            pool.pop(n)
            return vehicle
    return None

