"""The displays' poll of ``/arrivals`` (no parameters): the stored board's bytes as they are, ETag comparison in
its forms, parameters still parsed and checked when given, and Flask sessions that skip the signer when no
cookie is sent yet still read and write cookies as before."""

from __future__ import annotations

from flask import Flask, session
from flask.testing import FlaskClient

from app import get_redis
from app.realtime.store import board_key
from app.sessions import CookieSessionInterface
from tests.api_feed import add_demo_feed
from tests.test_realtime_api import URL, publish_live


def _published(app: Flask) -> tuple[bytes, str]:
    add_demo_feed(app)
    publish_live(app)
    body, etag = get_redis(app).hmget(board_key("S2"), ["json", "etag"])
    return bytes(body), etag.decode()


def test_poll_answers_the_stored_bytes(app: Flask, client: FlaskClient) -> None:
    body, etag = _published(app)
    response = client.get(URL)
    assert response.status_code == 200 and response.data == body
    assert response.headers["ETag"] == etag and response.mimetype == "application/json"
    assert response.headers["X-Qala-Source"] == "board" and "max-age=5" in response.headers["Cache-Control"]
    assert client.get(URL + "?").data == body  # an empty query string is still the plain poll


def test_if_none_match_forms(app: Flask, client: FlaskClient) -> None:
    _, etag = _published(app)
    strong = etag.removeprefix("W/")
    for sent in (etag, strong, f'W/"old", {etag}', "*"):
        answer = client.get(URL, headers={"If-None-Match": sent})
        assert answer.status_code == 304 and answer.data == b"" and answer.headers["ETag"] == etag, sent
    for sent in ('W/"old"', "", etag[:-2] + '"'):
        assert client.get(URL, headers={"If-None-Match": sent}).status_code == 200, sent


def test_parameters_are_still_checked_when_a_board_exists(app: Flask, client: FlaskClient) -> None:
    _published(app)
    bad = client.get(URL + "?limit=many")
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "limit"
    assert client.get(URL + "?window=0").get_json()["error"]["field"] == "window"
    one = client.get(URL + "?limit=1").get_json()
    assert one["source"] == "board" and len(one["arrivals"]) == 1


def test_board_expired_between_polls_answers_the_schedule(app: Flask, client: FlaskClient) -> None:
    _published(app)
    assert client.get(URL).get_json()["source"] == "board"
    get_redis(app).delete(board_key("S2"))
    after = client.get(URL)
    assert after.status_code == 200 and after.get_json()["source"] == "schedule"
    assert after.get_json()["realtime"] is False and after.headers["X-Qala-Source"] == "schedule"


def _session_app() -> Flask:
    app = Flask("sessions")
    app.secret_key = "test-secret"
    app.session_interface = CookieSessionInterface()

    @app.get("/remember/<word>")
    def remember(word: str) -> str:
        session["word"] = word
        return "ok"

    @app.get("/recall")
    def recall() -> str:
        return str(session.get("word", "-"))

    return app


def test_sessions_round_trip_and_reject_forged_cookies() -> None:
    client = _session_app().test_client()
    first = client.get("/recall")
    assert first.data == b"-" and "Set-Cookie" not in first.headers  # no cookie sent, none set
    client.get("/remember/abai")
    assert client.get("/recall").data == b"abai"
    client.set_cookie("session", "forged.value.sig")
    assert client.get("/recall").data == b"-"
