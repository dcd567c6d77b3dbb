"""The worker's board writer: timetable and live boards land in Redis with a TTL, a version and a pub/sub message
per changed stop; a board whose rows did not change keeps its version and only has its TTL refreshed."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from app import get_redis
from app.realtime.boards import PredictedArrival
from app.realtime.store import board_channel, board_key, read_board
from tests.api_feed import TUESDAY
from tests.fixtures.boards import LiveBoards
from tests.worker_feed import add_worker_feed

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
    add_worker_feed(app)
    return app


def test_timetable_boards_are_stored_with_ttl_and_version(feed_app: Flask) -> None:
    live = LiveBoards(feed_app, ttl_s=60, with_timetable=True)
    live.worker.writer.batch_size = 1  # one script call per board: batches must not lose or mix boards
    report = live.cycle([], now=MORNING)
    # S4 and S5 see no departure in the window (S4 is only ever a last stop); the station ST has no board
    assert report.boards == 3 and report.changed == 3
    assert {s for s in ("S1", "S2", "S3", "S4", "S5", "ST") if read_board(get_redis(feed_app), s)} == {
        "S1", "S2", "S3"}
    body = board_json(feed_app, "S1")
    stored = read_board(get_redis(feed_app), "S1")
    assert stored is not None
    assert body["source"] == "board" and body["version"] == stored.version > 0 and body["realtime"] is False
    assert body["stop"]["translations"]["en"] == "Abay — Dostyk"
    first = body["arrivals"][0]
    assert (first["trip_id"], first["route_short_name"], first["route_color"]) == ("T12-a", "12", "E4002B")
    assert first["route_text_color"] == "FFFFFF" and first["minutes_away"] == 2 and first["realtime"] is False
    assert 0 < get_redis(feed_app).ttl(board_key("S1")) <= 60


def test_predictions_merge_with_timetable_and_announce_changes(feed_app: Flask) -> None:
    client = get_redis(feed_app)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(board_channel("S2"))
    live = LiveBoards(feed_app, with_timetable=True)
    predictions = [prediction("T12-a", "S2", 20, 9.5), prediction("T12-a", "S3", 30, 14)]
    cycle = live.cycle(predictions, now=MORNING)
    assert cycle.predictions == 2 and cycle.boards == 3  # S1 (T12-b), S2, S3 (T12-back)
    rows = board_json(feed_app, "S2")["arrivals"]
    live_rows = [r for r in rows if r["realtime"]]
    assert [(r["trip_id"], r["vehicle_id"], r["minutes_away"]) for r in live_rows] == [("T12-a", "BUS-7", 9)]
    assert live_rows[0]["interval"] == {"early": "2026-03-10T08:06:50+05:00", "late": "2026-03-10T08:09:00+05:00"}
    assert {r["trip_id"] for r in rows} >= {"T92-a", "T12-b"} and [r["trip_id"] for r in rows].count("T12-a") == 1
    # S3 is T12-a's last stop: nobody boards there, so its board has no row for it
    assert "T12-a" not in {r["trip_id"] for r in board_json(feed_app, "S3")["arrivals"]}
    message = next_message(pubsub, 2)
    first = read_board(client, "S2")
    assert first is not None and message is not None and message["data"].decode() == first.etag

    again = live.cycle(predictions, now=MORNING)
    assert again.boards == 3 and again.changed == 0
    kept = read_board(client, "S2")
    assert kept == first  # unchanged rows: the stored board (its version too) stays, only its TTL is refreshed
    assert next_message(pubsub, 0.3) is None
    pubsub.close()
