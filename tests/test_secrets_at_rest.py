"""Nothing secret at rest or in logs: idempotency records never hold a new card's number or code and expire
(pruned by a function, the CLI and the worker loop); SQL errors log no parameters (no password hash); the log
filter masks card numbers, codes, passwords, tokens and password hashes in any record."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, text, update
from werkzeug.security import generate_password_hash

from app import get_db
from app.api.idempotency import SHOWN_ONCE, prune_idempotency
from app.db import Base
from app.logs import SecretsFilter, configure_logging, scrub
from app.models import IdempotencyRecord, Rider
from app.ticketing import riders
from app.worker.cli import IdempotencyPruner

DAY_S = 24 * 3600
NUMBER = "9643123456789012345"


def staff_headers(app: Flask, client: FlaskClient) -> dict[str, str]:
    with get_db(app).session() as session:
        riders.create_rider(session, "support@qala.kz", "staff-pass-1", role="support")
        session.commit()
    token = client.post("/api/v1/riders/login", json={"login": "support@qala.kz", "password": "staff-pass-1"})
    assert token.status_code == 200, token.get_json()
    return {"Authorization": f"Bearer {token.get_json()['token']}"}


def database_text(app: Flask) -> str:
    """Every row of every table, as text (what ``pg_dump`` + grep would see)."""
    rows = []
    with get_db(app).engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows += [repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{table.name}"'))]
    return "\n".join(rows)


def records(app: Flask) -> list[IdempotencyRecord]:
    with get_db(app).session() as session:
        return list(session.scalars(select(IdempotencyRecord).order_by(IdempotencyRecord.id)))


def age_records(app: Flask, seconds: float) -> None:
    with get_db(app).session() as session:
        session.execute(update(IdempotencyRecord).values(
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)))
        session.commit()


def test_issued_card_number_and_code_are_never_stored_nor_replayed(client: FlaskClient, app: Flask) -> None:
    support = {**staff_headers(app, client), "Idempotency-Key": "issue-1"}
    first = client.post("/api/v1/staff/cards", json={"category": "standard"}, headers=support)
    assert first.status_code == 201, first.get_json()
    issued = first.get_json()
    number, code = issued["number"], issued["code"]  # shown once, to the staff member who issued it
    assert len(number) == 19 and len(code) == 3

    [record] = records(app)
    assert "number" not in record.response and "code" not in record.response
    assert record.response[SHOWN_ONCE] == ["code", "number"]
    stored = json.dumps(record.response)
    assert number not in stored and number[:12] not in stored and f'"{code}"' not in stored
    everything = database_text(app)
    assert number not in everything and number[4:] not in everything

    again = client.post("/api/v1/staff/cards", json={"category": "standard"}, headers=support)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    replayed = again.get_json()
    assert number not in again.get_data(as_text=True) and "number" not in replayed and "code" not in replayed
    assert replayed == {**{k: v for k, v in issued.items() if k not in ("number", "code")},
                        SHOWN_ONCE: ["code", "number"]}


def test_an_expired_record_is_ignored_and_replaced(client: FlaskClient, app: Flask) -> None:
    support = {**staff_headers(app, client), "Idempotency-Key": "issue-1"}
    first = client.post("/api/v1/staff/cards", json={"category": "standard"}, headers=support)
    assert first.status_code == 201
    age_records(app, app.config["IDEMPOTENCY_TTL_S"] + 60)
    # the same key with another body: 409 while the record lives, a fresh request once it has expired
    later = client.post("/api/v1/staff/cards", json={}, headers=support)
    assert later.status_code == 201, later.get_json()
    assert "Idempotent-Replayed" not in later.headers and later.get_json()["card_id"] != first.get_json()["card_id"]
    [record] = records(app)  # the expired one was deleted, the new one stored under the same key
    assert record.key == "issue-1" and record.response["card_id"] == later.get_json()["card_id"]


def test_a_live_record_still_replays(client: FlaskClient, app: Flask) -> None:
    support = {**staff_headers(app, client), "Idempotency-Key": "issue-1"}
    first = client.post("/api/v1/staff/cards", json={"category": "standard"}, headers=support)
    age_records(app, app.config["IDEMPOTENCY_TTL_S"] - 60)
    again = client.post("/api/v1/staff/cards", json={"category": "standard"}, headers=support)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json()["card_id"] == first.get_json()["card_id"]
    assert client.post("/api/v1/staff/cards", json={}, headers=support).status_code == 409


def add_records(app: Flask, ages_s: list[float]) -> None:
    now = dt.datetime.now(dt.UTC)
    with get_db(app).session() as session:
        for i, age in enumerate(ages_s):
            session.add(IdempotencyRecord(scope="staff:1", key=f"k{i}", request_hash="0" * 64, status_code=200,
                                          response={"i": i}, created_at=now - dt.timedelta(seconds=age)))
        session.commit()


def test_prune_deletes_only_expired_records(app: Flask) -> None:
    add_records(app, [10 * DAY_S, 8 * DAY_S, 6 * DAY_S, 60])
    with get_db(app).session() as session:
        assert prune_idempotency(session, dt.datetime.now(dt.UTC), 7 * DAY_S) == 2
        session.commit()
    assert [r.key for r in records(app)] == ["k2", "k3"]
    with get_db(app).session() as session:
        assert prune_idempotency(session, dt.datetime.now(dt.UTC), 7 * DAY_S) == 0


def test_cli_prunes_with_the_configured_or_given_ttl(app: Flask, runner: FlaskCliRunner) -> None:
    add_records(app, [8 * DAY_S, 2 * DAY_S, 60])
    result = runner.invoke(args=["idempotency", "prune"])
    assert result.exit_code == 0, result.output
    assert "1 idempotency records" in result.output and [r.key for r in records(app)] == ["k1", "k2"]
    result = runner.invoke(args=["idempotency", "prune", "--ttl", str(DAY_S)])
    assert result.exit_code == 0 and [r.key for r in records(app)] == ["k2"]


def test_the_worker_loop_prunes_at_most_every_interval(app: Flask) -> None:
    add_records(app, [8 * DAY_S, 60])
    pruner = IdempotencyPruner(app, every_s=3600)
    assert pruner.check() == 1 and [r.key for r in records(app)] == ["k1"]
    add_records(app, [9 * DAY_S])  # k0 again, expired
    assert pruner.check() is None  # not yet time: the next turn deletes it
    assert len(records(app)) == 2


def test_a_failed_statement_logs_no_password_hash(app: Flask, client: FlaskClient,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected database error on the API is logged with its statement, never its parameters: here a rider
    row without a login (NOT NULL) whose parameters — and PostgreSQL's "Failing row contains" — hold the hash."""
    password_hash = generate_password_hash("correct horse battery staple")

    def broken() -> str:
        with get_db(app).session() as session:
            session.add(Rider(login=None, password_hash=password_hash))
            session.flush()
        return "unreachable"

    app.add_url_rule("/api/v1/_broken", "broken", broken, methods=["POST"])
    caplog.set_level(logging.DEBUG)  # SQLAlchemy's statement log too
    response = client.post("/api/v1/_broken")
    assert response.status_code == 500
    assert "IntegrityError" in caplog.text  # the failure was logged, with its traceback
    salt_and_hash = password_hash.split("$", 1)[1]
    assert password_hash not in caplog.text and salt_and_hash not in caplog.text
    assert password_hash not in response.get_data(as_text=True)


