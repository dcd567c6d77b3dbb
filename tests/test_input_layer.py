"""Bad input is a 400 naming the field, or a 413, never a 500 (issue 14): NUL bytes, dates out of range,
integers beyond 64 bits, non-finite numbers, JSON nested too deep, oversized bodies; and what the API writes
back stays valid (RFC 3339 offsets, no NaN in a page's JSON)."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder, TestResponse

from app import get_db
from app.errors import BadRequest
from app.models import Card
from app.ticketing import devices, riders
from tests.api_feed import add_demo_feed
from tests.fixtures.tickets import make_card, make_device, signed

BIG = 2**70
PASSWORD = "secret-pass-1"
TAP = {"seq": 1, "card": "9643 1000 0000 1234 567", "vehicle_id": "bus-1", "route_id": "R12",
       "tapped_at": "2026-03-10T08:00:00+05:00"}


def refused(response: TestResponse, field: str, status: int = 400) -> None:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["error"]["field"] == field, body


def bearer(client: FlaskClient, login: str) -> dict[str, str]:
    token = client.post("/api/v1/riders/login", json={"login": login, "password": PASSWORD}).get_json()["token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def feed(app: Flask) -> int:
    return add_demo_feed(app)


@pytest.fixture
def rider(client: FlaskClient) -> dict[str, str]:
    assert client.post("/api/v1/riders", json={"login": "alice@example.kz", "password": PASSWORD}).status_code == 201
    return bearer(client, "alice@example.kz")


@pytest.fixture
def staff(app: Flask, client: FlaskClient) -> dict[str, str]:
    with get_db(app).session() as session:
        riders.create_rider(session, "support@qala.kz", PASSWORD, role="support")
        session.commit()
    return bearer(client, "support@qala.kz")


# NUL bytes: PostgreSQL refuses them in text, and the driver's error was a 500

def test_nul_in_the_stop_search_is_a_400(client: FlaskClient, feed: int) -> None:
    refused(client.get("/api/v1/stops?q=%D0%B0%00%D0%B1"), "q")


def test_nul_in_route_is_a_400(client: FlaskClient, feed: int) -> None:
    refused(client.get("/api/v1/stops/S1/departures?date=2026-03-10&route=12%00"), "route")
    refused(client.get("/api/v1/stops/S1/arrivals?route=%0012"), "route")


def test_nul_in_a_path_segment_is_a_400(client: FlaskClient, feed: int) -> None:
    refused(client.get("/api/v1/stops/S1%00"), "stop_id")
    refused(client.get("/api/v1/routes/R%0012"), "route_id")


def test_nul_in_login_is_a_400(client: FlaskClient) -> None:
    refused(client.post("/api/v1/riders/login", json={"login": "alice\x00@example.kz", "password": "x"}), "login")
    refused(client.post("/api/v1/riders", json={"login": "al\x00ice@example.kz", "password": PASSWORD}), "login")


def test_nul_in_full_name_is_a_400(client: FlaskClient) -> None:
    refused(client.post("/api/v1/riders", json={"login": "bob@example.kz", "password": PASSWORD,
                                                "full_name": "Bob\x00"}), "full_name")


def test_nul_in_a_staff_reason_is_a_400_and_blocks_nothing(app: Flask, client: FlaskClient,
                                                            staff: dict[str, str]) -> None:
    card_id, _, _ = make_card(app)
    refused(client.post(f"/api/v1/staff/cards/{card_id}/block", json={"reason": "lost\x00"}, headers=staff),
            "reason")
    with get_db(app).session() as session:
        card = session.get(Card, card_id)
        assert card is not None and card.status == "active"


def test_other_control_characters_are_refused_but_text_keeps_tabs_and_newlines(client: FlaskClient) -> None:
    from app.api.inputs import check_json_body

    refused(client.post("/api/v1/riders", json={"login": "bob@example.kz", "password": PASSWORD,
                                                "full_name": "Bob\x1b[31m"}), "full_name")
    created = client.post("/api/v1/riders", json={"login": "bob@example.kz", "password": PASSWORD,
                                                  "full_name": "Bob\tBobov\r\n"})
    assert created.status_code == 201
    # an escaped backslash before "u0000" is text, not a NUL
    check_json_body(json.dumps({"full_name": "C:\\u0000"}).encode())  # no BadRequest


def test_a_form_field_with_nul_is_a_400(client: FlaskClient) -> None:
    response = client.post("/staff/login", data={"login": "x\x00", "password": "y"})
    assert response.status_code == 400


# dates and integers out of range

def test_year_1_in_at_is_a_400(client: FlaskClient, feed: int) -> None:
    refused(client.get("/api/v1/stops/S1/arrivals?at=0001-01-01T00:00:00%2B05:00"), "at")
    refused(client.get("/api/v1/stops/S1/arrivals?at=9999-12-31T23:59:59-05:00"), "at")
    refused(client.get("/api/v1/stops/S1/departures?date=0001-01-01"), "date")


def test_year_1_in_tapped_at_is_a_400(app: Flask, client: FlaskClient) -> None:
    creds = make_device(app)
    refused(signed(client, creds, "POST", "/api/v1/validators/taps",
                   {**TAP, "tapped_at": "0001-01-01T00:00:00+05:00"}), "tapped_at")
    refused(signed(client, creds, "POST", "/api/v1/validators/batches",
                   {"taps": [TAP, {**TAP, "seq": 2, "tapped_at": "0001-01-01T00:00:00+05:00"}]}), "taps[1].tapped_at")


def test_a_seq_beyond_64_bits_is_a_400(app: Flask, client: FlaskClient) -> None:
    creds = make_device(app)
    refused(signed(client, creds, "POST", "/api/v1/validators/taps", {**TAP, "seq": BIG}), "seq")
    refused(signed(client, creds, "POST", "/api/v1/validators/batches", {"taps": [{**TAP, "seq": BIG}]}),
            "taps[0].seq")


def test_a_card_id_beyond_64_bits_is_a_400(client: FlaskClient, rider: dict[str, str],
                                            staff: dict[str, str]) -> None:
    refused(client.get(f"/api/v1/cards/{BIG}", headers=rider), "card_id")
    refused(client.get(f"/api/v1/cards/{BIG}/history", headers=rider), "card_id")
    refused(client.post(f"/api/v1/cards/{BIG}/passes", json={"product": "pass_month"}, headers=rider), "card_id")
    refused(client.post(f"/api/v1/staff/cards/{BIG}/block", json={"reason": "lost"}, headers=staff), "card_id")
    refused(client.get(f"/api/v1/staff/audit?card_id={BIG}", headers=staff), "card_id")
    refused(client.post("/api/v1/staff/cards/1/move-balance", json={"reason": "r", "to_card_id": BIG},
                        headers=staff), "to_card_id")


# JSON the parser takes but no view should: too deep, non-finite

def test_100k_nested_brackets_are_a_400_without_login(client: FlaskClient) -> None:
    response = client.post("/api/v1/riders/login", data="[" * 100_000, content_type="application/json")
    refused(response, "body")
    deep = client.post("/api/v1/riders", data='{"a":' * 50_000 + "1" + "}" * 50_000,
                       content_type="application/json")
    refused(deep, "body")


def test_depth_is_measured_outside_strings() -> None:
    from app.api.inputs import MAX_JSON_DEPTH, check_json_body, json_depth

    assert json_depth(b"[[[]]]") == 3
    assert json_depth(b"[]" * 40 + b"[[[]]]") == 3
    check_json_body(json.dumps({"full_name": "[" * 1000}).encode())  # no BadRequest
    check_json_body(json.dumps([[[0]]] * 1000).encode())  # no BadRequest
    with pytest.raises(BadRequest):
        check_json_body(b'["]", ' * 10 + b"[" * (MAX_JSON_DEPTH + 1))  # brackets in strings hide no depth
    # escaped quotes and backslashes inside strings: brackets there are still text, and depth outside still counts
    check_json_body(json.dumps({"a": ['x\\"]]]\\' + "[" * 40] * 50}).encode())  # no BadRequest
    with pytest.raises(BadRequest):
        check_json_body(json.dumps(["\\\"]]"]).encode()[:-1] + b"," + b"[" * (MAX_JSON_DEPTH + 1))
    # an unterminated string is one pass, not one per quote (the body is not JSON: the view says so)
    check_json_body(b'"\\"' * 200_000)  # no BadRequest


def test_nan_and_infinity_are_a_400(client: FlaskClient) -> None:
    for number in ("NaN", "Infinity", "-Infinity", "1e400", "-2.5E+999"):
        response = client.post("/api/v1/riders", data=f'{{"login": "nan@example.kz", "password": "{PASSWORD}", '
                                                      f'"full_name": null, "age": {number}}}',
                               content_type="application/json")
        refused(response, "body")
    assert client.post("/api/v1/riders", json={"login": "nan@example.kz", "password": PASSWORD,
                                               "full_name": "NaN Infinity 1e400"}).status_code == 201


def test_poll_nan_leaves_no_nan_in_the_display_page(client: FlaskClient, feed: int) -> None:
    for value in ("nan", "inf", "-inf", "1e999"):
        page = client.get(f"/display/S1?poll={value}&stale={value}&rotate={value}")
        assert page.status_code == 200
        settings = re.search(r'<script id="settings" type="application/json">(.*?)</script>',
                             page.get_data(as_text=True))
        assert settings is not None
        parsed = json.loads(settings[1], parse_constant=lambda name: pytest.fail(f"{name} in the page's JSON"))
        assert parsed["pollS"] == 5 and parsed["staleS"] == 90 and parsed["rotateS"] == 8


# bodies: the size is known before a byte is read

class _Unread(io.RawIOBase):
    """A request body that must never be read."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("the oversized body was read")


