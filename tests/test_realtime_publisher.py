"""Publisher: boards from the timetable and from predictions land in Redis with a TTL, a version and a
pub/sub message per changed stop; ids unknown to the static feed are dropped."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from app import get_db, get_redis
from app.realtime.boards import PredictedArrival
from app.realtime.build import publish_predictions, publish_schedule, schedule_rows
from app.realtime.catalog import StaticCatalog
from app.realtime.publisher import BoardPublisher
from app.realtime.store import board_channel, board_key, read_board
from tests.api_feed import TUESDAY, add_demo_feed

ALMATY = ZoneInfo("Asia/Almaty")
MORNING = dt.datetime(2026, 3, 10, 7, 58, tzinfo=ALMATY)


def board_json(app: Flask, stop_id: str) -> dict[str, Any]:
    stored = read_board(get_redis(app), stop_id)
    assert stored is not None
    body: dict[str, Any] = json.loads(stored.body)
    return body


def next_message(pubsub: Any, timeout: float) -> Any:
    """The next published message (ignored subscribe confirmations read as None, so keep asking)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.05)
        if message is not None:
            return message
    return None


def prediction(trip: str, stop: str, seq: int, minutes: float, vehicle: str = "BUS-7") -> PredictedArrival:
    at = MORNING + dt.timedelta(minutes=minutes)
    return PredictedArrival(trip_id=trip, stop_id=stop, stop_sequence=seq, service_date=TUESDAY, predicted=at,
                            scheduled=at - dt.timedelta(minutes=1), vehicle_id=vehicle,
                            early=at - dt.timedelta(seconds=40), late=at + dt.timedelta(seconds=90))


@pytest.fixture
def feed_app(app: Flask) -> Flask:
    add_demo_feed(app)
    return app


def test_schedule_boards_are_stored_with_ttl_and_version(feed_app: Flask) -> None:
    publisher = BoardPublisher(get_redis(feed_app), ttl_s=60, batch_size=1)
    with get_db(feed_app).session() as session:
        result = publish_schedule(publisher, session, feed_app.extensions["service_calendars"], now=MORNING,
                                  window_min=90)
    assert result.written == 5 and result.changed == 5  # S1..S5; the station ST has no board
    body = board_json(feed_app, "S1")
    assert body["source"] == "board" and body["version"] == result.version and body["realtime"] is False
    assert body["stop"]["translations"]["en"] == "Abay — Dostyk"
    first = body["arrivals"][0]
    assert (first["trip_id"], first["route_short_name"], first["route_color"]) == ("T12-a", "12", "E4002B")
    assert first["route_text_color"] == "FFFFFF" and first["minutes_away"] == 2 and first["realtime"] is False
    assert 0 < get_redis(feed_app).ttl(board_key("S1")) <= 60


def test_predictions_merge_with_schedule_and_announce_changes(feed_app: Flask) -> None:
    client = get_redis(feed_app)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(board_channel("S2"))
    publisher = BoardPublisher(client)
    with get_db(feed_app).session() as session:
        catalog = StaticCatalog.load(session)
        scheduled = {"S2": schedule_rows(session, feed_app.extensions["service_calendars"], "S2", now=MORNING,
                                         window_min=90)}
    predictions = [prediction("T12-a", "S2", 20, 9.5), prediction("T12-a", "S3", 30, 14),
                   prediction("NO-SUCH-TRIP", "S2", 20, 3)]
    cycle = publish_predictions(publisher, catalog, predictions, [], now=MORNING, window_min=90, scheduled=scheduled)
    assert cycle.dropped == 1 and cycle.boards.written == 2
    rows = board_json(feed_app, "S2")["arrivals"]
    live = [r for r in rows if r["realtime"]]
    assert [(r["trip_id"], r["vehicle_id"], r["minutes_away"]) for r in live] == [("T12-a", "BUS-7", 9)]
    assert live[0]["interval"] == {"early": "2026-03-10T08:06:50+05:00", "late": "2026-03-10T08:09:00+05:00"}
    assert {r["trip_id"] for r in rows} >= {"T92-a", "T12-b"} and [r["trip_id"] for r in rows].count("T12-a") == 1
    message = next_message(pubsub, 2)
    assert message is not None and message["data"].decode() == read_board(client, "S2").etag  # type: ignore[union-attr]

    again = publish_predictions(publisher, catalog, predictions, [], now=MORNING, window_min=90, scheduled=scheduled)
    assert again.boards.version > cycle.boards.version and again.boards.changed == 0
    assert next_message(pubsub, 0.3) is None
    pubsub.close()