def test_log_records_are_scrubbed_of_card_numbers_and_passwords(app: Flask,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    hashed = generate_password_hash("hunter2-hunter2")
    logging.getLogger("app.anything").info("tap card=%s code=%s password=%s hash=%s", NUMBER, "123",
                                           "hunter2-hunter2", hashed)
    app.logger.warning('GET /api/v1/cards/balance?card=9643+1234+5678+9012+345&code=456 '
                       '{"password": "s3cret words", "token": "abc.def"} Authorization: Bearer eyJ0.eXAi.sig')
    try:
        raise ValueError(f"card {NUMBER} refused")
    except ValueError:
        logging.getLogger("app.other").exception("failed with %s", hashed)
    logged = caplog.text
    for secret in (NUMBER, NUMBER[4:], "hunter2-hunter2", hashed.split("$", 1)[1], "9643+1234+5678",
                   "s3cret words", "abc.def", "eyJ0.eXAi.sig", "code=123", "code=456"):
        assert secret not in logged, secret
    assert "**** **** **** 9012 345" in logged and "<password hash>" in logged and "password=***" in logged


def test_the_filter_scrubs_records_on_gunicorns_handlers(app: Flask) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    gunicorn = logging.getLogger("gunicorn.error")
    gunicorn.addHandler(handler)
    try:
        configure_logging(app)  # what create_app does, here with gunicorn's handler in place
        assert any(isinstance(f, SecretsFilter) for f in handler.filters)
        # a record made without the record factory (e.g. received from another process) meets the filter
        handler.handle(logging.makeLogRecord({"msg": "password=%s card %s", "args": ("pw-123456", NUMBER),
                                              "levelno": logging.ERROR}))
    finally:
        gunicorn.removeHandler(handler)
    assert stream.getvalue() == "password=*** card **** **** **** 9012 345\n"


@pytest.mark.parametrize("clean", [
    "GET /api/v1/stops/S1/arrivals 200 12 ms",
    "status_code=500 stop code 1001 route 12 at 2026-03-10T08:00:00+05:00",
    "WHERE cards.code_hash = %(code_hash_1)s AND riders.password_hash = ?",
    "seq 123456789012345678 (18 digits) and 12345678901234567890 (20)",
])
def test_ordinary_text_is_left_alone(clean: str) -> None:
    assert scrub(clean) == clean
