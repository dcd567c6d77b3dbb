"""GET /api/v1/routes: the list, and a route's stops per direction with its GeoJSON shape."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api_feed import SHAPE_SH12, add_demo_feed


@pytest.fixture
def feed(app: Flask) -> int:
    return add_demo_feed(app)


def test_route_list_in_natural_order(client: FlaskClient, feed: int) -> None:
    response = client.get("/api/v1/routes")
    assert response.status_code == 200
    routes = response.get_json()["routes"]
    assert [r["route_short_name"] for r in routes] == ["12", "92"]
    assert routes[0]["route_color"] == "E4002B"
    assert routes[0]["route_long_name"] == "Достык — Сейфуллина"
    assert routes[0]["route_type"] == 3


def test_route_detail_has_ordered_stops_per_direction(client: FlaskClient, feed: int) -> None:
    response = client.get("/api/v1/routes/R12")
    assert response.status_code == 200
    route = response.get_json()
    assert route["route_id"] == "R12"
    assert route["route_text_color"] == "FFFFFF"
    outbound, inbound = route["directions"]
    # the commonest pattern (4 trips) wins over the short-turn one (T12-early)
    assert outbound["direction_id"] == 0
    assert [s["stop_id"] for s in outbound["stops"]] == ["S1", "S2", "S3"]
    assert outbound["trip_count"] == 4
    assert outbound["headsign"] == "Сейфуллина"
    assert outbound["stops"][0]["translations"]["kk"] == "Абай — Достық"
    assert inbound["direction_id"] == 1
    assert [s["stop_id"] for s in inbound["stops"]] == ["S3", "S2", "S1"]
    assert inbound["headsign"] == "Достык"


def test_route_shape_is_a_geojson_linestring_of_lon_lat(client: FlaskClient, feed: int) -> None:
    outbound, inbound = client.get("/api/v1/routes/R12").get_json()["directions"]
    shape = outbound["shape"]
    assert shape["type"] == "Feature"
    assert shape["geometry"]["type"] == "LineString"
    assert shape["geometry"]["coordinates"] == [[lon, lat] for lat, lon in SHAPE_SH12]
    assert shape["properties"]["shape_id"] == "SH12"
    assert 1900 < shape["properties"]["length_m"] < 2000
    assert inbound["shape"] is None  # its trips have no shape


def test_shape_false_omits_shapes(client: FlaskClient, feed: int) -> None:
    directions = client.get("/api/v1/routes/R12?shape=false").get_json()["directions"]
    assert len(directions) == 2
    assert all("shape" not in d for d in directions)
    assert [s["stop_id"] for s in directions[0]["stops"]] == ["S1", "S2", "S3"]


def test_route_errors(client: FlaskClient, feed: int) -> None:
    missing = client.get("/api/v1/routes/R999")
    assert missing.status_code == 404
    assert missing.get_json()["error"] == {
        "code": "not_found", "message": "no route 'R999' in the active feed", "field": "route_id"}
    bad = client.get("/api/v1/routes/R12?shape=maybe")
    assert bad.status_code == 400
    assert bad.get_json()["error"]["field"] == "shape"
