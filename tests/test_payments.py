"""Who may credit a card: riders only through a confirmed payment, kiosks and banks only as signed channel devices,
staff only with an audit row (issue 14, "Top-ups only with money behind them")."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from app import get_db
from app.config import ConfigError, load_config
from app.models import AuditLog, Card, Device, LedgerAccount, LedgerEntry, PaymentIntent
from app.ticketing import cards, denylist, devices, ledger
from app.ticketing.devices import DeviceCredentials
from app.ticketing.payments import SandboxProvider
from tests.fixtures.accounts import account, staff
from tests.fixtures.tickets import make_card, make_device, signed

pytestmark = pytest.mark.usefixtures("ledger_checked")  # every test leaves the ledger balanced

CHANNEL = "/api/v1/channels/top-ups"


def balance(app: Flask, card_id: int) -> int:
    with get_db(app).session() as session:
        return ledger.card_account(session, card_id).balance


def channel_total(app: Flask, code: str) -> int:
    """Σ of a system account's entries (a channel pays out what the cards receive)."""
    with get_db(app).session() as session:
        total = session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0))
                               .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
                               .where(LedgerAccount.code == code))
        return int(total or 0)


def intent_row(app: Flask, intent_id: str) -> PaymentIntent:
    with get_db(app).session() as session:
        row = session.get_one(PaymentIntent, intent_id)
        session.expunge(row)
        return row


def assert_ledger_sound(app: Flask) -> None:
    with get_db(app).session() as session:
        assert ledger.check_invariants(session) == []


def rider_with_card(app: Flask, client: FlaskClient, login: str = "alice@example.kz",
                    start: int = 0) -> tuple[int, dict[str, str]]:
    rider_id, headers = account(client, login)
    card_id, _, _ = make_card(app, balance=start, rider_id=rider_id)
    return card_id, headers


def new_intent(client: FlaskClient, card_id: int, headers: dict[str, str], amount: int = 50000) -> dict[str, Any]:
    created = client.post(f"/api/v1/cards/{card_id}/payment-intents", json={"amount": amount}, headers=headers)
    assert created.status_code == 201, created.get_json()
    body: dict[str, Any] = created.get_json()
    return body


def pay_url(intent: dict[str, Any]) -> str:
    """The sandbox's "pay" endpoint that its checkout page (the intent's ``checkout_url``) calls."""
    return f"/api/v1/payments/sandbox/intents/{intent['intent_id']}/pay"


def webhook(client: FlaskClient, app: Flask, event: dict[str, Any], *, secret: str | None = None,
            now: dt.datetime | None = None, body: bytes | None = None) -> TestResponse:
    """Deliver an event as the sandbox provider would (signed with ``secret``, by default the configured one)."""
    raw = body if body is not None else json.dumps(event).encode()
    provider = SandboxProvider(secret or app.config["PAYMENT_WEBHOOK_SECRET"])
    signature = provider.sign(json.dumps(event).encode(), now)
    return client.post("/api/v1/payments/sandbox/webhook", data=raw, headers=signature,
                       content_type="application/json")


def event_for(app: Flask, intent_id: str, status: str = "succeeded", **changes: Any) -> dict[str, Any]:
    row = intent_row(app, intent_id)
    return {"event_id": "evt_" + intent_id, "reference": row.provider_ref, "status": status, "amount": row.amount,
            "currency": row.currency, **changes}


def test_a_rider_can_never_credit_a_card_without_a_confirmed_payment(client: FlaskClient, app: Flask) -> None:
    card_id, alice = rider_with_card(app, client)
    old_route = client.post(f"/api/v1/cards/{card_id}/top-ups", json={"amount": 10_000_000}, headers=alice)
    assert old_route.status_code in (404, 405)
    intent = new_intent(client, card_id, alice)
    assert intent["status"] == "pending" and intent["amount"] == 50000
    assert intent["checkout_url"] == f"/sandbox/checkout/{intent['intent_id']}"  # the sandbox's checkout page
    assert client.get(f"/api/v1/payment-intents/{intent['intent_id']}", headers=alice).get_json()["status"] == \
        "pending"
    assert balance(app, card_id) == 0 and channel_total(app, "channel:app") == 0


