"""What a display maker reads in every arrival row (issue 17): headsigns and route names in each language the
feed translates into, arrival and departure apart, deviation, stops and metres away, status, wheelchair access
and occupancy — on live boards, on timetable rows and on the answer from the schedule alike. The expected values
come from the demo feed's own files (``gtfs_data/almaty``), read here with ``csv``, not from the code under test."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import get_db
from app.realtime.boards import STATUSES, BoardRow, PredictedArrival
from app.realtime.catalog import FeedTexts, wheelchair
from app.schedule.importer import import_feed
from app.worker import loop
from tests.conftest import DEMO_FEED
from tests.fixtures.boards import LiveBoards, cycle_predictions, write_live
from tests.worker_feed import ALMATY, add_worker_feed

TUESDAY = dt.date(2026, 3, 10)  # the demo feed's weekday service runs
TRIP = "R2-wd-0-001"  # route 2's first weekday trip, headsign "мкр. Жетысу-2"
CALL = 6  # the row's stop: the sixth of the trip (Толе би — Абылай хана, a 20 s dwell)


def _rows(name: str) -> list[dict[str, str]]:
    with (DEMO_FEED / name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _translated(table: str, field: str, record_id: str, text: str) -> dict[str, str]:
    """``{language: text}`` of one field from translations.txt, by record id or else by the text itself."""
    found: dict[str, str] = {}
    for row in _rows("translations.txt"):
        if row["table_name"] == table and row["field_name"] == field and (
                row["record_id"] == record_id or (not row["record_id"] and row["field_value"] == text)):
            found[row["language"]] = row["translation"]
    return found


def _gtfs_time(day: dt.date, text: str) -> dt.datetime:
    h, m, s = (int(p) for p in text.split(":"))
    return dt.datetime.combine(day, dt.time(), ALMATY) + dt.timedelta(hours=h, minutes=m, seconds=s)


@pytest.fixture
def almaty(app: Flask) -> Flask:
    import_feed(get_db(app), DEMO_FEED, label="almaty", canonical=False)
    return app


@pytest.fixture
def trip() -> dict[str, Any]:
    """The trip's row from trips.txt and routes.txt, and its sixth call from stop_times.txt."""
    found = next(t for t in _rows("trips.txt") if t["trip_id"] == TRIP)
    route = next(r for r in _rows("routes.txt") if r["route_id"] == found["route_id"])
    call = [s for s in _rows("stop_times.txt") if s["trip_id"] == TRIP][CALL - 1]
    return {"trip": found, "route": route, "call": call,
            "arrival": _gtfs_time(TUESDAY, call["arrival_time"]),
            "departure": _gtfs_time(TUESDAY, call["departure_time"])}


def _names_match_the_feed(row: dict[str, Any], trip: dict[str, Any]) -> None:
    headsign, route = trip["trip"]["trip_headsign"], trip["route"]
    assert row["headsign"] == headsign
    assert row["headsign_translations"] == _translated("trips", "trip_headsign", TRIP, headsign)
    assert set(row["headsign_translations"]) == {"kk", "ru", "en"}
    assert row["route_long_name"] == route["route_long_name"]
    assert row["route_long_name_translations"] == _translated("routes", "route_long_name", route["route_id"],
                                                              route["route_long_name"])
    assert row["wheelchair_accessible"] is None  # the demo feed's trips.txt has no wheelchair_accessible


def test_a_live_row_reads_like_onebusaway(almaty: Flask, client: FlaskClient, trip: dict[str, Any]) -> None:
    arrival, departure = trip["arrival"], trip["departure"]
    assert departure > arrival  # this call has a dwell, so arrival and departure differ
    now = arrival - dt.timedelta(minutes=6)
    stop = trip["call"]["stop_id"]
    write_live(almaty, [PredictedArrival(
        TRIP, stop, int(trip["call"]["stop_sequence"]), TUESDAY, arrival + dt.timedelta(seconds=95),
        scheduled=arrival, scheduled_departure=departure, vehicle_id="bus-7", stops_away=2, distance_m=812.4,
        occupancy="FEW_SEATS_AVAILABLE")], now=now, with_timetable=True)
    body = client.get(f"/api/v1/stops/{stop}/arrivals").get_json()
    assert body["source"] == "board"
    live = [r for r in body["arrivals"] if r["realtime"]]
    assert [r["trip_id"] for r in live] == [TRIP]
    row = live[0]
    _names_match_the_feed(row, trip)
    predicted = arrival + dt.timedelta(seconds=95)
    assert row["arrival_time"] == {"scheduled": arrival.isoformat(), "predicted": predicted.isoformat()}
    assert row["departure_time"] == {"scheduled": departure.isoformat(),
                                     "predicted": (predicted + (departure - arrival)).isoformat()}
    assert row["schedule_deviation_s"] == 95 and row["status"] == "live"
    assert (row["stops_away"], row["distance_m"], row["occupancy"]) == (2, 812, "FEW_SEATS_AVAILABLE")
    timetable = [r for r in body["arrivals"] if not r["realtime"]]
    assert timetable, "the board has timetable rows of other runs"
    for other in timetable:
        assert other["status"] == "scheduled" and other["arrival_time"]["predicted"] is None
        assert other["schedule_deviation_s"] is None and other["stops_away"] is None
        assert other["departure_time"]["scheduled"] >= other["arrival_time"]["scheduled"]
        assert set(other["headsign_translations"]) == {"kk", "ru", "en"}
    assert all(set(r) == set(row) for r in body["arrivals"])