def _declared_100mb(app: Flask, path: str, headers: dict[str, str]) -> tuple[str, dict[str, str], bytes]:
    environ = EnvironBuilder(path=path, method="POST", headers=list(headers.items()),
                             content_type="application/json").get_environ()
    environ["CONTENT_LENGTH"] = str(100 * 1024 * 1024)
    environ["wsgi.input"] = _Unread()
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.update(status=status, headers=dict(response_headers))
        return None

    body = b"".join(app.wsgi_app(environ, start_response))
    return started["status"], started["headers"], body


def test_a_100mb_body_is_a_413_without_being_read(app: Flask) -> None:
    creds = make_device(app)
    signed_headers = devices.signing_headers(creds, "POST", "/api/v1/validators/taps", b"{}")
    for path, headers in (("/api/v1/validators/taps", signed_headers), ("/api/v1/riders", {})):
        status, response_headers, body = _declared_100mb(app, path, headers)
        assert status.startswith("413"), (path, status)
        assert response_headers["Connection"] == "close"
        assert json.loads(body)["error"]["code"] == "request_entity_too_large"
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024


def test_a_body_over_the_configured_limit_is_a_json_413(database_url: str, redis_settings: dict[str, Any]) -> None:
    from app import create_app

    small = create_app({"TESTING": True, "DATABASE_URL": database_url, **redis_settings, "MAX_CONTENT_LENGTH": 64})
    response = small.test_client().post("/api/v1/riders", json={"login": "x" * 100, "password": PASSWORD})
    refused(response, "body", status=413)
    get_db(small).engine.dispose()


