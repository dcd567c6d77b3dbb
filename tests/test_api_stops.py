"""GET /api/v1/stops: a stop by id, text search in Russian and Kazakh, nearby search, bad input."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import get_db
from app.models import FeedVersion, Stop
from tests.api_feed import add_demo_feed, add_feed_version, search_text


@pytest.fixture
def feed(app: Flask) -> int:
    return add_demo_feed(app)


def _ids(response_json: dict) -> list[str]:
    return [s["stop_id"] for s in response_json["stops"]]


def test_stop_by_id_has_translations_and_routes(client: FlaskClient, feed: int) -> None:
    response = client.get("/api/v1/stops/S1")
    assert response.status_code == 200
    stop = response.get_json()
    assert stop["stop_id"] == "S1"
    assert stop["code"] == "1001"
    assert stop["name"] == "Абая — Достык"
    assert (stop["lat"], stop["lon"]) == (43.2389, 76.957)
    assert stop["translations"] == {"kk": "Абай — Достық", "en": "Abay — Dostyk"}
    assert [r["route_short_name"] for r in stop["routes"]] == ["12"]
    assert stop["routes"][0] == {"route_id": "R12", "route_short_name": "12", "route_color": "E4002B"}


def test_translations_by_name_and_by_record_id(client: FlaskClient, feed: int) -> None:
    stop = client.get("/api/v1/stops/S3").get_json()
    # kk comes from a translation of the name "Сейфуллина"; en for this very stop wins over the by-name one
    assert stop["translations"] == {"kk": "Сейфуллин", "en": "Seifullin St"}


def test_routes_serving_a_stop_in_natural_order(client: FlaskClient, feed: int) -> None:
    stop = client.get("/api/v1/stops/S2").get_json()
    assert [r["route_short_name"] for r in stop["routes"]] == ["12", "92"]


def test_unknown_stop_is_a_json_404(client: FlaskClient, feed: int) -> None:
    response = client.get("/api/v1/stops/NOPE")
    assert response.status_code == 404
    assert response.get_json() == {
        "error": {"code": "not_found", "message": "no stop 'NOPE' in the active feed", "field": "stop_id"}}


def test_text_search_in_russian_finds_inflected_forms(client: FlaskClient, feed: int) -> None:
    response = client.get("/api/v1/stops", query_string={"q": "абай"})
    assert response.status_code == 200
    ids = _ids(response.get_json())
    # "Абая — Достык" (Russian genitive) and "Абай даңғылы…" (Kazakh), stations included
    assert set(ids) == {"S1", "S2", "ST"}
    # names starting with the query come first
    assert ids[:2] == ["ST", "S2"]


def test_text_search_casefolds_kazakh_capitals(client: FlaskClient, feed: int) -> None:
    ids = _ids(client.get("/api/v1/stops", query_string={"q": "ДАҢҒЫЛЫ"}).get_json())
    assert set(ids) == {"S2", "ST"}
    # a Kazakh translation only ("Достық" with қ) and an English one
    assert _ids(client.get("/api/v1/stops", query_string={"q": "ДОСТЫҚ"}).get_json()) == ["S1"]
    # S3 is "Seifullin" in English; S4 has only the Russian "Толе би — Сейфуллина", found through transliteration
    assert _ids(client.get("/api/v1/stops", query_string={"q": "Seifullin"}).get_json()) == ["S3", "S4"]


def test_text_search_needs_every_word_and_matches_codes(client: FlaskClient, feed: int) -> None:
    assert _ids(client.get("/api/v1/stops", query_string={"q": "абай фурманов"}).get_json()) == ["S2"]
    assert _ids(client.get("/api/v1/stops", query_string={"q": "1004"}).get_json()) == ["S4"]
    # LIKE wildcards are words' punctuation here, not patterns
    assert set(_ids(client.get("/api/v1/stops", query_string={"q": "100%"}).get_json())) == {
        "S1", "S2", "S3", "S4", "S5"}
    assert _ids(client.get("/api/v1/stops", query_string={"q": "фурманов_"}).get_json()) == ["S2"]
    assert _ids(client.get("/api/v1/stops", query_string={"q": "абай", "limit": 1}).get_json()) == ["ST"]


def test_near_search_sorted_by_distance_within_radius(client: FlaskClient, feed: int) -> None:
    response = client.get("/api/v1/stops", query_string={"near": "43.2390,76.9560", "radius": 1500})
    assert response.status_code == 200
    stops = response.get_json()["stops"]
    assert [s["stop_id"] for s in stops] == ["S1", "ST", "S2"]
    distances = [s["distance_m"] for s in stops]
    assert distances == sorted(distances)
    assert 70 < distances[0] < 100  # about 82 m
    assert all(d <= 1500 for d in distances)
    # S3 is ~1.9 km away: inside a 2 km radius only
    wider = client.get("/api/v1/stops", query_string={"near": "43.2390,76.9560", "radius": 2000}).get_json()
    assert _ids(wider) == ["S1", "ST", "S2", "S3"]


def test_near_and_text_together(client: FlaskClient, feed: int) -> None:
    body = client.get("/api/v1/stops", query_string={"near": "43.2390,76.9560", "radius": 5000, "q": "сейфуллин"})
    assert _ids(body.get_json()) == ["S3", "S4"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"near": "43.2,"}, "near"),
        ({"near": "abc"}, "near"),
        ({"near": "91,76.9"}, "near"),
        ({"near": "43.2,76.9", "radius": "5001"}, "radius"),
        ({"near": "43.2,76.9", "radius": "0"}, "radius"),
        ({"q": "абай", "limit": "ten"}, "limit"),
        ({"q": "абай", "limit": "1000"}, "limit"),
        ({"q": "—"}, "q"),
        ({}, "q"),
    ],
)
def test_bad_search_parameters_are_400_naming_the_field(
    client: FlaskClient, feed: int, query: dict[str, str], field: str
) -> None:
    response = client.get("/api/v1/stops", query_string=query)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_request"
    assert error["field"] == field
    assert field in error["message"]


def test_inactive_feed_versions_are_ignored(app: Flask, client: FlaskClient, feed: int) -> None:
    with get_db(app).session() as session:
        old = add_feed_version(session, active=False, label="old")
        session.add_all([
            Stop(feed_version_id=old.id, stop_id="S1", stop_name="Старая остановка", stop_lat=43.0, stop_lon=76.0,
                 search_text=search_text("Старая остановка", None, [])),
            Stop(feed_version_id=old.id, stop_id="OLD", stop_name="Абай старый", stop_lat=43.0, stop_lon=76.0,
                 search_text=search_text("Абай старый", None, [])),
        ])
        session.commit()
    assert client.get("/api/v1/stops/S1").get_json()["name"] == "Абая — Достык"
    assert client.get("/api/v1/stops/OLD").status_code == 404
    assert "OLD" not in _ids(client.get("/api/v1/stops", query_string={"q": "абай"}).get_json())


def test_no_active_feed_is_a_json_503(client: FlaskClient) -> None:
    for url in ("/api/v1/stops?q=абай", "/api/v1/stops/S1", "/api/v1/routes", "/api/v1/stops/S1/arrivals"):
        response = client.get(url)
        assert response.status_code == 503, url
        assert response.get_json()["error"]["code"] == "no_active_feed"
        assert response.get_json()["error"]["field"] is None


def test_search_answers_how_each_stop_matched_and_no_suggestions_when_found(client: FlaskClient, feed: int) -> None:
    body = client.get("/api/v1/stops", query_string={"q": "Abai Furmanov"}).get_json()
    assert _ids(body) == ["S2"] and body["stops"][0]["match"] == "word" and body["suggestions"] == []
    near = client.get("/api/v1/stops", query_string={"near": "43.2390,76.9560"}).get_json()
    assert near["suggestions"] == [] and all("match" not in s for s in near["stops"])


def test_a_typo_gets_the_stops_and_a_respelling(client: FlaskClient, feed: int) -> None:
    body = client.get("/api/v1/stops", query_string={"q": "Dostky"}).get_json()
    assert _ids(body) == ["S1"] and body["stops"][0]["match"] == "fuzzy"
    assert body["suggestions"] == ["Dostyk"]


def test_search_index_follows_the_active_feed(app: Flask, client: FlaskClient, feed: int) -> None:
    assert _ids(client.get("/api/v1/stops", query_string={"q": "Sairan"}).get_json()) == []
    with get_db(app).session() as session:
        session.get(FeedVersion, feed).is_active = False  # type: ignore[union-attr]
        new = add_feed_version(session, active=True, label="new")
        session.add(Stop(feed_version_id=new.id, stop_id="SR", stop_name="Автовокзал Сайран", stop_lat=43.24,
                         stop_lon=76.86, search_text=search_text("Автовокзал Сайран", None, [])))
        session.commit()
    assert _ids(client.get("/api/v1/stops", query_string={"q": "Sairan"}).get_json()) == ["SR"]
    assert _ids(client.get("/api/v1/stops", query_string={"q": "абай"}).get_json()) == []