def test_a_sandbox_payment_credits_the_card_once(client: FlaskClient, app: Flask) -> None:
    card_id, alice = rider_with_card(app, client)
    intent = new_intent(client, card_id, alice)
    paid = client.post(pay_url(intent), json={"outcome": "succeeded"}, headers=alice)
    assert paid.status_code == 200 and paid.get_json()["status"] == "succeeded"
    assert paid.get_json()["checkout_url"] is None
    again = client.post(pay_url(intent), json={"outcome": "succeeded"}, headers=alice)
    assert again.status_code == 200 and again.get_json()["status"] == "succeeded"
    assert balance(app, card_id) == 50000 and channel_total(app, "channel:app") == -50000
    row = intent_row(app, intent["intent_id"])
    assert row.status == "succeeded" and row.ledger_transaction_id is not None
    shown = client.get(f"/api/v1/payment-intents/{intent['intent_id']}", headers=alice).get_json()
    assert shown["status"] == "succeeded" and shown["checkout_url"] is None
    assert_ledger_sound(app)


def test_a_replayed_webhook_credits_once(client: FlaskClient, app: Flask) -> None:
    card_id, alice = rider_with_card(app, client)
    intent = new_intent(client, card_id, alice, amount=20000)
    event = event_for(app, intent["intent_id"])
    first, second = webhook(client, app, event), webhook(client, app, event)
    assert first.status_code == second.status_code == 200
    assert (first.get_json()["duplicate"], second.get_json()["duplicate"]) == (False, True)
    later = webhook(client, app, {**event, "event_id": "evt_retry"}, now=dt.datetime.now(dt.UTC)
                    + dt.timedelta(seconds=60))  # the provider's retry, signed afresh
    assert later.status_code == 200 and later.get_json()["duplicate"] is True
    assert balance(app, card_id) == 20000
    with get_db(app).session() as session:
        top_ups = session.scalar(select(func.count()).select_from(LedgerEntry)
                                 .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
                                 .where(LedgerAccount.code == "channel:app"))
    assert top_ups == 1
    assert_ledger_sound(app)


def test_a_bad_signature_is_401_and_credits_nothing(client: FlaskClient, app: Flask) -> None:
    card_id, alice = rider_with_card(app, client)
    intent = new_intent(client, card_id, alice)
    event = event_for(app, intent["intent_id"])
    forged = webhook(client, app, event, secret="not-the-provider")
    tampered = webhook(client, app, event, body=json.dumps({**event, "amount": 5_000_000}).encode())
    stale = webhook(client, app, event, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    unsigned = client.post("/api/v1/payments/sandbox/webhook", json=event)
    for response, code in ((forged, "bad_signature"), (tampered, "bad_signature"), (stale, "stale_request"),
                           (unsigned, "missing_signature")):
        assert response.status_code == 401 and response.get_json()["error"]["code"] == code
    assert client.post("/api/v1/payments/sandbox/webhook", data=b"{", content_type="application/json",
                       headers={"X-Sandbox-Signature": "t=1,v1=00"}).status_code == 401
    assert intent_row(app, intent["intent_id"]).status == "pending"
    assert balance(app, card_id) == 0


def test_a_failed_or_canceled_payment_never_credits(client: FlaskClient, app: Flask) -> None:
    card_id, alice = rider_with_card(app, client)
    failed, canceled = new_intent(client, card_id, alice), new_intent(client, card_id, alice, amount=30000)
    assert client.post(pay_url(failed), json={"outcome": "failed"},
                       headers=alice).get_json()["status"] == "failed"
    assert webhook(client, app, event_for(app, canceled["intent_id"], "canceled")).get_json()["status"] == \
        "canceled"
    for intent in (failed, canceled):  # a success reported afterwards changes nothing
        late = webhook(client, app, event_for(app, intent["intent_id"]))
        assert late.status_code == 200 and late.get_json()["duplicate"] is True
        assert intent_row(app, intent["intent_id"]).ledger_transaction_id is None
    assert [intent_row(app, i["intent_id"]).status for i in (failed, canceled)] == ["failed", "canceled"]
    assert balance(app, card_id) == 0


def test_an_event_must_match_the_intent(client: FlaskClient, app: Flask) -> None:
    card_id, alice = rider_with_card(app, client)
    intent = new_intent(client, card_id, alice)
    more = webhook(client, app, event_for(app, intent["intent_id"], amount=5_000_000))
    other_currency = webhook(client, app, event_for(app, intent["intent_id"], currency="USD"))
    unknown = webhook(client, app, event_for(app, intent["intent_id"], reference="sbx_nobody"))
    assert more.status_code == other_currency.status_code == 409
    assert (unknown.status_code, unknown.get_json()["error"]["field"]) == (404, "reference")
    assert intent_row(app, intent["intent_id"]).status == "pending" and balance(app, card_id) == 0


@pytest.mark.parametrize(("amount", "field"), [(9_999, "amount"), (5_000_001, "amount"), ("500", "amount"),
                                               (None, "amount"), (True, "amount")])
def test_amount_limits_are_400_naming_the_field(client: FlaskClient, app: Flask, amount: Any, field: str) -> None:
    card_id, alice = rider_with_card(app, client)
    refused = client.post(f"/api/v1/cards/{card_id}/payment-intents", json={"amount": amount}, headers=alice)
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == field
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(PaymentIntent)) == 0


