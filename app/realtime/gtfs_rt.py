"""GTFS-realtime full-dataset snapshots (TripUpdates, VehiclePositions) built from predictions and vehicle states.

Rules kept here, after the spec and MobilityData's validator (``gtfs-rt-validator`` runs on the worker's output in
``tests/test_gtfs_rt_validator.py``): header version 2.0, FULL_DATASET, a timestamp of the build; one entity per
trip (per vehicle), ids unique; trip descriptors carry the start date; ``schedule_relationship`` written out on
every trip descriptor and stop time update (W009 asks for its presence, the enum default is not enough); stop time
updates sorted by stop_sequence with strictly increasing times (E022) and departure = arrival; trips, routes and
stops that the static feed does not know are left out. The two feeds name the same vehicles and trips (W002,
W003, E047): a TripUpdate is published only for a trip a published vehicle is on, with that vehicle's id, and
the public VehiclePositions only carries those vehicles (``serving_vehicles``); every fresh vehicle, on a trip
or not, goes to the internal ``LIVE_VEHICLES`` snapshot the live maps read.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf.json_format import MessageToDict
from google.transit import gtfs_realtime_pb2 as rt

from app.realtime.boards import PredictedArrival
from app.realtime.catalog import StaticCatalog
from prediction.avl.matching import ShapeLine

__all__ = ["LIVE_VEHICLES", "MAX_SHAPE_OFFSET_M", "TRIP_UPDATES", "VEHICLE_POSITIONS", "VehicleState", "empty_feed",
           "feed_json", "off_shape", "serving_vehicles", "trip_update_entities", "trip_updates_feed", "vehicle_entity",
           "vehicle_positions_feed"]

MAX_SHAPE_OFFSET_M = 200.0  # MobilityData E029: a position this far from the trip's shape is not on that trip
TRIP_UPDATES = "trip-updates"
VEHICLE_POSITIONS = "vehicle-positions"
ARC_CHORDS = 0.99  # JTS buffers draw a quarter circle as 8 chords: their midpoints are 0.5 % inside the arc
LIVE_VEHICLES = "vehicles"  # not GTFS-rt's: every fresh vehicle, for the live maps (see the module docstring)


@dataclass(frozen=True)
class VehicleState:
    """Where a vehicle is and which trip it serves, as the AVL matching last saw it."""

    vehicle_id: str
    lat: float
    lon: float
    timestamp: dt.datetime
    trip_id: str | None = None
    service_date: dt.date | None = None
    bearing: float | None = None
    speed_mps: float | None = None


def empty_feed(now: dt.datetime) -> rt.FeedMessage:
    feed = rt.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.incrementality = rt.FeedHeader.FULL_DATASET
    feed.header.timestamp = int(now.timestamp())
    return feed


def _describe_trip(descriptor: Any, catalog: StaticCatalog, trip_id: str, service_date: dt.date) -> None:
    descriptor.trip_id = trip_id
    descriptor.route_id = catalog.trips[trip_id].route_id
    direction = catalog.trips[trip_id].direction_id
    if direction is not None:
        descriptor.direction_id = direction
    descriptor.start_date = service_date.strftime("%Y%m%d")
    descriptor.schedule_relationship = rt.TripDescriptor.SCHEDULED


def serving_vehicles(catalog: StaticCatalog, vehicles: Iterable[VehicleState], *,
                     unassigned: Collection[str] = ()) -> dict[tuple[str, dt.date], VehicleState]:
    """The vehicle serving each (trip, service day) the static feed knows, as VehiclePositions would describe it
    (vehicles in ``unassigned`` describe no trip); of several claiming one trip, the one heard last (then the
    highest id), since each feed pairs a trip with one vehicle (MobilityData W003, E047)."""
    serving: dict[tuple[str, dt.date], VehicleState] = {}
    for v in vehicles:
        if v.trip_id not in catalog.trips or v.service_date is None or v.vehicle_id in unassigned:
            continue
        key = (v.trip_id, v.service_date)
        held = serving.get(key)
        if held is None or (held.timestamp, held.vehicle_id) < (v.timestamp, v.vehicle_id):
            serving[key] = v
    return serving


def trip_updates_feed(catalog: StaticCatalog, predictions: Iterable[PredictedArrival], now: dt.datetime, *,
                      serving: Mapping[tuple[str, dt.date], VehicleState] | None = None) -> rt.FeedMessage:
    """One TripUpdate per (trip, service day) with a stop time update per predicted stop; with ``serving``
    (``serving_vehicles``) only the trips a vehicle serves, each naming that vehicle."""
    feed = empty_feed(now)
    by_trip: dict[tuple[str, dt.date], dict[int, PredictedArrival]] = defaultdict(dict)
    for p in predictions:
        if catalog.knows(p) and (serving is None or (p.trip_id, p.service_date) in serving):
            by_trip[(p.trip_id, p.service_date)][p.stop_sequence] = p  # one update per stop_sequence
    for (trip_id, day), calls in sorted(by_trip.items()):
        entity = feed.entity.add()
        entity.id = f"{trip_id}:{day:%Y%m%d}"
        update = entity.trip_update
        _describe_trip(update.trip, catalog, trip_id, day)
        _add_stop_time_updates(update, [calls[s] for s in sorted(calls)])
        vehicles = {p.vehicle_id for p in calls.values() if p.vehicle_id}
        if serving is not None:
            update.vehicle.id = serving[(trip_id, day)].vehicle_id
        elif len(vehicles) == 1:
            update.vehicle.id = vehicles.pop()
        observed = [p.observed_at for p in calls.values() if p.observed_at is not None]
        update.timestamp = int(max(observed).timestamp()) if observed else int(now.timestamp())
    return feed


def _add_stop_time_updates(update: Any, calls: Sequence[PredictedArrival]) -> None:
    previous: int | None = None
    for call in calls:
        time = _increasing(int(call.predicted.timestamp()), previous)
        stu = update.stop_time_update.add()
        stu.stop_sequence = call.stop_sequence
        stu.stop_id = call.stop_id
        stu.arrival.time = time
        stu.departure.time = time
        if call.early is not None and call.late is not None:
            spread = max(0, int((call.late - call.early).total_seconds()))
            stu.arrival.uncertainty = spread
            stu.departure.uncertainty = spread
        stu.schedule_relationship = rt.TripUpdate.StopTimeUpdate.SCHEDULED
        previous = time


def _increasing(time: int, previous: int | None) -> int:
    """A stop's time, strictly after the previous stop's (MobilityData E022 reports equal times as an error).

    A tie or a later stop predicted before an earlier one is nudged to a second after the previous stop rather
    than dropped: ties come from predictions that agree to the second (stops a few metres apart, several
    overdue stops held at "now"), and every stop keeps its update; the nudge is a second per tied stop."""
    return time if previous is None else max(time, previous + 1)


def off_shape(vehicles: Iterable[VehicleState], shape_of: Callable[[str], ShapeLine | None],
              limit_m: float = MAX_SHAPE_OFFSET_M) -> set[str]:
    """Vehicles more than ``limit_m`` from the shape of the trip they claim (one projection per shape).

    MobilityData's E029 buffers the shape by ``limit_m`` in raw degrees, so east-west its reach is only
    ``limit_m * cos(lat)``, and its round ends are drawn as chords; the limit here shrinks the same way, so no
    vehicle we publish on its trip is one the validator finds off its shape (north-south that is stricter than
    the rule, by the same factor)."""
    by_shape: dict[int, tuple[ShapeLine, list[VehicleState]]] = {}
    for v in vehicles:
        line = shape_of(v.trip_id) if v.trip_id is not None else None
        if line is not None:
            by_shape.setdefault(id(line), (line, []))[1].append(v)
    far: set[str] = set()
    for line, group in by_shape.values():
        lats = np.array([v.lat for v in group])
        _, offset = line.nearest(lats, np.array([v.lon for v in group]))
        limit = limit_m * ARC_CHORDS * np.cos(np.radians(lats))
        far.update(v.vehicle_id for v, o, m in zip(group, offset.tolist(), limit.tolist(), strict=True) if o > m)
    return far


def vehicle_positions_feed(catalog: StaticCatalog, vehicles: Iterable[VehicleState],
                           now: dt.datetime, *, unassigned: Collection[str] = ()) -> rt.FeedMessage:
    """One VehiclePosition per vehicle; the trip is described only when the static feed knows it and the vehicle
    is not in ``unassigned`` (e.g. ``off_shape``: a bus far from its trip's shape is published without a trip).
    The public feed passes only the vehicles whose trips have a TripUpdate (see the module docstring)."""
    feed = empty_feed(now)
    latest: dict[str, VehicleState] = {}
    for v in vehicles:
        if v.vehicle_id not in latest or latest[v.vehicle_id].timestamp < v.timestamp:
            latest[v.vehicle_id] = v
    for vehicle_id in sorted(latest):
        vehicle_entity(feed.entity.add(), catalog, latest[vehicle_id], assign=vehicle_id not in unassigned)
    return feed


def vehicle_entity(entity: Any, catalog: StaticCatalog, state: VehicleState, *, assign: bool = True) -> None:
    """Fill a ``FeedEntity`` with one vehicle's position; its trip when ``assign`` and the static feed knows it."""
    entity.id = f"vehicle:{state.vehicle_id}"
    position = entity.vehicle
    position.vehicle.id = state.vehicle_id
    position.position.latitude = state.lat
    position.position.longitude = state.lon
    if state.bearing is not None:
        position.position.bearing = state.bearing
    if state.speed_mps is not None:
        position.position.speed = state.speed_mps
    position.timestamp = int(state.timestamp.timestamp())
    if assign and state.trip_id in catalog.trips and state.service_date is not None:
        _describe_trip(position.trip, catalog, state.trip_id, state.service_date)


def trip_update_entities(catalog: StaticCatalog, trip_ids: Sequence[str], start_dates: Sequence[str],
                         sequences: npt.NDArray[np.int64], stop_ids: Sequence[str], predicted: npt.NDArray[np.float64],
                         lower: npt.NDArray[np.float64] | None, upper: npt.NDArray[np.float64] | None,
                         vehicle_ids: Sequence[str | None], observed: npt.NDArray[np.float64]) -> rt.FeedMessage:
    """TripUpdates from a cycle's arrays (a header-less message; the caller adds the header): the same rules as
    ``trip_updates_feed``, without building a ``PredictedArrival`` per stop call."""
    feed = rt.FeedMessage()
    keys = list(zip(trip_ids, start_dates, strict=True))
    order = sorted(range(len(keys)), key=lambda i: (keys[i], int(sequences[i])))
    current: tuple[str, str] | None = None
    update: Any = None
    previous: int | None = None
    last_seq: int | None = None
    for i in order:
        trip_id, day = keys[i]
        if trip_id not in catalog.trips or stop_ids[i] not in catalog.stops:
            continue
        if keys[i] != current:
            current, previous, last_seq = keys[i], None, None
            entity = feed.entity.add()
            entity.id = f"{trip_id}:{day}"
            update = entity.trip_update
            _describe_trip(update.trip, catalog, trip_id, dt.date(int(day[:4]), int(day[4:6]), int(day[6:8])))
            if vehicle_ids[i]:
                update.vehicle.id = str(vehicle_ids[i])
            update.timestamp = int(observed[i])
        seq = int(sequences[i])
        if seq == last_seq:
            continue  # one update per stop_sequence
        time = _increasing(int(predicted[i]), previous)
        stu = update.stop_time_update.add()
        stu.stop_sequence, stu.stop_id = seq, stop_ids[i]
        stu.arrival.time = time
        stu.departure.time = time
        if lower is not None and upper is not None:
            spread = max(0, int(upper[i] - lower[i]))
            stu.arrival.uncertainty = spread
            stu.departure.uncertainty = spread
        stu.schedule_relationship = rt.TripUpdate.StopTimeUpdate.SCHEDULED
        previous, last_seq = time, seq
    return feed


def feed_json(body: bytes) -> dict[str, Any]:
    """A serialized FeedMessage as JSON-ready data (field names as in the proto)."""
    feed = rt.FeedMessage()
    feed.ParseFromString(body)
    data: dict[str, Any] = MessageToDict(feed, preserving_proto_field_name=True)
    return data
