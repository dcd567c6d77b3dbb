"""POST /api/v1/avl/pings: signed by on-board units like validators; bad JSON names the field and stores nothing."""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient

from app.models import Ping
from app.ticketing import devices
from tests.fixtures.avl import ON_ROUTE, count, rejections
from tests.fixtures.tickets import make_device, signed

PINGS = "/api/v1/avl/pings"


def ping(seconds_ago: float, vehicle: str = "bus-1", **extra: object) -> dict[str, object]:
    lat, lon = ON_ROUTE
    return {"vehicle_id": vehicle, "timestamp": time.time() - seconds_ago, "latitude": lat, "longitude": lon,
            **extra}


def test_signed_batch_is_stored_and_counted(client: FlaskClient, avl_app: Flask) -> None:
    creds = make_device(avl_app)
    body = {"pings": [ping(30), ping(20, bearing=90, speed=7.5), ping(20), ping(10, latitude=95.0),
                      ping(-7200)]}
    response = signed(client, creds, "POST", PINGS, body)
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert report["stored"] == 2 and report["received"] == 5
    assert report["rejected"] == {"bad_coordinates": 1, "duplicate": 1, "future_timestamp": 1}
    assert count(avl_app, Ping) == 2
    assert rejections(avl_app) == {"bad_coordinates": 1, "duplicate": 1, "future_timestamp": 1}


def test_unsigned_forged_and_replayed_requests_are_401(client: FlaskClient, avl_app: Flask) -> None:
    creds = make_device(avl_app)
    body = {"pings": [ping(10)]}
    assert client.post(PINGS, json=body).status_code == 401
    forged = signed(client, devices.DeviceCredentials(creds.device_id, creds.key_id, "0" * 64), "POST", PINGS, body)
    assert forged.status_code == 401 and forged.get_json()["error"]["code"] == "bad_signature"
    stale = signed(client, creds, "POST", PINGS, body, now=time.time() - 301)
    assert stale.status_code == 401 and stale.get_json()["error"]["code"] == "stale_request"
    assert count(avl_app, Ping) == 0


def test_bad_json_names_the_field_and_stores_nothing(client: FlaskClient, avl_app: Flask) -> None:
    creds = make_device(avl_app)
    cases = [
        ({"pings": [ping(10), ping(5, latitude="43.2")]}, "pings[1].latitude"),
        ({"pings": [ping(10), {**ping(5), "timestamp": "2026-03-03T08:00:00"}]}, "pings[1].timestamp"),
        ({"pings": [ping(10), {"timestamp": 1, "latitude": 1, "longitude": 1}]}, "pings[1].vehicle_id"),
        ({"pings": [ping(10), ping(5, vehicle="x" * 65)]}, "pings[1].vehicle_id"),
        ({"pings": [ping(10), ping(5, start_date="tomorrow")]}, "pings[1].start_date"),
        ({"pings": [ping(10), "not a ping"]}, "pings[1]"),
        ({"pings": []}, "pings"),
        ([1, 2, 3], "body"),
    ]
    for body, field in cases:
        response = signed(client, creds, "POST", PINGS, body)
        assert response.status_code == 400, body
        assert response.get_json()["error"]["field"] == field
    assert count(avl_app, Ping) == 0 and rejections(avl_app) == {}


def test_pings_against_a_feed_with_shapeless_trips_are_stored_not_a_500(client: FlaskClient, app: Flask) -> None:
    """Trips written without a shape (an import always gives one; rows written otherwise may not) are left out
    of matching instead of failing the request (the fuzzer found a 500 here: KeyError on a NaN shape id)."""
    from tests.api_feed import add_demo_feed

    add_demo_feed(app)
    creds = make_device(app)
    response = signed(client, creds, "POST", PINGS, {"pings": [ping(30, latitude=43.2394, longitude=76.9510)]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["stored"] == 1 and count(app, Ping) == 1


def test_absurd_coordinates_are_refused_without_numeric_warnings(client: FlaskClient, avl_app: Flask) -> None:
    import warnings

    creds = make_device(avl_app)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflowing cast in the route grid warned (RuntimeWarning) before
        response = signed(client, creds, "POST", PINGS, {"pings": [ping(10, longitude=1e300, latitude=-1e300)]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["rejected"] == {"bad_coordinates": 1}