def test_a_card_balance_has_a_cap_counting_pending_payments(client: FlaskClient, app: Flask) -> None:
    card_id, alice = rider_with_card(app, client, start=6_000_000)
    first = new_intent(client, card_id, alice, amount=3_000_000)
    over = client.post(f"/api/v1/cards/{card_id}/payment-intents", json={"amount": 1_500_000}, headers=alice)
    assert over.status_code == 409 and over.get_json()["error"]["field"] == "amount"
    client.post(pay_url(first), json={"outcome": "failed"}, headers=alice)  # room again
    assert new_intent(client, card_id, alice, amount=1_500_000)["status"] == "pending"
    assert balance(app, card_id) == 6_000_000


def test_another_riders_card_and_intents_are_404(client: FlaskClient, app: Flask) -> None:
    card_id, alice = rider_with_card(app, client)
    _, bob = account(client, "bob@example.kz")
    intent = new_intent(client, card_id, alice)
    assert client.post(f"/api/v1/cards/{card_id}/payment-intents", json={"amount": 50000},
                       headers=bob).status_code == 404
    assert client.get(f"/api/v1/payment-intents/{intent['intent_id']}", headers=bob).status_code == 404
    assert client.post(pay_url(intent), json={"outcome": "succeeded"}, headers=bob).status_code == 404
    assert client.post(f"/api/v1/cards/{card_id}/payment-intents", json={"amount": 50000}).status_code == 401
    assert intent_row(app, intent["intent_id"]).status == "pending" and balance(app, card_id) == 0


def test_without_the_sandbox_there_is_no_pay_button(client: FlaskClient, app: Flask) -> None:
    card_id, alice = rider_with_card(app, client)
    intent = new_intent(client, card_id, alice)
    app.config["PAYMENT_PROVIDER"] = "none"
    app.extensions.pop("payments", None)
    assert client.post(pay_url(intent), json={"outcome": "succeeded"}, headers=alice).status_code == 404
    assert webhook(client, app, event_for(app, intent["intent_id"])).status_code == 404
    off = client.post(f"/api/v1/cards/{card_id}/payment-intents", json={"amount": 50000}, headers=alice)
    assert off.status_code == 503 and off.get_json()["error"]["code"] == "payments_unavailable"
    assert balance(app, card_id) == 0


def test_concurrent_deliveries_credit_once(client: FlaskClient, app: Flask) -> None:
    if get_db(app).engine.dialect.name != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises the whole database)")
    card_id, alice = rider_with_card(app, client)
    intent = new_intent(client, card_id, alice)
    event = event_for(app, intent["intent_id"])
    statuses: list[int] = []

    def deliver() -> None:
        statuses.append(webhook(app.test_client(), app, event).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8 and balance(app, card_id) == 50000
    assert_ledger_sound(app)


def channel_top_up(client: FlaskClient, creds: DeviceCredentials, number: str, amount: int,
                   key: str | None = None) -> TestResponse:
    return signed(client, creds, "POST", CHANNEL, {"card": number, "amount": amount},
                  headers={"Idempotency-Key": key} if key else None)


def test_a_kiosk_device_tops_up_once_per_key_and_is_audited(client: FlaskClient, app: Flask) -> None:
    card_id, number, _ = make_card(app)
    kiosk = make_device(app, "kiosk at Abay metro", kind="kiosk")
    first = channel_top_up(client, kiosk, number, 100000, key="receipt-1")
    again = channel_top_up(client, kiosk, number, 100000, key="receipt-1")
    assert first.status_code == again.status_code == 200, first.get_json()
    assert first.get_json() == {**again.get_json(), "balance": 100000, "channel": "kiosk", "amount": 100000}
    other_amount = channel_top_up(client, kiosk, number, 200000, key="receipt-1")
    assert other_amount.status_code == 409
    assert balance(app, card_id) == 100000 and channel_total(app, "channel:kiosk") == -100000
    bank = make_device(app, "Halyk gateway", kind="bank")
    assert channel_top_up(client, bank, number, 5000).get_json()["channel"] == "bank"
    assert channel_top_up(client, bank, "1" * 19, 5000).status_code == 404
    with get_db(app).session() as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.card_id == card_id).order_by(AuditLog.id)).all()
        assert [(r.action, r.actor_id, r.details["channel"], r.details["amount"], r.details["device_id"])
                for r in rows] == [("top_up", None, "kiosk", 100000, kiosk.device_id),
                                   ("top_up", None, "bank", 5000, bank.device_id)]
    assert_ledger_sound(app)


