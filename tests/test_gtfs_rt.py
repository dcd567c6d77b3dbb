"""GTFS-rt feeds decoded with gtfs-realtime-bindings and held to the spec and MobilityData's validator rules."""

from __future__ import annotations

import datetime as dt
import time
from itertools import pairwise

from flask import Flask
from flask.testing import FlaskClient
from google.transit import gtfs_realtime_pb2 as rt

from app import get_db, get_redis
from app.models import StopTime, Trip
from app.realtime.boards import PredictedArrival
from app.realtime.catalog import StaticCatalog
from app.realtime.gtfs_rt import LIVE_VEHICLES, VehicleState
from app.realtime.store import read_snapshot
from tests.api_feed import add_demo_feed
from tests.fixtures.boards import write_live


def decode(client: FlaskClient, url: str) -> rt.FeedMessage:
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "application/x-protobuf"
    feed = rt.FeedMessage()
    feed.ParseFromString(response.data)
    return feed


def check_header(feed: rt.FeedMessage) -> None:
    assert feed.header.gtfs_realtime_version == "2.0"
    assert feed.header.incrementality == rt.FeedHeader.FULL_DATASET
    assert abs(feed.header.timestamp - time.time()) < 60
    ids = [e.id for e in feed.entity]
    assert len(ids) == len(set(ids))


def publish(app: Flask) -> None:
    now = dt.datetime.now(dt.UTC)
    at = now + dt.timedelta(minutes=5)
    with get_db(app).session() as session:
        catalog = StaticCatalog.load(session)
    day = now.astimezone(catalog.timezone).date()
    predictions = [  # out of order, one going backwards in time (the predictor only names the feed's trips)
        PredictedArrival("T12-a", "S3", 30, day, at + dt.timedelta(minutes=9), vehicle_id="BUS-7"),
        PredictedArrival("T12-a", "S2", 20, day, at + dt.timedelta(minutes=10), vehicle_id="BUS-7"),
        PredictedArrival("T12-b", "S1", 10, day, at, early=at - dt.timedelta(seconds=30), late=at),
    ]
    vehicles = [VehicleState("BUS-7", 43.2395, 76.95, now, trip_id="T12-a", service_date=day, bearing=270),
                VehicleState("BUS-8", 43.2395, 76.95, now, trip_id="T12-b", service_date=day),
                VehicleState("BUS-X", 43.24, 76.93, now, trip_id="GHOST", service_date=day),
                VehicleState("BUS-Y", 43.24, 76.93, now)]  # between trips
    write_live(app, predictions, vehicles, now=now, ttl_s=90)


def test_trip_updates_follow_the_rules(app: Flask, client: FlaskClient) -> None:
    add_demo_feed(app)
    publish(app)
    feed = decode(client, "/gtfs-rt/trip-updates")
    check_header(feed)
    with get_db(app).session() as session:
        trips = set(session.scalars(Trip.__table__.select().with_only_columns(Trip.trip_id)))
        calls = {(t, q, s) for t, q, s in session.execute(
            StopTime.__table__.select().with_only_columns(StopTime.trip_id, StopTime.stop_sequence, StopTime.stop_id))}
    assert [e.trip_update.trip.trip_id for e in feed.entity] == ["T12-a", "T12-b"]
    for entity in feed.entity:
        update = entity.trip_update
        assert update.trip.trip_id in trips and len(update.trip.start_date) == 8 and update.trip.route_id == "R12"
        sequences = [u.stop_sequence for u in update.stop_time_update]
        assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
        times = [u.arrival.time for u in update.stop_time_update]
        assert all(a < b for a, b in pairwise(times))  # strictly: E022 reports equal times
        assert update.trip.HasField("schedule_relationship")  # W009: the enum default is not enough
        for u in update.stop_time_update:
            assert (update.trip.trip_id, u.stop_sequence, u.stop_id) in calls
            assert u.departure.time >= u.arrival.time
            assert u.HasField("schedule_relationship") and u.schedule_relationship == u.SCHEDULED
    assert [e.trip_update.vehicle.id for e in feed.entity] == ["BUS-7", "BUS-8"]  # W002
    # the stop going backwards in time is nudged to a second after the stop before it
    first, second = feed.entity[0].trip_update.stop_time_update
    assert second.arrival.time == first.arrival.time + 1


def test_vehicle_positions_and_json(app: Flask, client: FlaskClient) -> None:
    add_demo_feed(app)
    publish(app)
    feed = decode(client, "/gtfs-rt/vehicle-positions")
    check_header(feed)
    by_id = {e.vehicle.vehicle.id: e.vehicle for e in feed.entity}
    assert by_id["BUS-7"].trip.trip_id == "T12-a" and by_id["BUS-7"].trip.start_date
    assert by_id["BUS-7"].trip.HasField("schedule_relationship")
    assert set(by_id) == {"BUS-7", "BUS-8"}  # W003: only vehicles whose trip has a TripUpdate
    live = read_snapshot(get_redis(app), LIVE_VEHICLES)  # the live maps still see every vehicle
    assert live is not None
    every = {e.vehicle.vehicle.id: e.vehicle for e in rt.FeedMessage.FromString(live.body).entity}
    assert set(every) == {"BUS-7", "BUS-8", "BUS-X", "BUS-Y"}
    assert not every["BUS-X"].HasField("trip")  # an unknown trip is not described
    body = client.get("/gtfs-rt/vehicle-positions?format=json").get_json()
    assert body["header"]["incrementality"] == "FULL_DATASET" and len(body["entity"]) == 2


def test_empty_full_dataset_without_a_worker(client: FlaskClient) -> None:
    feed = decode(client, "/gtfs-rt/trip-updates")
    check_header(feed)
    assert len(feed.entity) == 0
