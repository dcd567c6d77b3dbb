"""Validators under attack and outage (issue 14): Redis away is a 503 (the deny list comes from the database), nonces
survive a Redis restart, the signature covers the query string and Idempotency-Key, bodies are limited before they
are read, tap dates are sane, and only validator devices use the validator API."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError
from werkzeug.test import EnvironBuilder, TestResponse

from app import create_app, get_db
from app.errors import BadRequest
from app.models import Card, Tap
from app.ticketing import denylist, devices, ledger
from app.ticketing.context import get_ticketing
from app.ticketing.devices import DeviceCredentials
from app.ticketing.tapdates import TapClock, parse_tapped_at
from tests.conftest import wipe_tables
from tests.fixtures.tickets import make_card, make_device, signed

TAPS = "/api/v1/validators/taps"
BATCHES = "/api/v1/validators/batches"
DENY = "/api/v1/validators/deny-list"
CLOSED_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every command is a ConnectionError

AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(database_url: str, redis_settings: dict[str, Any]) -> Iterator[AppFactory]:
    """Applications on the test database with the tap-date windows on (the suite's other tests turn them off);
    ``overrides`` change any setting (``REDIS_URL`` to a dead or private server)."""
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
    if made:
        wipe_tables(made[0])
        shared = redis_settings["REDIS_URL"]
        for app in made:
            client = app.extensions.get("redis")
            if client is not None and app.config["REDIS_URL"] in (shared, None):
                client.flushdb()  # the suite's own Redis database only; private servers are stopped below
        for app in made:
            get_db(app).engine.dispose()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test alone, without persistence: flushing it touches nobody else's data."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        client.close()
        proc.kill()
        proc.wait(10)


def now_tap(seq: int, number: str, *, at: dt.datetime | None = None, vehicle: str = "bus-1") -> dict[str, Any]:
    when = at or dt.datetime.now(dt.UTC)
    return {"seq": seq, "card": number, "vehicle_id": vehicle, "route_id": "R12", "tapped_at": when.isoformat()}


def balance(app: Flask, card_id: int) -> int:
    with get_db(app).session() as session:
        return ledger.card_account(session, card_id).balance


def taps_stored(app: Flask) -> int:
    with get_db(app).session() as session:
        return session.query(Tap).count()


def assert_unavailable(response: TestResponse) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"] == {"code": "redis_unavailable", "message": response.get_json()["error"][
        "message"], "field": None}


def test_with_redis_down_taps_and_batches_are_503_with_retry_after(make_app: AppFactory) -> None:
    app = make_app(REDIS_URL=CLOSED_REDIS)
    client = app.test_client()
    creds = make_device(app)
    card_id, number, _ = make_card(app, balance=50000)
    assert_unavailable(signed(client, creds, "POST", TAPS, now_tap(1, number)))
    assert_unavailable(signed(client, creds, "POST", BATCHES, {"taps": [now_tap(2, number)]}))
    assert_unavailable(signed(client, creds, "POST", BATCHES, {"taps": [now_tap(3, number)]},
                              headers={"Idempotency-Key": "b-1"}))
    assert balance(app, card_id) == 50000 and taps_stored(app) == 0  # nothing charged: the validator retries


def test_with_redis_down_the_deny_list_comes_from_the_database(make_app: AppFactory) -> None:
    app = make_app(REDIS_URL=CLOSED_REDIS)
    creds = make_device(app)
    card_id, _, _ = make_card(app)
    with get_db(app).session() as session:
        card = session.get_one(Card, card_id)
        denylist.set_denied(session, card, True, "lost")
        hashed = card.number_hash
        session.commit()
    client = app.test_client()
    listed = signed(client, creds, "GET", DENY, None)
    assert listed.status_code == 200, listed.get_json()
    assert listed.get_json() == {"version": 1, "changes": [
        {"version": 1, "card": hashed, "action": "add", "reason": "lost"}]}
    assert signed(client, creds, "GET", f"{DENY}?since=1", None).get_json() == {"version": 1, "changes": []}


def test_with_redis_down_a_balance_check_is_never_a_500(make_app: AppFactory) -> None:
    app = make_app(REDIS_URL=CLOSED_REDIS)
    _, number, code = make_card(app, balance=7000)
    response = app.test_client().post("/api/v1/cards/balance", json={"card": number, "code": code})
    assert response.status_code in (200, 503), response.get_data(as_text=True)
    if response.status_code == 503:
        assert response.headers.get("Retry-After")


def test_a_lost_database_connection_is_503_not_500(app: Flask, client: FlaskClient,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    creds = make_device(app)

    def lost(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("SELECT max(version) FROM deny_list", {"secret": "x"},
                               Exception("terminating connection due to administrator command"))

    monkeypatch.setattr(denylist, "changes_since", lost)
    response = signed(client, creds, "GET", DENY, None)
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "service_unavailable"


def test_fast_taps_answer_503_when_redis_fails_and_log_other_errors(
        make_app: AppFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The WSGI fast path in front of Flask: a Redis outage is its own 503, any other error is logged and the
    request goes on to Flask (which answers it)."""
    from app.api import validators

    app = make_app(REDIS_URL=CLOSED_REDIS)
    creds = make_device(app)
    _, number, _ = make_card(app, balance=50000)
    fast = validators.FastTaps(app, app.wsgi_app)
    body = json.dumps(now_tap(1, number)).encode()

    def call(environ: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
        seen: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            seen.update(status=status, headers=dict(headers))

        data = b"".join(fast(environ, start_response))
        return seen["status"], seen["headers"], data

    def environ() -> dict[str, Any]:
        headers = {**devices.signing_headers(creds, "POST", TAPS, body), "Content-Type": "application/json"}
        return EnvironBuilder(path=TAPS, method="POST", data=body, headers=headers).get_environ()

    ticketing = get_ticketing(app)
    if ticketing.fast is not None:  # PostgreSQL: the group claims the nonce in Redis and fails there
        status, headers, data = call(environ())
        assert status.startswith("503") and headers["Retry-After"] == "5"
        assert json.loads(data)["error"]["code"] == "redis_unavailable"

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug in the fast path")

    monkeypatch.setattr(validators.FastTaps, "_tap", broken)
    caplog.set_level(logging.ERROR, logger="app.api.validators")
    status, _, data = call(environ())
    assert status.startswith("503")  # Flask answered: its nonce claim found Redis away
    assert any("fast path failed" in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_replay_after_redis_lost_its_nonces_is_refused(make_app: AppFactory, private_redis: str) -> None:
    app = make_app(REDIS_URL=private_redis)
    client = app.test_client()
    creds = make_device(app)
    card_id, number, _ = make_card(app, balance=50000)
    tap = json.dumps(now_tap(1, number)).encode()
    tap_headers = devices.signing_headers(creds, "POST", TAPS, tap)
    batch = json.dumps({"taps": [now_tap(2, number, vehicle="bus-2")]}).encode()
    batch_headers = devices.signing_headers(creds, "POST", BATCHES, batch)
    assert client.post(TAPS, data=tap, headers=tap_headers, content_type="application/json").status_code == 200
    assert client.post(BATCHES, data=batch, headers=batch_headers, content_type="application/json").status_code == 200
    charged = balance(app, card_id)
    time.sleep(3.1)  # longer than devices.EPOCH_GRACE_S (2 s): the captured requests predate any new epoch
    redis.Redis.from_url(private_redis).flushall()  # Redis restarted without persistence: every nonce forgotten
    for path, raw, headers in ((TAPS, tap, tap_headers), (BATCHES, batch, batch_headers)):
        replay = client.post(path, data=raw, headers=headers, content_type="application/json")
        assert replay.status_code == 401, (path, replay.get_json())
        assert replay.get_json()["error"]["code"] in ("replayed_nonce", "stale_request")
    assert balance(app, card_id) == charged
    fresh = signed(client, creds, "POST", TAPS, now_tap(3, number, vehicle="bus-3"))  # signed again: accepted
    assert fresh.status_code == 200, fresh.get_json()
    with get_db(app).session() as session:
        assert ledger.check_invariants(session) == []


def test_the_signature_covers_the_query_string(app: Flask, client: FlaskClient) -> None:
    creds = make_device(app)
    headers = devices.signing_headers(creds, "GET", DENY, b"", query="since=0")
    assert client.get(f"{DENY}?since=0", headers=headers).status_code == 200
    tampered = client.get(f"{DENY}?since=5", headers=devices.signing_headers(creds, "GET", DENY, b"", query="since=0"))
    assert tampered.status_code == 401 and tampered.get_json()["error"]["code"] == "bad_signature"
    unsigned_query = client.get(f"{DENY}?since=5", headers=devices.signing_headers(creds, "GET", DENY, b""))
    assert unsigned_query.get_json()["error"]["code"] == "bad_signature"


def test_the_signature_covers_the_idempotency_key(app: Flask, client: FlaskClient) -> None:
    creds = make_device(app)
    card_id, number, _ = make_card(app, balance=50000)
    body = json.dumps({"taps": [now_tap(1, number)]}).encode()
    headers = devices.signing_headers(creds, "POST", BATCHES, body, idempotency_key="k-1")
    changed = client.post(BATCHES, data=body, content_type="application/json",
                          headers={**headers, "Idempotency-Key": "k-2"})
    assert changed.status_code == 401 and changed.get_json()["error"]["code"] == "bad_signature"
    dropped = client.post(BATCHES, data=body, content_type="application/json",
                          headers=devices.signing_headers(creds, "POST", BATCHES, body, idempotency_key="k-1"))
    assert dropped.get_json()["error"]["code"] == "bad_signature"
    added = client.post(BATCHES, data=body, content_type="application/json",
                        headers={**devices.signing_headers(creds, "POST", BATCHES, body), "Idempotency-Key": "k-3"})
    assert added.get_json()["error"]["code"] == "bad_signature"
    assert balance(app, card_id) == 50000
    good = client.post(BATCHES, data=body, content_type="application/json",
                       headers={**devices.signing_headers(creds, "POST", BATCHES, body, idempotency_key="k-1"),
                                "Idempotency-Key": "k-1"})
    assert good.status_code == 200 and balance(app, card_id) == 50000 - 12000


class CountingInput(io.RawIOBase):
    """A request body that counts what was read from it (``size`` bytes of ``x``)."""

    def __init__(self, size: int) -> None:
        self.size, self.read_bytes = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.size - self.read_bytes)
        buffer[:n] = b"x" * n
        self.read_bytes += n
        return n


def _send_raw(app: Flask, creds: DeviceCredentials, path: str, size: int,
              chunked: bool = False) -> tuple[int, dict[str, Any], int]:
    """Status, JSON body and bytes read of a signed POST of ``size`` bytes through the whole WSGI stack."""
    stream = CountingInput(size)
    headers = devices.signing_headers(creds, "POST", path, b"")
    environ = EnvironBuilder(path=path, method="POST",
                             headers={**headers, "Content-Type": "application/json"}).get_environ()
    environ.update({"wsgi.input": io.BufferedReader(stream), "CONTENT_LENGTH": str(size)})
    if chunked:
        del environ["CONTENT_LENGTH"]
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        environ["wsgi.input_terminated"] = True
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        seen["status"] = int(status.split()[0])

    data = b"".join(app.wsgi_app(environ, start_response))
    return seen["status"], json.loads(data), stream.read_bytes


def test_oversized_validator_bodies_are_413_before_they_are_read(make_app: AppFactory) -> None:
    app = make_app(VALIDATOR_MAX_BODY=4096)
    creds = make_device(app)
    for path, size in ((TAPS, 100 * 1024 * 1024), (TAPS, 64 * 1024), (BATCHES, 100 * 1024 * 1024),
                       (BATCHES, 8192)):
        status, body, read = _send_raw(app, creds, path, size)
        assert (status, read) == (413, 0), (path, size, body)
        assert body["error"]["code"] == "request_entity_too_large"
    status, body, read = _send_raw(app, creds, TAPS, 64 * 1024, chunked=True)
    assert status == 413, body
    assert read <= 16 * 1024 + 65536  # read up to the limit (and a buffer), not to the end


def test_a_batch_over_the_global_body_limit_takes_the_validators_own(make_app: AppFactory) -> None:
    """Offline batches have their own limit (VALIDATOR_MAX_BODY): the global MAX_CONTENT_LENGTH must not cut a
    large batch short, neither in front of Flask nor when the input layer reads the body."""
    app = make_app(MAX_CONTENT_LENGTH=8192, VALIDATOR_MAX_BODY=1024 * 1024)
    creds = make_device(app)
    _, number, _ = make_card(app, balance=50000)
    taps = [now_tap(seq, number, vehicle=f"bus-{seq}", at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=seq))
            for seq in range(1, 101)]
    assert len(json.dumps({"taps": taps})) > 8192
    response = signed(app.test_client(), creds, "POST", BATCHES, {"taps": taps})
    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["results"]) == 100
    too_big = app.test_client().post("/api/v1/riders", data=json.dumps({"login": "x" * 9000}),
                                     content_type="application/json")
    assert too_big.status_code == 413


