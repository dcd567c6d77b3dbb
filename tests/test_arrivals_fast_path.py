"""The displays' poll of ``/arrivals`` (no parameters), answered by ``BoardPolls`` before Flask: the stored
board's bytes, the same answers as the Flask view, ETag comparison in its forms, everything else left to Flask;
and Flask sessions that skip the signer when no cookie is sent yet still read and write cookies as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, session
from flask.testing import FlaskClient

from app import create_app, get_db, get_redis
from app.realtime.build import BOARD_LIMIT
from app.realtime.serving import POLL_PREFIX, POLL_SUFFIX, arrivals_answer, polled_stop
from app.realtime.store import board_key
from app.sessions import CookieSessionInterface
from tests.fixtures.boards import S2_ARRIVALS as URL
from tests.fixtures.boards import write_s2_board
from tests.worker_feed import add_worker_feed


def _published(app: Flask) -> tuple[bytes, str]:
    add_worker_feed(app)  # the worker that writes the board needs every trip's shape
    write_s2_board(app)
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


def test_a_held_filtered_answer_is_not_rebuilt(app: Flask, client: FlaskClient) -> None:
    _published(app)
    held = client.get(URL + "?route=12")
    kwargs: dict[str, Any] = {"at": None, "window": 90, "route": "12", "limit": 20}
    assert arrivals_answer(app, "S2", **kwargs, if_none_match=held.headers["ETag"]).body == b""
    assert arrivals_answer(app, "S2", **kwargs, if_none_match='W/"old"').body == held.data
    assert client.get(URL + "?route=12", headers={"If-None-Match": held.headers["ETag"]}).status_code == 304


def test_board_expired_between_polls_answers_the_schedule(app: Flask, client: FlaskClient) -> None:
    _published(app)
    assert client.get(URL).get_json()["source"] == "board"
    get_redis(app).delete(board_key("S2"))
    after = client.get(URL)
    assert after.status_code == 200 and after.get_json()["source"] == "schedule"
    assert after.get_json()["realtime"] is False and after.headers["X-Qala-Source"] == "schedule"


@pytest.fixture
def flask_only(app: Flask, database_url: str, redis_settings: dict[str, Any], tmp_path: Path) -> Iterator[Flask]:
    """A second app on the same database and Redis, without the middleware: every answer comes from the view."""
    other = create_app({"TESTING": True, "DATABASE_URL": database_url, **redis_settings,
                        "ARRIVALS_FAST_PATH": False})
    yield other
    get_db(other).engine.dispose()


def _view_unavailable(**_: Any) -> Any:
    raise AssertionError("the Flask view was called")


def _headers(response: Any) -> list[tuple[str, str]]:
    """The headers, sorted; a ``Date`` (the gzip hook's conditional check adds one) without its second."""
    return sorted((k, "<date>" if k == "Date" else v) for k, v in response.headers.items())


def test_middleware_answers_as_the_flask_view(app: Flask, flask_only: Flask) -> None:
    _, etag = _published(app)
    fast, slow = app.test_client(), flask_only.test_client()
    limited = slow.get(URL + "?limit=1").headers["ETag"]
    app.view_functions["stops.arrivals"] = _view_unavailable  # every poll below is answered before Flask
    gzipped = slow.get(URL, headers={"Accept-Encoding": "gzip"}).headers["ETag"]
    assert gzipped.endswith('-gz"')  # the board is over 1 KB: Flask's hook gzips it under its own ETag
    for url in (URL, URL + "?limit=1", URL + "?limit=8", URL + "?limit=20", URL + "?limit=100"):
        for sent in (None, etag, limited, gzipped, 'W/"old"', "*"):
            for encoding in (None, "gzip", "gzip;q=0, identity"):
                headers = {k: v for k, v in (("If-None-Match", sent), ("Accept-Encoding", encoding)) if v}
                a, b = fast.get(url, headers=headers), slow.get(url, headers=headers)
                assert (a.status_code, a.data) == (b.status_code, b.data), (url, sent, encoding)
                assert _headers(a) == _headers(b), (url, sent, encoding)
    assert fast.get(URL + "?limit=1", headers={"If-None-Match": limited}).status_code == 304
    flask_only.view_functions["stops.arrivals"] = _view_unavailable
    assert slow.get(URL).status_code == 500  # ARRIVALS_FAST_PATH=false: no middleware, the view answers


def test_everything_but_the_plain_poll_goes_to_flask(app: Flask, client: FlaskClient) -> None:
    _, etag = _published(app)
    assert client.head(URL).headers["ETag"] == etag
    assert client.get(URL + "?route=92").get_json()["arrivals"][0]["trip_id"] == "T92-a"
    assert client.get(URL + "?limit=1&window=90").get_json()["arrivals"][0]["trip_id"] == "T12-a"
    assert client.get(URL + "?limit=101").get_json()["error"]["field"] == "limit"
    assert client.get(URL + "?limit=0").get_json()["error"]["field"] == "limit"
    assert client.get("/api/v1/stops/NOPE/arrivals").status_code == 404  # no board: Flask finds no stop


def test_polled_stop_recognises_only_the_plain_poll() -> None:
    def environ(path: str, method: str = "GET", query: str = "") -> dict[str, Any]:
        return {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}

    assert polled_stop(environ("/api/v1/stops/S2/arrivals")) == ("S2", BOARD_LIMIT)
    assert polled_stop(environ("/api/v1/stops/S2/arrivals", query="limit=8")) == ("S2", 8)
    # the path's UTF-8 bytes arrive as latin-1 text (PEP 3333)
    assert polled_stop(environ("/api/v1/stops/Абай/arrivals".encode().decode("latin-1"))) == ("Абай", BOARD_LIMIT)
    for other in (environ("/api/v1/stops/S2/arrivals", query="route=12"), environ("/api/v1/stops/S2/arrivals", "POST"),
                  environ("/api/v1/stops/S2/arrivals", query="limit=8&window=5"),
                  environ("/api/v1/stops/S2/arrivals", query="limit=0"),
                  environ("/api/v1/stops/S2/arrivals", query="limit=101"),
                  environ("/api/v1/stops/arrivals"), environ("/api/v1/stops/a/b/arrivals"),
                  environ("/api/v1/stops/S2/arrivals/stream"), environ("/api/v1/stops/S2 /arrivals"),
                  environ("/api/v1/stops/ S2/arrivals"), environ("/api/v1/stops/\xff/arrivals")):
        assert polled_stop(other) is None, other


def test_poll_path_is_the_routed_path(app: Flask) -> None:
    rules = {r.rule for r in app.url_map.iter_rules() if r.endpoint == "stops.arrivals"}
    assert rules == {f"{POLL_PREFIX}<stop_id>{POLL_SUFFIX}"}


def test_unicode_stop_ids_are_served_from_their_board(app: Flask, client: FlaskClient) -> None:
    body, etag = _published(app)
    get_redis(app).hset(board_key("Абай-1"), mapping={"json": body, "etag": etag, "version": 1})
    answer = client.get("/api/v1/stops/%D0%90%D0%B1%D0%B0%D0%B9-1/arrivals")
    assert answer.status_code == 200 and answer.data == body and answer.headers["ETag"] == etag


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