def test_a_chunked_body_over_the_limit_is_a_json_413(app: Flask) -> None:
    environ = EnvironBuilder(path="/api/v1/riders", method="POST", content_type="application/json").get_environ()
    environ.pop("CONTENT_LENGTH", None)  # chunked: the size is known only by reading
    environ["wsgi.input"] = io.BytesIO(b'{"login": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    environ["wsgi.input_terminated"] = True
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.update(status=status)
        return None

    body = json.loads(b"".join(app.wsgi_app(environ, start_response)))
    assert started["status"].startswith("413"), body
    assert body["error"]["code"] == "request_entity_too_large" and body["error"]["field"] == "body"


# what goes out: RFC 3339 offsets (never local mean time's seconds)

_OFFSET_WITH_SECONDS = re.compile(r'[+-][0-9]{2}:[0-9]{2}:[0-9]{2}"')


def test_at_1599_answers_rfc3339_offsets(client: FlaskClient, feed: int) -> None:
    for at in ("1599-01-01T00:00:00+05:00", "1910-03-01T08:00:00+05:00", "1923-12-31T23:00:00Z"):
        response = client.get("/api/v1/stops/S1/arrivals", query_string={"at": at})
        text = response.get_data(as_text=True)
        assert response.status_code in (200, 400), text
        assert not _OFFSET_WITH_SECONDS.search(text), text
    answer = client.get("/api/v1/stops/S1/arrivals", query_string={"at": "1910-03-01T08:00:00+05:00"}).get_json()
    assert answer["at"] == "1910-03-01T03:00:00+00:00"  # Almaty kept local mean time (+05:07:48) until 1924
