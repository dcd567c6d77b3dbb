"""Departures for a service day and the next arrivals at a stop, across midnight and calendar exceptions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api_feed import add_demo_feed


@pytest.fixture
def feed(app: Flask) -> int:
    return add_demo_feed(app)


def _arrivals(client: FlaskClient, stop_id: str, at: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/api/v1/stops/{stop_id}/arrivals", query_string={"at": at, **params})
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _trips(body: dict[str, Any], key: str = "arrivals") -> list[str]:
    return [a["trip_id"] for a in body[key]]


def test_departures_for_a_date_in_order_with_agency_offset(client: FlaskClient, feed: int) -> None:
    response = client.get("/api/v1/stops/S1/departures", query_string={"date": "2026-03-10"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["date"] == "2026-03-10"
    assert body["timezone"] == "Asia/Almaty"
    assert body["stop"]["stop_id"] == "S1"
    # T12-back ends at S1: no departure there
    assert [(d["trip_id"], d["scheduled_time"]) for d in body["departures"]] == [
        ("T12-early", "2026-03-10T00:05:00+05:00"),
        ("T12-a", "2026-03-10T08:00:00+05:00"),
        ("T12-b", "2026-03-10T08:15:00+05:00"),
        ("T12-late", "2026-03-10T23:50:00+05:00"),
    ]
    first = body["departures"][1]
    assert first == {"route_id": "R12", "route_short_name": "12", "route_color": "E4002B", "headsign": "Сейфуллина",
                     "trip_id": "T12-a", "stop_sequence": 10, "service_date": "2026-03-10",
                     "scheduled_time": "2026-03-10T08:00:00+05:00"}


def test_departures_past_midnight_keep_their_service_day(client: FlaskClient, feed: int) -> None:
    body = client.get("/api/v1/stops/S2/departures?date=2026-03-10").get_json()
    # T12-early ends at S2 (no departure there)
    assert _trips(body, "departures") == ["T12-a", "T92-a", "T12-b", "T12-back", "T12-late"]
    late = body["departures"][-1]
    assert late["service_date"] == "2026-03-10"
    assert late["scheduled_time"] == "2026-03-11T00:30:00+05:00"


def test_departures_follow_the_calendar(client: FlaskClient, feed: int) -> None:
    saturday = client.get("/api/v1/stops/S2/departures?date=2026-03-14").get_json()
    assert _trips(saturday, "departures") == ["T92-we"]
    thursday = client.get("/api/v1/stops/S2/departures?date=2026-03-12").get_json()
    assert _trips(thursday, "departures") == ["T12-extra"]
    only_92 = client.get("/api/v1/stops/S2/departures?date=2026-03-10&route=92").get_json()
    assert _trips(only_92, "departures") == ["T92-a"]


def test_departures_default_to_today(client: FlaskClient, feed: int) -> None:
    body = client.get("/api/v1/stops/S1/departures").get_json()
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=5))).date()
    assert body["date"] == today.isoformat()


@pytest.mark.parametrize("date", ["2026-02-30", "10.03.2026", "20260310", "tomorrow"])
def test_bad_date_is_400(client: FlaskClient, feed: int, date: str) -> None:
    response = client.get("/api/v1/stops/S1/departures", query_string={"date": date})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "date"


TIMETABLE_KEYS = ("route_id", "route_short_name", "route_color", "headsign", "trip_id", "stop_sequence",
                  "service_date", "scheduled_time", "minutes_away", "realtime", "stalled_s")


def test_arrivals_from_the_schedule(client: FlaskClient, feed: int) -> None:
    body = _arrivals(client, "S1", "2026-03-10T07:58:00+05:00", window=30)
    assert body["timezone"] == "Asia/Almaty"
    assert body["stop"]["name"] == "Абая — Достык"
    assert body["at"] == "2026-03-10T07:58:00+05:00"
    assert body["window_min"] == 30
    assert dt.datetime.fromisoformat(body["generated_at"]).utcoffset() == dt.timedelta(hours=5)
    # the timetable's keys (a board row's others are tests/test_arrivals_fields.py's)
    assert [{k: row[k] for k in TIMETABLE_KEYS} for row in body["arrivals"]] == [
        {"route_id": "R12", "route_short_name": "12", "route_color": "E4002B", "headsign": "Сейфуллина",
         "trip_id": "T12-a", "stop_sequence": 10, "service_date": "2026-03-10",
         "scheduled_time": "2026-03-10T08:00:00+05:00", "minutes_away": 2, "realtime": False,
         "stalled_s": None},
        {"route_id": "R12", "route_short_name": "12", "route_color": "E4002B", "headsign": "Сейфуллина",
         "trip_id": "T12-b", "stop_sequence": 10, "service_date": "2026-03-10",
         "scheduled_time": "2026-03-10T08:15:00+05:00", "minutes_away": 17, "realtime": False,
         "stalled_s": None},
    ]


def test_arrivals_accept_any_offset_and_floor_minutes(client: FlaskClient, feed: int) -> None:
    # 02:58:30 UTC is 07:58:30 in Almaty: 08:00 is 1.5 minutes away → 1
    body = _arrivals(client, "S1", "2026-03-10T02:58:30Z", window=5)
    assert [(a["trip_id"], a["minutes_away"]) for a in body["arrivals"]] == [("T12-a", 1)]
    assert body["at"] == "2026-03-10T07:58:30+05:00"


def test_yesterdays_late_trip_appears_after_midnight(client: FlaskClient, feed: int) -> None:
    body = _arrivals(client, "S2", "2026-03-11T00:20:00+05:00", window=30)
    assert len(body["arrivals"]) == 1
    late = body["arrivals"][0]
    assert late["trip_id"] == "T12-late"
    assert late["service_date"] == "2026-03-10"
    assert late["scheduled_time"] == "2026-03-11T00:30:00+05:00"
    assert late["minutes_away"] == 10


def test_window_into_tomorrow_includes_both_service_days(client: FlaskClient, feed: int) -> None:
    body = _arrivals(client, "S1", "2026-03-10T23:45:00+05:00", window=30)
    assert [(a["trip_id"], a["service_date"], a["scheduled_time"], a["minutes_away"]) for a in body["arrivals"]] == [
        ("T12-late", "2026-03-10", "2026-03-10T23:50:00+05:00", 5),
        ("T12-early", "2026-03-11", "2026-03-11T00:05:00+05:00", 20),
    ]


def test_service_removed_by_calendar_dates_is_absent(client: FlaskClient, feed: int) -> None:
    thursday = _arrivals(client, "S1", "2026-03-12T07:58:00+05:00", window=60)
    assert _trips(thursday) == ["T12-extra"]
    # Thursday's removed 24:30:00 trip does not show up on Friday morning either
    friday = _arrivals(client, "S2", "2026-03-13T00:20:00+05:00", window=30)
    assert friday["arrivals"] == []


def test_route_filter_and_limit(client: FlaskClient, feed: int) -> None:
    at = "2026-03-10T08:00:00+05:00"
    # T92-nopick (pickup_type=1 at S2) is never offered
    assert _trips(_arrivals(client, "S2", at, window=30)) == ["T12-a", "T92-a", "T12-b"]
    assert _trips(_arrivals(client, "S2", at, window=30, route="92")) == ["T92-a"]
    assert _trips(_arrivals(client, "S2", at, window=30, route="R12")) == ["T12-a", "T12-b"]
    assert _trips(_arrivals(client, "S2", at, window=30, limit=2)) == ["T12-a", "T92-a"]


def test_last_stop_of_a_trip_is_excluded(client: FlaskClient, feed: int) -> None:
    # T12-a and T12-b end at S3 at 08:10 and 08:25; T12-back starts there at 09:00
    assert _trips(_arrivals(client, "S3", "2026-03-10T08:00:00+05:00", window=70)) == ["T12-back"]


def test_a_station_shows_its_platforms(client: FlaskClient, feed: int) -> None:
    body = _arrivals(client, "ST", "2026-03-10T08:00:00+05:00", window=30)
    assert body["stop"]["stop_id"] == "ST"
    assert _trips(body) == ["T12-a", "T92-a", "T12-b"]


def test_default_window_comes_from_config(app: Flask, client: FlaskClient, feed: int) -> None:
    app.config["ARRIVALS_WINDOW_MIN"] = 16
    body = _arrivals(client, "S1", "2026-03-10T07:59:00+05:00")
    assert body["window_min"] == 16
    assert _trips(body) == ["T12-a", "T12-b"]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"at": "2026-03-10T08:00:00"}, "at"), ({"at": "soon"}, "at"), ({"window": "0"}, "window"),
     ({"window": "2000"}, "window"), ({"limit": "x"}, "limit")],
)
def test_bad_arrival_parameters_are_400(client: FlaskClient, feed: int, query: dict[str, str], field: str) -> None:
    response = client.get("/api/v1/stops/S1/arrivals", query_string=query)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field


def test_arrivals_at_unknown_stop_is_404(client: FlaskClient, feed: int) -> None:
    response = client.get("/api/v1/stops/NOPE/arrivals")
    assert response.status_code == 404
    assert response.get_json()["error"]["field"] == "stop_id"
