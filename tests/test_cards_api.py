"""Rider and staff card APIs: object-level authorisation, top-ups, passes, anonymous balance, staff actions, audit."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from app import get_db
from app.db import Base
from tests.fixtures.accounts import account, staff
from tests.fixtures.tickets import make_card, make_device, signed

pytestmark = pytest.mark.usefixtures("ledger_checked")  # every test leaves the ledger balanced


def test_a_rider_sees_only_own_cards(client: FlaskClient, app: Flask) -> None:
    _, alice = account(client, "alice@example.kz")
    _, bob = account(client, "+77011234567")
    card_id, number, code = make_card(app, balance=24000)
    linked = client.post("/api/v1/me/cards", json={"card": number, "code": code}, headers=alice)
    assert linked.status_code == 200 and linked.get_json()["balance"] == 24000
    assert client.get("/api/v1/me/cards", headers=alice).get_json()["cards"][0]["card_id"] == card_id
    assert client.get(f"/api/v1/cards/{card_id}", headers=alice).status_code == 200
    assert client.get(f"/api/v1/cards/{card_id}", headers=bob).status_code == 404
    assert client.get(f"/api/v1/cards/{card_id}/history", headers=bob).status_code == 404
    assert client.post(f"/api/v1/cards/{card_id}/payment-intents", json={"amount": 10000},
                       headers=bob).status_code == 404
    assert client.post("/api/v1/me/cards", json={"card": number, "code": code}, headers=bob).status_code == 409
    assert client.get(f"/api/v1/cards/{card_id}").status_code == 401
    wrong_code = client.post("/api/v1/me/cards", json={"card": number, "code": str((int(code) + 1) % 1000).zfill(3)},
                             headers=bob)
    assert wrong_code.status_code == 404


def test_top_up_intent_is_idempotent_and_history_lists_the_paid_top_up(client: FlaskClient, app: Flask) -> None:
    rider_id, alice = account(client, "alice@example.kz")
    card_id, _, _ = make_card(app, rider_id=rider_id)
    headers = {**alice, "Idempotency-Key": "topup-1"}
    first = client.post(f"/api/v1/cards/{card_id}/payment-intents", json={"amount": 50000}, headers=headers)
    again = client.post(f"/api/v1/cards/{card_id}/payment-intents", json={"amount": 50000}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["intent_id"] == again.get_json()["intent_id"]
    assert client.post(f"/api/v1/cards/{card_id}/payment-intents", json={"amount": 60000},
                       headers=headers).status_code == 409
    assert client.get(f"/api/v1/cards/{card_id}", headers=alice).get_json()["balance"] == 0  # nothing paid yet
    intent_id = first.get_json()["intent_id"]
    paid = client.post(f"/api/v1/payments/sandbox/intents/{intent_id}/pay", json={"outcome": "succeeded"},
                       headers=alice)
    assert paid.status_code == 200 and paid.get_json()["status"] == "succeeded"
    history = client.get(f"/api/v1/cards/{card_id}/history", headers=alice).get_json()
    assert [(p["kind"], p["amount"]) for p in history["payments"]] == [("top_up", 50000)]
    # every instant carries its offset (RFC 3339), on SQLite too, which hands stored times back without one
    at = dt.datetime.fromisoformat(history["payments"][0]["at"])
    assert at.utcoffset() is not None and abs(at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def test_buying_a_monthly_pass(client: FlaskClient, app: Flask) -> None:
    rider_id, alice = account(client, "alice@example.kz")
    card_id, _, _ = make_card(app, balance=500000, category="student", rider_id=rider_id)
    bought = client.post(f"/api/v1/cards/{card_id}/passes", json={"product": "pass_month"}, headers=alice)
    assert bought.status_code == 201
    assert bought.get_json()["pass"]["price"] == 420000 and bought.get_json()["balance"] == 80000
    poor = client.post(f"/api/v1/cards/{card_id}/passes", json={"product": "pass_month"}, headers=alice)
    assert poor.status_code == 409 and poor.get_json()["error"]["code"] == "insufficient_funds"


def test_anonymous_balance_check_needs_the_code_and_is_rate_limited(client: FlaskClient, app: Flask) -> None:
    _, number, code = make_card(app, balance=36000)
    ok = client.post("/api/v1/cards/balance", json={"card": number, "code": code}).get_json()
    assert ok == {"masked": f"**** **** **** {number[12:16]} {number[16:]}", "status": "active", "balance": 36000,
                  "currency": "KZT"}
    wrong = str((int(code) + 1) % 1000).zfill(3)
    bad = client.post("/api/v1/cards/balance", json={"card": number, "code": wrong})
    assert bad.status_code == 404 and bad.get_json()["error"]["message"] == "no such card"
    statuses = [client.post("/api/v1/cards/balance", json={"card": number, "code": code}).status_code
                for _ in range(10)]
    assert statuses[-1] == 429 and statuses.count(200) == 8


def test_concession_cards_must_be_registered(client: FlaskClient, app: Flask) -> None:
    support = staff(app, client)
    refused = client.post("/api/v1/staff/cards", json={"category": "student"}, headers=support)
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "rider_id"
    rider_id, _ = account(client, "student@example.kz")
    issued = client.post("/api/v1/staff/cards", json={"category": "student", "rider_id": rider_id}, headers=support)
    assert issued.status_code == 201 and len(issued.get_json()["number"]) == 19


def test_staff_block_move_refund_are_audited(client: FlaskClient, app: Flask) -> None:
    support = staff(app, client)
    _, rider = account(client, "alice@example.kz")
    old_id, _, _ = make_card(app, balance=30000)
    new_id, _, _ = make_card(app)
    assert client.post(f"/api/v1/staff/cards/{old_id}/block", json={"reason": "lost"},
                       headers=rider).status_code == 403
    blocked = client.post(f"/api/v1/staff/cards/{old_id}/block", json={"reason": "reported lost"}, headers=support)
    assert blocked.get_json()["status"] == "blocked"
    moved = client.post(f"/api/v1/staff/cards/{old_id}/move-balance", json={"to_card_id": new_id,
                                                                            "reason": "replacement card"},
                        headers=support).get_json()
    assert moved["moved"] == 30000 and moved["to"]["balance"] == 30000 and moved["from"]["status"] == "replaced"
    refund = client.post(f"/api/v1/staff/cards/{new_id}/adjustments",
                         json={"amount": 12000, "kind": "refund", "reason": "charged twice on bus 12"},
                         headers=support)
    assert refund.get_json()["balance"] == 42000
    no_reason = client.post(f"/api/v1/staff/cards/{new_id}/adjustments", json={"amount": 5, "reason": " "},
                            headers=support)
    assert no_reason.status_code == 400
    audit = client.get("/api/v1/staff/audit", headers=support).get_json()["entries"]
    assert [e["action"] for e in audit] == ["refund", "move_balance", "block"]
    assert audit[0]["reason"] == "charged twice on bus 12"


def test_no_full_card_number_in_the_database_or_the_logs(client: FlaskClient, app: Flask,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _, alice = account(client, "alice@example.kz")
    _, number, code = make_card(app, balance=50000)
    client.post("/api/v1/me/cards", json={"card": number, "code": code}, headers=alice)
    creds = make_device(app)
    tap = {"seq": 1, "card": number, "vehicle_id": "bus-1", "route_id": "R12",
           "tapped_at": "2026-03-10T08:00:00+05:00"}
    signed(client, creds, "POST", "/api/v1/validators/taps", tap)
    signed(client, creds, "POST", "/api/v1/validators/batches", {"taps": [{**tap, "seq": 2}]},
           headers={"Idempotency-Key": "k"})
    client.post("/api/v1/cards/balance", json={"card": number, "code": code})
    dump = []
    with get_db(app).engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            dump += [repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{table.name}"'))]
    everything = "\n".join(dump)
    assert "**** **** ****" in everything  # the masked form is stored
    assert number not in everything and number[4:] not in everything
    assert number not in caplog.text