def test_the_schedule_answer_has_every_key_of_a_board_row(almaty: Flask, client: FlaskClient,
                                                          trip: dict[str, Any]) -> None:
    at = trip["arrival"] - dt.timedelta(minutes=1)
    stop = trip["call"]["stop_id"]
    answer = client.get(f"/api/v1/stops/{stop}/arrivals", query_string={"at": at.isoformat(), "route": "2"})
    body = answer.get_json()
    assert answer.status_code == 200 and body["source"] == "schedule"
    row = next(r for r in body["arrivals"] if r["trip_id"] == TRIP)
    _names_match_the_feed(row, trip)
    assert row["arrival_time"] == {"scheduled": trip["arrival"].isoformat(), "predicted": None}
    assert row["departure_time"] == {"scheduled": trip["departure"].isoformat(), "predicted": None}
    assert (row["status"], row["stops_away"], row["distance_m"], row["occupancy"]) == ("scheduled", None, None, None)
    board_keys = BoardRow("R", None, None, None, None, "T", 1, TUESDAY, None, at, False).item(at, ALMATY).keys()
    assert all(set(r) == set(board_keys) for r in body["arrivals"])


def test_cancelled_runs_and_skipped_stops_say_so(app: Flask, client: FlaskClient) -> None:
    """Nothing in the demo produces them yet (no GTFS-rt input): a cycle as a feed that has them would give it."""
    add_worker_feed(app)
    now = dt.datetime(2026, 3, 10, 8, 1, tzinfo=ALMATY)
    boards = LiveBoards(app, with_timetable=True)
    net = boards.worker.net
    calls = [PredictedArrival("T12-a", "S2", 20, TUESDAY, now + dt.timedelta(minutes=4), vehicle_id="BUS-1",
                              status="skipped")]
    trips = net.trip_ids.tolist()
    cancelled = frozenset({(trips.index("T12-b"), "20260310")})
    predictions = dataclasses.replace(cycle_predictions(net, calls, now), cancelled=cancelled)
    with mock.patch.object(loop, "predict_cycle", lambda *args, **kwargs: predictions):
        boards.worker.cycle(now.timestamp())
    rows = {r["trip_id"]: r for r in client.get("/api/v1/stops/S2/arrivals").get_json()["arrivals"]}
    assert rows["T12-a"]["status"] == "skipped" and rows["T12-a"]["realtime"] is True
    assert rows["T12-b"]["status"] == "cancelled" and rows["T12-b"]["realtime"] is False
    assert rows["T92-a"]["status"] == "scheduled"
    assert {r["status"] for r in rows.values()} <= set(STATUSES)


def test_a_language_the_feed_lacks_for_one_text_falls_back_to_the_text() -> None:
    texts = FeedTexts([("trips", "trip_headsign", "kk", "Орталық", None, "Центр"),
                       ("trips", "trip_headsign", "en", "Centre", None, "Центр"),
                       ("trips", "trip_headsign", "en", "Depot", "T9", None)])
    assert texts.names("trips", "trip_headsign", "T1", "Центр") == {"en": "Centre", "kk": "Орталық"}
    # by record id wins over by text; kk has no translation for this trip: the feed's own text stands
    assert texts.names("trips", "trip_headsign", "T9", "Центр") == {"en": "Depot", "kk": "Орталық"}
    assert texts.names("trips", "trip_headsign", "T2", "Парк") == {"en": "Парк", "kk": "Парк"}
    assert texts.names("trips", "trip_headsign", "T2", None) == {}


@pytest.mark.parametrize(("raw", "expected"), [(1, True), (2, False), (0, None), (None, None), ("", None),
                                               (float("nan"), None), ("1", True)])
def test_wheelchair_access_reads_trips_txt(raw: object, expected: bool | None) -> None:
    assert wheelchair(raw) is expected


def test_board_row_item_keys_are_the_documented_ones(tmp_path: Path) -> None:
    """The OpenAPI Arrival schema names every key a row has (schemathesis checks values; this checks coverage)."""
    from app.api.schemas import SCHEMAS

    at = dt.datetime(2026, 3, 10, 8, 0, tzinfo=ALMATY)
    item = BoardRow("R", None, None, None, None, "T", 1, TUESDAY, None, at, False).item(at, ALMATY)
    arrival = SCHEMAS["Arrival"]
    assert set(item) <= set(arrival["properties"])
    assert set(arrival["required"]) >= {"headsign_translations", "arrival_time", "departure_time", "status"}
