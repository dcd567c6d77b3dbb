"""The ledger service (postings, tap charges, batch writes, re-rating) and its invariant checker; the card and
device CLI."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import insert, select, update

from app import get_db
from app.models import LedgerAccount, LedgerEntry, LedgerTransaction, Tap
from app.ticketing import ledger
from app.ticketing.errors import InsufficientFunds
from tests.fixtures.tickets import T0, make_card, make_device

pytestmark = pytest.mark.usefixtures("ledger_checked")  # every test leaves the ledger balanced


def test_postings_must_balance_and_respect_the_floor(app: Flask) -> None:
    card_id, _, _ = make_card(app, balance=1000)
    with get_db(app).session() as session:
        account = ledger.card_account(session, card_id)
        revenue = ledger.system_account(session, "revenue")
        with pytest.raises(ValueError, match="sum to zero"):
            ledger.post(session, "fare", [ledger.Leg(account.id, -100, card=True), ledger.Leg(revenue, 99)])
        with pytest.raises(InsufficientFunds):
            ledger.post(session, "fare", [ledger.Leg(account.id, -1001, 0, card=True), ledger.Leg(revenue, 1001)])
        session.rollback()  # which also undid the revenue account created above
        revenue = ledger.system_account(session, "revenue")
        balances = ledger.post(session, "sale", [ledger.Leg(account.id, -1000, 0, card=True),
                                                 ledger.Leg(revenue, 1000)])
        session.commit()
        assert balances == {account.id: 0}


def test_the_invariant_checker_finds_each_kind_of_corruption(app: Flask) -> None:
    card_id, _, _ = make_card(app, balance=5000)
    with get_db(app).session() as session:
        account = ledger.card_account(session, card_id)
        assert ledger.check_invariants(session) == []
        session.execute(update(LedgerAccount).where(LedgerAccount.id == account.id).values(balance=4000))
        tx = LedgerTransaction(kind="broken")
        session.add(tx)
        session.flush()
        session.execute(insert(LedgerEntry).values(transaction_id=tx.id, account_id=account.id, amount=7))
        problems = ledger.check_invariants(session)
        session.rollback()
    assert any("sum to 7" in p or "sums to 7" in p for p in problems)
    assert any(f"card:{card_id} balance" in p for p in problems)
    assert any("entries sum to 7" in p for p in problems)


def test_cards_issue_and_rotate_key_cli(runner: FlaskCliRunner, app: Flask) -> None:
    issued = runner.invoke(args=["cards", "issue", "--balance", "24000"])
    assert issued.exit_code == 0, issued.output
    values = dict(line.split("=", 1) for line in issued.output.strip().splitlines())
    assert len(values["number"]) == 19 and values["masked"].endswith(values["number"][-3:])
    with get_db(app).session() as session:
        assert ledger.card_account(session, int(values["card_id"])).balance == 24000
    device = dict(line.split("=", 1) for line in runner.invoke(args=["devices", "register", "v1"]).output.split())
    rotated = runner.invoke(args=["devices", "rotate-key", device["device_id"], "--overlap-hours", "1"])
    assert rotated.exit_code == 0 and "key_id=" in rotated.output
    listed = runner.invoke(args=["devices", "list"]).output
    assert f"{device['device_id']}  v1  keys=2" in listed
    assert runner.invoke(args=["devices", "rotate-key", "nope"]).exit_code != 0


def test_a_system_account_created_by_a_rolled_back_transaction_is_not_remembered(app: Flask) -> None:
    cache: dict[str, int] = {}
    with get_db(app).session() as session:
        ledger.system_account(session, "channel:bank", cache)
        assert ledger.system_account(session, "channel:bank", cache) and cache == {}
        session.rollback()
    with get_db(app).session() as session:
        created = ledger.system_account(session, "channel:bank")
        session.commit()
    with get_db(app).session() as session:
        assert ledger.system_account(session, "channel:bank", cache) == created
    assert cache == {"channel:bank": created}


def test_a_re_rated_ride_pays_the_difference_and_is_never_refunded_more_than_was_collected() -> None:
    def ride(paid: int, uncollected: int = 0) -> ledger.PriorRide:
        return ledger.PriorRide(1, "v1:1", T0, "bus-1", "R12", uncollected, paid)

    assert [ride(-12000).adjustment(fare) for fare in (12000, 15000, 6000, 0)] == [0, 3000, -6000, -12000]
    # 4,000 collected, 8,000 left uncollected at the debt limit: a cheaper rating forgives debt before refunding
    assert [ride(-4000, 8000).adjustment(fare) for fare in (12000, 10000, 0)] == [0, -2000, -4000]


def _tap_row(device_id: str, seq: int, card_id: int, fare: int, balance_after: int) -> dict[str, Any]:
    return {"tap_key": f"{device_id}:{seq}", "device_id": device_id, "device_seq": seq, "body_hash": "h" * 64,
            "card_id": card_id, "card_masked": "9398 **** 123", "vehicle_id": "bus-1", "route_id": "R12",
            "tapped_at": T0 + dt.timedelta(minutes=seq), "offline": True, "outcome": "accepted", "reason": None,
            "fare": fare, "uncollected": 0, "product_id": None, "balance_after": balance_after}


def test_a_tap_charge_never_crosses_the_floor_and_is_keyed_by_its_tap(app: Flask) -> None:
    card_id, _, _ = make_card(app, balance=1000)
    device = make_device(app).device_id
    with get_db(app).session() as session:
        account = ledger.card_account(session, card_id).id
        revenue = ledger.system_account(session, "revenue")
        session.commit()
        with pytest.raises(InsufficientFunds):
            ledger.charge_tap(session, _tap_row(device, 1, card_id, 1500, -500), account_id=account,
                              revenue_id=revenue, charge=1500, floor=0)
        session.rollback()
        tap_id, balance = ledger.charge_tap(session, _tap_row(device, 2, card_id, 1500, -500), account_id=account,
                                            revenue_id=revenue, charge=1500, floor=-3000)
        session.commit()
        assert balance == -500 and ledger.card_account(session, card_id).balance == -500
        assert session.scalars(select(Tap.tap_key)).all() == [f"{device}:2"]
        charge = session.scalars(select(LedgerTransaction)).all()[-1]
        assert (charge.kind, charge.charge_key, charge.tap_id) == ("fare", ledger.fare_key(f"{device}:2"), tap_id)


def test_a_batch_write_links_its_postings_to_new_and_stored_taps(app: Flask) -> None:
    card_id, _, _ = make_card(app, balance=30000)
    device = make_device(app).device_id
    with get_db(app).session() as session:
        account = ledger.card_account(session, card_id).id
        revenue = ledger.system_account(session, "revenue")
        rows = [tuple(_tap_row(device, seq, card_id, 12000, 30000 - 12000 * seq)[column]
                      for column in ledger.TAP_COLUMNS[1:]) for seq in (1, 2)]
        fares = [ledger.Posting("fare", ledger.fare_key(f"{device}:{seq}"), seq - 1, None, None, account, 12000)
                 for seq in (1, 2)]
        first, second = ledger.write_batch(session, rows, fares, {account: -24000}, revenue)
        refund = ledger.Posting("fare_adjustment", ledger.adjustment_key(f"{device}:2", 1), None, second,
                                "re-rated after a late tap", account, -12000)
        assert ledger.write_batch(session, [], [refund], {account: 12000}, revenue) == []
        session.commit()
        assert ledger.card_account(session, card_id).balance == 18000
        linked = session.execute(select(LedgerTransaction.kind, LedgerTransaction.tap_id)
                                 .order_by(LedgerTransaction.id)).all()
        assert [tuple(r) for r in linked][-3:] == [("fare", first), ("fare", second), ("fare_adjustment", second)]
