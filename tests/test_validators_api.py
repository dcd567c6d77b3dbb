"""Validator API over HTTP: signatures, replays, key rotation, online taps, offline batches, deny list, idempotency."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text

from app import get_db
from app.models import Card
from app.ticketing import cards, devices, ledger
from app.ticketing.context import get_ticketing
from tests.fixtures.tickets import T0, make_card, make_device, signed

pytestmark = pytest.mark.usefixtures("ledger_checked")  # every test leaves the ledger balanced

TAPS = "/api/v1/validators/taps"
BATCHES = "/api/v1/validators/batches"
DENY = "/api/v1/validators/deny-list"


def tap_body(seq: int, number: str, seconds: float = 0, vehicle: str = "bus-1") -> dict[str, object]:
    at = (T0 + dt.timedelta(seconds=seconds)).isoformat()
    return {"seq": seq, "card": number, "vehicle_id": vehicle, "route_id": "R12", "tapped_at": at}


def balance(app: Flask, card_id: int) -> int:
    with get_db(app).session() as session:
        return ledger.card_account(session, card_id).balance


def test_register_device_cli_prints_a_key_that_signs(runner: FlaskCliRunner, client: FlaskClient,
                                                     app: Flask) -> None:
    result = runner.invoke(args=["devices", "register", "bus 12 front door"])
    assert result.exit_code == 0, result.output
    values = dict(line.split("=", 1) for line in result.output.strip().splitlines())
    creds = devices.DeviceCredentials(values["device_id"], values["key_id"], values["key"])
    assert signed(client, creds, "GET", DENY, None).status_code == 200


def test_unsigned_stale_replayed_and_forged_requests_are_401(client: FlaskClient, app: Flask) -> None:
    creds = make_device(app)
    _, number, _ = make_card(app, balance=50000)
    body = tap_body(1, number)
    unsigned = client.post(TAPS, json=body)
    assert unsigned.status_code == 401 and unsigned.get_json()["error"]["code"] == "missing_signature"
    stale = signed(client, creds, "POST", TAPS, body, now=time.time() - 301)
    assert stale.get_json()["error"]["code"] == "stale_request"
    forged = signed(client, devices.DeviceCredentials(creds.device_id, creds.key_id, "0" * 64), "POST", TAPS, body)
    assert forged.status_code == 401 and forged.get_json()["error"]["code"] == "bad_signature"
    raw = json.dumps(body).encode()
    headers = devices.signing_headers(creds, "POST", TAPS, raw)
    first = client.post(TAPS, data=raw, headers=headers, content_type="application/json")
    assert first.status_code == 200
    replay = client.post(TAPS, data=raw, headers=headers, content_type="application/json")
    assert replay.status_code == 401 and replay.get_json()["error"]["code"] == "replayed_nonce"
    tampered = client.post(TAPS, data=raw.replace(b"bus-1", b"bus-2"),
                           headers={**headers, "X-Qala-Nonce": "fresh-nonce"}, content_type="application/json")
    assert tampered.get_json()["error"]["code"] == "bad_signature"


def test_key_rotation_keeps_the_old_key_during_the_overlap(client: FlaskClient, app: Flask) -> None:
    old = make_device(app)
    with get_db(app).session() as session:
        new = devices.rotate_key(session, old.device_id, dt.timedelta(hours=1), box=get_ticketing(app).keys)
        session.commit()
    assert signed(client, old, "GET", DENY, None).status_code == 200
    assert signed(client, new, "GET", DENY, None).status_code == 200
    with get_db(app).session() as session:
        devices.rotate_key(session, old.device_id, dt.timedelta(0), box=get_ticketing(app).keys)
        session.commit()
    get_ticketing(app).device_keys.clear()  # workers remember keys for KEY_CACHE_S; this skips the wait
    assert signed(client, old, "GET", DENY, None).get_json()["error"]["code"] == "bad_signature"


def test_online_tap_over_http_and_its_retry(client: FlaskClient, app: Flask) -> None:
    creds = make_device(app)
    card_id, number, _ = make_card(app, balance=13000)
    first = signed(client, creds, "POST", TAPS, tap_body(1, number))
    assert first.status_code == 200
    assert {k: first.get_json()[k] for k in ("decision", "fare", "balance")} == {
        "decision": "accept", "fare": 12000, "balance": 1000}
    retry = signed(client, creds, "POST", TAPS, tap_body(1, number))  # the response was lost: same tap again
    assert retry.get_json()["duplicate"] is True and retry.get_json()["balance"] == 1000
    changed = signed(client, creds, "POST", TAPS, tap_body(1, number, seconds=60))
    assert changed.status_code == 409
    denied = signed(client, creds, "POST", TAPS, tap_body(2, number, seconds=600, vehicle="bus-2"))
    assert denied.get_json()["reason"] == "insufficient_balance"
    assert balance(app, card_id) == 1000


def test_bad_tap_fields_name_the_field(client: FlaskClient, app: Flask) -> None:
    creds = make_device(app)
    response = signed(client, creds, "POST", TAPS, {"seq": 1, "card": "123", "vehicle_id": "b",
                                                    "tapped_at": T0.isoformat()})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "card"
    naive = signed(client, creds, "POST", TAPS, {**tap_body(1, "1" * 19), "tapped_at": "2026-03-10T08:00:00"})
    assert naive.get_json()["error"]["field"] == "tapped_at"


def test_batch_sent_three_times_charges_once_and_reports_gaps(client: FlaskClient, app: Flask) -> None:
    creds = make_device(app)
    card_id, number, _ = make_card(app, balance=100000)
    taps = [tap_body(seq, number, seconds=seq * 900, vehicle=f"v{seq}") for seq in (5, 1, 2, 7)]
    bodies = [signed(client, creds, "POST", BATCHES, {"taps": taps}).get_json() for _ in range(3)]
    assert bodies[0]["counts"] == {"accept": 4, "deny": 0, "conflict": 0, "duplicates": 0}
    assert bodies[1]["counts"]["duplicates"] == 4 and bodies[2]["counts"]["duplicates"] == 4
    assert bodies[0]["gaps"] == [[3, 4], [6, 6]]
    assert balance(app, card_id) == 100000 - 4 * 12000


def test_gaps_shrink_as_late_taps_arrive_and_the_watermark_only_rises(client: FlaskClient, app: Flask) -> None:
    creds = make_device(app)
    _, number, _ = make_card(app, balance=1_000_000)

    def send(*seqs: int) -> list[list[int]]:
        taps = [tap_body(seq, number, seconds=seq * 900, vehicle=f"v{seq}") for seq in seqs]
        gaps: list[list[int]] = signed(client, creds, "POST", BATCHES, {"taps": taps}).get_json()["gaps"]
        return gaps

    def watermark() -> int:
        with get_db(app).engine.connect() as conn:
            return int(conn.execute(text("SELECT seq_watermark FROM devices WHERE id = :d"),
                                    {"d": creds.device_id}).scalar_one())

    assert (send(1, 2, 5, 9), watermark()) == ([[3, 4], [6, 8]], 2)
    assert (send(4), watermark()) == ([[3, 3], [6, 8]], 2)
    assert (send(3, 6, 7), watermark()) == ([[8, 8]], 7)
    assert (send(8), watermark()) == ([], 9)
    assert (send(2), watermark()) == ([], 9)  # a repeat below the watermark changes nothing
    assert (send(12), watermark()) == ([[10, 11]], 9)


def test_offline_debt_puts_the_card_on_the_deny_list_until_top_up(client: FlaskClient, app: Flask) -> None:
    creds = make_device(app)
    card_id, number, _ = make_card(app, balance=5000)
    taps = [tap_body(seq, number, seconds=seq * 900, vehicle=f"v{seq}") for seq in (1, 2)]
    signed(client, creds, "POST", BATCHES, {"taps": taps})
    assert balance(app, card_id) == -12000
    listed = signed(client, creds, "GET", DENY, None).get_json()
    assert [c["action"] for c in listed["changes"]] == ["add"]
    version = listed["version"]
    assert number not in json.dumps(listed)
    app.extensions["redis"].delete("qala:denylist")  # Redis lost it: rebuilt from the database
    assert signed(client, creds, "GET", DENY, None).get_json() == listed
    assert signed(client, creds, "GET", f"{DENY}?since={version}", None).get_json()["changes"] == []
    with get_db(app).session() as session:
        cards.top_up(session, session.get_one(Card, card_id), 20000, "bank")
        session.commit()
    delta = signed(client, creds, "GET", f"{DENY}?since={version}", None).get_json()
    assert [c["action"] for c in delta["changes"]] == ["remove"] and delta["version"] == version + 1


def test_idempotency_key_on_batches(client: FlaskClient, app: Flask) -> None:
    creds = make_device(app)
    _, number, _ = make_card(app, balance=100000)
    body = {"taps": [tap_body(1, number)]}
    first = signed(client, creds, "POST", BATCHES, body, headers={"Idempotency-Key": "b-1"})
    again = signed(client, creds, "POST", BATCHES, body, headers={"Idempotency-Key": "b-1"})
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()
    other = signed(client, creds, "POST", BATCHES, {"taps": [tap_body(2, number, 900)]},
                   headers={"Idempotency-Key": "b-1"})
    assert other.status_code == 409


def test_validator_endpoints_are_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "post" in paths[TAPS] and "post" in paths[BATCHES]
    since = paths[DENY]["get"]["parameters"][0]
    assert since["name"] == "since" and since["schema"]["minimum"] == 0


def test_device_keys_are_sealed_at_rest_and_the_sealing_key_can_rotate(runner: FlaskCliRunner, client: FlaskClient,
                                                                       app: Flask) -> None:
    creds = make_device(app)
    with get_db(app).session() as session:
        rows = [tuple(str(v) for v in row) for row in session.execute(text("SELECT * FROM device_keys"))]
    assert rows and not any(creds.secret in value for row in rows for value in row)
    assert signed(client, creds, "GET", DENY, None).status_code == 200
    app.config["KEY_ENCRYPTION_KEY"] = "a-new-key-encryption-key"  # the old one gone: the key no longer opens
    app.extensions.pop("ticketing").close()
    refused = signed(client, creds, "GET", DENY, None)
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "bad_signature"
    app.config["KEY_ENCRYPTION_KEY"] = f"a-new-key-encryption-key,{app.config['CARD_HASH_KEY']}"  # new first, old too
    app.extensions.pop("ticketing").close()
    assert signed(client, creds, "GET", DENY, None).status_code == 200
    resealed = runner.invoke(args=["devices", "reseal"])
    assert resealed.exit_code == 0 and "resealed=1" in resealed.output
    app.config["KEY_ENCRYPTION_KEY"] = "a-new-key-encryption-key"  # the old one retired after the reseal
    app.extensions.pop("ticketing").close()
    assert signed(client, creds, "GET", DENY, None).status_code == 200


def test_batch_late_tap_adjusts_earlier_charges_and_repeats_in_one_batch(client: FlaskClient, app: Flask) -> None:
    """Astana: a late 08:00 tap makes the already-charged 08:30 ride a free transfer (an adjustment entry); the
    same tap twice in one batch counts once; a repeated key with another body is a conflict."""
    app.extensions.pop("ticketing", None)
    app.config["FARE_PROFILE"] = "astana"
    creds = make_device(app)
    card_id, number, _ = make_card(app, balance=100000)
    first = signed(client, creds, "POST", BATCHES, {"taps": [tap_body(2, number, 1800, "b")]}).get_json()
    assert first["results"][0]["fare"] == 10000
    late = tap_body(1, number, 0, "a")
    body = signed(client, creds, "POST", BATCHES, {"taps": [late, late, {**late, "vehicle_id": "c"}]}).get_json()
    assert [r["decision"] for r in body["results"]] == ["accept", "accept", "conflict"]
    assert balance(app, card_id) == 90000  # one fare for the journey
    with get_db(app).session() as session:
        kinds = session.execute(text("SELECT t.kind FROM ledger_transactions t JOIN taps p ON p.id = t.tap_id "
                                     "WHERE p.device_seq = 2 ORDER BY t.id")).scalars().all()
    assert kinds == ["fare", "fare_adjustment"]


def test_a_large_batch_commits_in_card_chunks_and_charges_each_tap_once(client: FlaskClient, app: Flask) -> None:
    """More than CHUNK_TAPS taps: applied chunk by chunk, each card rated with all its taps; sent again, nothing
    is charged twice."""
    creds = make_device(app)
    made = [make_card(app, balance=1_000_000) for _ in range(6)]
    taps = [tap_body(seq, made[seq % 6][1], seconds=seq * 60, vehicle=f"v{seq % 7}") for seq in range(1, 301)]
    first = signed(client, creds, "POST", BATCHES, {"taps": taps}).get_json()
    assert first["counts"] == {"accept": 300, "deny": 0, "conflict": 0, "duplicates": 0}
    assert [r["device_seq"] for r in first["results"]] == list(range(1, 301))
    again = signed(client, creds, "POST", BATCHES, {"taps": taps}).get_json()
    assert again["counts"]["duplicates"] == 300
    for card_id, _, _ in made:
        assert balance(app, card_id) == 1_000_000 - 50 * 12000