def test_validators_and_unsigned_callers_cannot_top_up(client: FlaskClient, app: Flask) -> None:
    card_id, number, _ = make_card(app)
    validator = make_device(app)
    refused = channel_top_up(client, validator, number, 100000)
    assert refused.status_code == 403
    malformed = signed(client, validator, "POST", CHANNEL, {"card": number})  # refused before the body is read
    assert malformed.status_code == 403
    unsigned = client.post(CHANNEL, json={"card": number, "amount": 100000})
    assert unsigned.status_code == 401 and unsigned.get_json()["error"]["code"] == "missing_signature"
    kiosk = make_device(app, "kiosk", kind="kiosk")
    forged = signed(client, DeviceCredentials(kiosk.device_id, kiosk.key_id, "0" * 64), "POST", CHANNEL,
                    {"card": number, "amount": 100000})
    assert forged.status_code == 401
    too_much = channel_top_up(client, kiosk, number, 5_000_001)
    assert too_much.status_code == 400 and too_much.get_json()["error"]["field"] == "amount"
    assert balance(app, card_id) == 0
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(AuditLog)) == 0


def test_devices_register_cli_takes_a_kind(runner: FlaskCliRunner, client: FlaskClient, app: Flask) -> None:
    result = runner.invoke(args=["devices", "register", "kiosk 7", "--kind", "kiosk"])
    assert result.exit_code == 0, result.output
    values = dict(line.split("=", 1) for line in result.output.strip().splitlines())
    with get_db(app).session() as session:
        assert session.get_one(Device, values["device_id"]).kind == "kiosk"
    creds = devices.DeviceCredentials(values["device_id"], values["key_id"], values["key"])
    card_id, number, _ = make_card(app)
    assert channel_top_up(client, creds, number, 20000).status_code == 200 and balance(app, card_id) == 20000
    assert runner.invoke(args=["devices", "register", "x", "--kind", "tram"]).exit_code != 0


def test_a_staff_top_up_is_audited(client: FlaskClient, app: Flask) -> None:
    desk = staff(app, client)
    card_id, _, _ = make_card(app)
    done = client.post(f"/api/v1/staff/cards/{card_id}/top-ups", json={"amount": 70000, "channel": "bank"},
                       headers=desk)
    assert done.status_code == 200 and done.get_json()["balance"] == 70000
    app_channel = client.post(f"/api/v1/staff/cards/{card_id}/top-ups", json={"amount": 70000, "channel": "app"},
                              headers=desk)
    assert app_channel.status_code == 400 and app_channel.get_json()["error"]["field"] == "channel"
    entries = client.get(f"/api/v1/staff/audit?card_id={card_id}", headers=desk).get_json()["entries"]
    with get_db(app).session() as session:
        desk_id = session.scalar(select(AuditLog.actor_id).where(AuditLog.action == "top_up"))
    assert desk_id is not None
    assert [(e["action"], e["actor_id"], e["details"]) for e in entries] == [
        ("top_up", desk_id, {"amount": 70000, "channel": "bank"})]
    assert balance(app, card_id) == 70000