def test_an_online_tap_not_dated_now_is_400_and_never_500(app: Flask, client: FlaskClient) -> None:
    creds = make_device(app)
    card_id, number, _ = make_card(app, balance=50000)
    for seq, when in enumerate(("1990-03-10T08:00:00+05:00", "2030-03-10T08:00:00+05:00",
                                (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=11)).isoformat(),
                                "0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00+00:00",
                                "9999-12-31T23:59:59-05:00"), start=1):
        response = signed(client, creds, "POST", TAPS, {**now_tap(seq, number), "tapped_at": when})
        assert response.status_code == 400, (when, response.get_json())
        assert response.get_json()["error"]["field"] == "tapped_at"
    assert balance(app, card_id) == 50000 and taps_stored(app) == 0
    ok = signed(client, creds, "POST", TAPS, now_tap(9, number, at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)))
    assert ok.status_code == 200 and ok.get_json()["decision"] == "accept"


def test_offline_taps_outside_the_window_are_denied_not_charged(app: Flask, client: FlaskClient) -> None:
    creds = make_device(app)
    card_id, number, _ = make_card(app, balance=50000)
    now = dt.datetime.now(dt.UTC)
    taps = [now_tap(1, number, at=now - dt.timedelta(days=40)), now_tap(2, number, at=now + dt.timedelta(hours=2)),
            now_tap(3, number, at=now - dt.timedelta(hours=5), vehicle="bus-3")]
    response = signed(client, creds, "POST", BATCHES, {"taps": taps})
    assert response.status_code == 200, response.get_json()
    results = response.get_json()["results"]
    assert [(r["decision"], r["reason"], r["fare"]) for r in results] == [
        ("deny", "tap_time_out_of_range", 0), ("deny", "tap_time_out_of_range", 0), ("accept", None, 12000)]
    assert balance(app, card_id) == 50000 - 12000
    again = signed(client, creds, "POST", BATCHES, {"taps": taps}).get_json()  # stored: the same answer
    assert [r["duplicate"] for r in again["results"]] == [True, True, True] and again["gaps"] == []
    for when in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1899-12-31T00:00:00+00:00"):
        bad = signed(client, creds, "POST", BATCHES, {"taps": [{**now_tap(4, number), "tapped_at": when}]})
        assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "taps[0].tapped_at", bad.get_json()


