"""GTFS-rt from the worker, decoded with gtfs-realtime-bindings as consumers do: full dataset with a fresh header,
unique entity ids, ids from the static feed, sorted stop time updates with strictly increasing times, TripUpdates
and VehiclePositions naming the same vehicles and trips, positions far from their trip's shape published without
the trip (on the live maps' snapshot only), and two shards' entities in one snapshot."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest
from flask import Flask
from google.transit import gtfs_realtime_pb2 as rt

from app import get_redis
from app.realtime.gtfs_rt import LIVE_VEHICLES
from app.realtime.store import read_snapshot
from app.worker.loop import Shard, WorkerSettings
from tests.api_feed import TRIPS
from tests.worker_feed import MORNING, add_worker_feed, event, events, make_worker


@pytest.fixture
def feed_app(app: Flask) -> Flask:
    add_worker_feed(app)
    return app


def ping(vehicle: str, lat: float, lon: float, trip: str | None, t: float = MORNING - 5) -> dict[str, object]:
    return {"vehicle_id": vehicle, "t": t, "latitude": lat, "longitude": lon, "trip_id": trip, "route_id": None,
            "start_date": None if trip is None else "20260310", "bearing": 90.0, "speed": 8.0}


def fetch(app: Flask, path: str) -> rt.FeedMessage:
    response = app.test_client().get(path)
    assert response.status_code == 200 and response.mimetype == "application/x-protobuf"
    feed = rt.FeedMessage()
    feed.ParseFromString(response.data)
    return feed


def test_trip_updates_follow_the_rules(feed_app: Flask, tmp_path: Path) -> None:
    worker = make_worker(feed_app, tmp_path)
    worker.take_pings(pd.DataFrame([ping("BUS-1", 43.2396, 76.9480, "T12-a"),
                                    ping("BUS-9", 43.2398, 76.9455, "T92-a")]))
    worker.cycle(MORNING, events(event("T12-a", 10, MORNING - 60), event("T92-a", 10, MORNING - 30, "BUS-9"),
                                 event("T12-b", 10, MORNING - 90, "BUS-2")))  # BUS-2 is not heard: left out
    feed = fetch(feed_app, "/gtfs-rt/trip-updates")
    assert feed.header.gtfs_realtime_version == "2.0"
    assert feed.header.incrementality == rt.FeedHeader.FULL_DATASET
    assert feed.header.timestamp == int(MORNING)
    ids = [e.id for e in feed.entity]
    assert len(ids) == len(set(ids)) == 2
    for entity in feed.entity:
        update = entity.trip_update
        assert update.trip.trip_id in TRIPS and update.trip.start_date == "20260310"
        assert update.trip.route_id == TRIPS[update.trip.trip_id][0]
        sequences = [s.stop_sequence for s in update.stop_time_update]
        times = [s.arrival.time for s in update.stop_time_update]
        assert sequences == sorted(sequences) and len(sequences) == len(set(sequences)) > 0
        assert all(a < b for a, b in pairwise(times))
        assert all(s.departure.time >= s.arrival.time for s in update.stop_time_update)
        assert all(s.HasField("schedule_relationship") for s in update.stop_time_update)
        stops = {stop for stop, _, _ in TRIPS[update.trip.trip_id][5]}
        assert {s.stop_id for s in update.stop_time_update} <= stops
    by_trip = {e.trip_update.trip.trip_id: e.trip_update for e in feed.entity}
    assert by_trip["T12-a"].vehicle.id == "BUS-1" and by_trip["T92-a"].vehicle.id == "BUS-9"
    assert [s.stop_id for s in by_trip["T12-a"].stop_time_update] == ["S2", "S3"]


def test_positions_far_from_the_shape_lose_their_trip(feed_app: Flask, tmp_path: Path) -> None:
    worker = make_worker(feed_app, tmp_path)
    worker.take_pings(pd.DataFrame([
        ping("BUS-1", 43.2396, 76.9480, "T12-a"),  # on shape SH12, between S1 and S2
        ping("BUS-2", 43.2500, 76.9480, "T12-b"),  # about 1.1 km north of SH12
        ping("BUS-3", 43.2398, 76.9455, None),  # no trip
        ping("BUS-4", 43.2396, 76.9480, "no-such-trip"),
        ping("BUS-5", 43.2396, 76.9480, "T12-a", t=MORNING - 3600),  # too old to publish
    ]))
    worker.cycle(MORNING, events(event("T12-a", 10, MORNING - 60)))
    feed = fetch(feed_app, "/gtfs-rt/vehicle-positions")
    assert feed.header.timestamp == int(MORNING) and feed.header.gtfs_realtime_version == "2.0"
    assert [e.vehicle.vehicle.id for e in feed.entity] == ["BUS-1"]  # the only one with a TripUpdate (W003)
    live = read_snapshot(get_redis(feed_app), LIVE_VEHICLES)  # what the live maps read: every fresh vehicle
    assert live is not None
    feed = rt.FeedMessage.FromString(live.body)
    by_vehicle = {e.vehicle.vehicle.id: e.vehicle for e in feed.entity}
    assert set(by_vehicle) == {"BUS-1", "BUS-2", "BUS-3", "BUS-4"}
    assert len({e.id for e in feed.entity}) == len(feed.entity)
    assert by_vehicle["BUS-1"].trip.trip_id == "T12-a" and by_vehicle["BUS-1"].trip.start_date == "20260310"
    for unassigned in ("BUS-2", "BUS-3", "BUS-4"):
        assert not by_vehicle[unassigned].HasField("trip")
    assert by_vehicle["BUS-2"].position.latitude == pytest.approx(43.25)


def test_two_shards_publish_one_snapshot(feed_app: Flask, tmp_path: Path) -> None:
    stream = events(event("T12-a", 10, MORNING - 60), event("T92-a", 10, MORNING - 30, "BUS-9"))
    for index in (1, 2):
        worker = make_worker(feed_app, tmp_path, WorkerSettings(shard=Shard(index, 3)))
        worker.take_pings(pd.DataFrame([ping("BUS-1", 43.2396, 76.9480, "T12-a"),
                                        ping("BUS-9", 43.2398, 76.9455, "T92-a")]))
        worker.cycle(MORNING + index, stream)
    updates = fetch(feed_app, "/gtfs-rt/trip-updates")
    assert sorted(e.trip_update.trip.trip_id for e in updates.entity) == ["T12-a", "T92-a"]
    assert updates.header.timestamp == int(MORNING) + 2
    positions = fetch(feed_app, "/gtfs-rt/vehicle-positions")
    assert sorted(e.vehicle.vehicle.id for e in positions.entity) == ["BUS-1", "BUS-9"]
    assert dt.datetime.fromtimestamp(positions.header.timestamp, dt.UTC) == \
        dt.datetime.fromtimestamp(int(MORNING) + 2, dt.UTC)