def test_a_staff_debit_below_zero_puts_the_card_on_the_deny_list(client: FlaskClient, app: Flask) -> None:
    desk = staff(app, client)
    card_id, _, _ = make_card(app, balance=10000)
    debit = client.post(f"/api/v1/staff/cards/{card_id}/adjustments",
                        json={"amount": -4_000_000, "reason": "chargeback of a bank top-up"}, headers=desk)
    assert debit.status_code == 200 and debit.get_json()["balance"] == -3_990_000
    with get_db(app).session() as session:
        assert denylist.is_denied(session, card_id)
    validator = make_device(app)
    changes = signed(client, validator, "GET", "/api/v1/validators/deny-list", None).get_json()["changes"]
    assert [(c["action"], c["reason"]) for c in changes] == [("add", "negative_balance")]
    settle = client.post(f"/api/v1/staff/cards/{card_id}/adjustments",
                         json={"amount": 3_990_000, "reason": "debt settled at the office"}, headers=desk)
    assert settle.get_json()["balance"] == 0
    with get_db(app).session() as session:
        assert not denylist.is_denied(session, card_id)
    assert_ledger_sound(app)


def test_a_card_for_a_rider_who_does_not_exist_is_404_naming_rider_id(client: FlaskClient, app: Flask) -> None:
    desk = staff(app, client)
    for body in ({"rider_id": 999_999}, {"category": "student", "rider_id": 999_999}):
        refused = client.post("/api/v1/staff/cards", json=body, headers=desk)
        assert refused.status_code == 404 and refused.get_json()["error"]["field"] == "rider_id"
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Card)) == 0
        assert session.scalar(select(func.count()).select_from(AuditLog)) == 0


def test_the_sandbox_is_refused_in_production_unless_asked_for() -> None:
    secrets = {"QALA_ENV": "production", "SECRET_KEY": "s", "CARD_HASH_KEY": "h"}
    with pytest.raises(ConfigError, match="QALA_PAYMENT_PROVIDER"):
        load_config(secrets)
    with pytest.raises(ConfigError, match="QALA_PAYMENT_SANDBOX_IN_PRODUCTION"):
        load_config({**secrets, "QALA_PAYMENT_PROVIDER": "sandbox", "QALA_PAYMENT_WEBHOOK_SECRET": "w"})
    with pytest.raises(ConfigError, match="QALA_PAYMENT_WEBHOOK_SECRET"):
        load_config({**secrets, "QALA_PAYMENT_PROVIDER": "sandbox", "QALA_PAYMENT_SANDBOX_IN_PRODUCTION": "yes"})
    demo = load_config({**secrets, "QALA_PAYMENT_PROVIDER": "sandbox", "QALA_PAYMENT_SANDBOX_IN_PRODUCTION": "yes",
                        "QALA_PAYMENT_WEBHOOK_SECRET": "w"})
    assert (demo["PAYMENT_PROVIDER"], demo["PAYMENT_WEBHOOK_SECRET"]) == ("sandbox", "w")
    assert load_config({**secrets, "QALA_PAYMENT_PROVIDER": "none"})["PAYMENT_PROVIDER"] == "none"
    assert load_config({})["PAYMENT_PROVIDER"] == "sandbox"


def test_the_app_channel_takes_money_only_with_a_confirmed_payment(app: Flask) -> None:
    card_id, _, _ = make_card(app)
    with get_db(app).session() as session:
        card = session.get_one(Card, card_id)
        for key in (None, "fare:dev_1:1", "paymentX"):
            with pytest.raises(ValueError, match="confirmed payment"):
                cards.top_up(session, card, 50000, "app", charge_key=key)
        session.rollback()
    assert balance(app, card_id) == 0 and channel_total(app, "channel:app") == 0


def test_cards_issue_cli_audits_its_initial_balance(runner: FlaskCliRunner, app: Flask) -> None:
    issued = runner.invoke(args=["cards", "issue", "--balance", "30000"])
    assert issued.exit_code == 0, issued.output
    card_id = int(dict(line.split("=", 1) for line in issued.output.splitlines())["card_id"])
    assert balance(app, card_id) == 30000
    with get_db(app).session() as session:
        row = session.scalars(select(AuditLog).where(AuditLog.card_id == card_id)).one()
        assert (row.action, row.details) == ("top_up", {"amount": 30000, "channel": "kiosk"})
    unknown = runner.invoke(args=["cards", "issue", "--rider-id", "999999"])
    assert unknown.exit_code == 1 and "no rider with id 999999" in unknown.output