def test_only_validators_use_the_validator_api(app: Flask, client: FlaskClient) -> None:
    _, number, _ = make_card(app, balance=50000)
    with get_db(app).session() as session:
        kiosk = devices.register_device(session, "mall kiosk", get_ticketing(app).keys, kind="kiosk")
        session.commit()
    for method, path, payload in (("POST", TAPS, now_tap(1, number)), ("POST", BATCHES, {"taps": [now_tap(2, number)]}),
                                  ("GET", DENY, None)):
        response = signed(client, kiosk, method, path, payload)
        assert response.status_code == 403, (path, response.get_json())
        assert response.get_json()["error"]["code"] == "forbidden"
    assert taps_stored(app) == 0
    validator = make_device(app)
    assert signed(client, validator, "POST", TAPS, now_tap(1, number)).status_code == 200


@pytest.mark.parametrize("raw", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1999-12-31T23:59:59+00:00",
                                 "2100-01-01T00:00:00+00:00", "2026-03-10T08:00:00", "yesterday"])
def test_a_tapped_at_out_of_bounds_or_malformed_is_a_bad_request(raw: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_tapped_at(raw)
    assert refused.value.field == "tapped_at"


def test_the_tap_windows_follow_the_config() -> None:
    now = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
    clock = TapClock.from_config({"TAP_ONLINE_SKEW_S": 600, "TAP_OFFLINE_MAX_AGE_S": 86400}, now=now)
    clock.check_online(now - dt.timedelta(minutes=10))
    with pytest.raises(BadRequest):
        clock.check_online(now + dt.timedelta(minutes=11))
    assert clock.offline_window() == (now - dt.timedelta(days=1), now + dt.timedelta(minutes=10))
    unchecked = TapClock.from_config({"TAP_ONLINE_SKEW_S": 0, "TAP_OFFLINE_MAX_AGE_S": 0}, now=now)
    unchecked.check_online(dt.datetime(2001, 1, 1, tzinfo=dt.UTC))
    assert unchecked.offline_window() is None


def test_a_tap_answer_carries_the_security_headers_on_either_path(app: Flask, client: FlaskClient) -> None:
    """On PostgreSQL the online tap is answered before Flask (FastTaps), which must add what Flask adds."""
    creds = make_device(app)
    _, number, _ = make_card(app, balance=50000)
    response = signed(client, creds, "POST", TAPS, now_tap(1, number))
    assert response.status_code == 200 and response.get_json()["decision"] == "accept"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
