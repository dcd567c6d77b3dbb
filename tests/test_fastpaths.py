"""The fast paths in front of Flask (``app.fastpaths``): ``create_app`` installs them, in a fixed order around
ProxyFix and under the body limit, each unless its setting is false; registering the blueprints installs nothing;
every request a fast path hands to Flask leaves a log line (with the traceback when it failed)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.middleware.proxy_fix import ProxyFix

from app import create_app, get_db, get_redis
from app.api import stops, validators
from app.api.inputs import BodyLimit
from app.api.validators import FastTaps
from app.config import load_config
from app.realtime import serving
from app.realtime.serving import BoardPolls
from app.realtime.store import StoredBoard, board_key
from app.ticketing.context import get_ticketing
from tests.api_feed import add_demo_feed
from tests.fixtures.tickets import make_device, signed

TAPS = "/api/v1/validators/taps"
S2_ARRIVALS = "/api/v1/stops/S2/arrivals"


def stack(app: Flask) -> list[type]:
    """The WSGI layers in front of Flask, outermost first (Flask's own ``wsgi_app`` is not listed)."""
    layers: list[type] = []
    layer: Any = app.wsgi_app
    while isinstance(layer, BodyLimit | FastTaps | BoardPolls | ProxyFix):
        layers.append(type(layer))
        layer = layer.app if isinstance(layer, ProxyFix) else layer.next
    assert getattr(layer, "__func__", None) is Flask.wsgi_app, layer  # the chain ends at Flask itself
    return layers


@pytest.fixture
def make_app(database_url: str, redis_settings: dict[str, Any]) -> Iterator[Any]:
    made: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        app = create_app({"TESTING": True, "DATABASE_URL": database_url, **redis_settings, **overrides})
        made.append(app)
        return app

    yield factory
    for app in made:
        ticketing = app.extensions.get("ticketing")
        if ticketing is not None:
            ticketing.close()
        get_db(app).engine.dispose()


def test_both_fast_paths_sit_under_the_body_limit_and_before_proxy_fix(make_app: Any) -> None:
    assert stack(make_app()) == [BodyLimit, FastTaps, BoardPolls]
    assert stack(make_app(PROXY_HOPS=1)) == [BodyLimit, FastTaps, BoardPolls, ProxyFix]


def test_each_setting_turns_its_fast_path_off(make_app: Any) -> None:
    assert stack(make_app(TAP_FAST_PATH=False)) == [BodyLimit, BoardPolls]
    assert stack(make_app(ARRIVALS_FAST_PATH=False)) == [BodyLimit, FastTaps]
    assert stack(make_app(TAP_FAST_PATH=False, ARRIVALS_FAST_PATH=False, PROXY_HOPS=2)) == [BodyLimit, ProxyFix]


def test_registering_the_blueprints_installs_no_middleware(tmp_path: Path) -> None:
    """Only ``create_app`` (through ``install_fast_paths``) wraps ``wsgi_app``: another app using the blueprints
    gets no middleware behind its back."""
    bare = Flask("bare")
    bare.config.update(load_config({}, instance_path=tmp_path))
    bare.register_blueprint(stops.bp)
    bare.register_blueprint(validators.bp)
    assert stack(bare) == []


def test_a_poll_without_a_board_is_logged_and_answered_by_flask(app: Flask, client: FlaskClient,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    add_demo_feed(app)  # stop S2, its timetable, and no board
    caplog.set_level(logging.DEBUG, logger="app.realtime.serving")
    answer = client.get(S2_ARRIVALS)
    assert answer.status_code == 200 and answer.headers["X-Qala-Source"] == "schedule"
    assert [r.getMessage() for r in caplog.records if r.name == "app.realtime.serving"] == [
        "no board for stop 'S2' (none published, or Redis away): Flask answers the poll"]


def test_a_failed_poll_is_logged_with_its_traceback_and_answered_by_flask(
        app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    board = b'{"stop_id":"S2","arrivals":[]}'
    get_redis(app).hset(board_key("S2"), mapping={"json": board, "etag": 'W/"b1"', "version": 1})
    real_fetch = serving.fetch_board
    calls: list[str] = []

    def fails_once(app: Flask, stop_id: str) -> StoredBoard | None:
        calls.append(stop_id)
        if len(calls) == 1:  # the middleware's read; the view's read below works
            raise RuntimeError("a bug in reading boards")
        return real_fetch(app, stop_id)

    monkeypatch.setattr(serving, "fetch_board", fails_once)
    caplog.set_level(logging.ERROR, logger="app.realtime.serving")
    answer = client.get(S2_ARRIVALS)
    assert calls == ["S2", "S2"]  # the middleware's read failed; Flask's view read the board again
    assert answer.status_code == 200 and answer.data == board and answer.headers["X-Qala-Source"] == "board"
    failed = [r for r in caplog.records if r.name == "app.realtime.serving" and r.levelno == logging.ERROR]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert "stop 'S2'" in failed[0].getMessage() and "a bug in reading boards" in caplog.text


def test_a_tap_handed_to_flask_is_logged(app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    """A signed tap whose body is not a TapRequest: the fast path hands it to Flask (which answers 400) and says
    why — on PostgreSQL after checking its signature, elsewhere because there is no group-commit path."""
    creds = make_device(app)
    caplog.set_level(logging.DEBUG, logger="app.api.validators")
    answer = signed(client, creds, "POST", TAPS, {"seq": "first"})
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "bad_request"
    logged = [r.getMessage() for r in caplog.records if r.name == "app.api.validators"]
    if get_ticketing(app).fast is None:
        assert logged == ["no group-commit path (the database is not PostgreSQL): the tap goes to Flask"]
    else:
        assert logged == ["a tap with an overlong nonce or a body not a TapRequest goes to Flask (401 or 400 there)"]


def test_a_badly_signed_tap_is_logged_and_refused_by_flask(app: Flask, client: FlaskClient,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    creds = make_device(app)
    if get_ticketing(app).fast is None:
        pytest.skip("the fast path checks signatures on PostgreSQL only (it hands every tap to Flask elsewhere)")
    caplog.set_level(logging.DEBUG, logger="app.api.validators")
    answer = signed(client, creds, "POST", TAPS, {"seq": 1}, headers={"X-Qala-Signature": "0" * 64})
    assert answer.status_code == 401
    logged = [r.getMessage() for r in caplog.records if r.name == "app.api.validators"]
    assert len(logged) == 1 and logged[0].startswith("a tap refused on the fast path goes to Flask: Unauthorized")
