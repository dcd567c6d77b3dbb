"""The ledger service and its invariant checker; the card and device CLI."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import insert, update

from app import get_db
from app.models import LedgerAccount, LedgerEntry, LedgerTransaction
from app.ticketing import ledger
from app.ticketing.errors import InsufficientFunds
from tests.test_ticketing_helpers import ledger_checked, make_card  # noqa: F401


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
