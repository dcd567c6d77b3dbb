"""Concurrency and order: concurrent taps never overspend (PostgreSQL), and a card-day's charges do not depend
on the order in which its taps arrive (hypothesis, both databases)."""

from __future__ import annotations

import datetime as dt
import random
from concurrent.futures import ThreadPoolExecutor
from itertools import count

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app import get_db
from app.models import LedgerEntry, LedgerTransaction, Tap
from app.ticketing import ledger
from app.ticketing.batches import apply_batch
from app.ticketing.context import get_ticketing
from app.ticketing.fares import TapIn, rate
from tests.fixtures.tickets import T0, make_card, make_device, signed, tap_request

pytestmark = pytest.mark.usefixtures("ledger_checked")  # every test leaves the ledger balanced

NUMBERS = count(1)


def test_100_concurrent_taps_on_a_card_holding_37_fares(app: Flask) -> None:
    if get_db(app).engine.dialect.name != "postgresql":
        pytest.skip("row locks under real concurrency need PostgreSQL (TEST_DATABASE_URL)")
    card_id, number, _ = make_card(app, balance=37 * 12000)
    creds = make_device(app)

    def one(seq: int) -> dict[str, object]:
        body = {"seq": seq, "card": number, "vehicle_id": f"bus-{seq}", "route_id": "R12",
                "tapped_at": (T0 + dt.timedelta(seconds=seq * 10)).isoformat()}
        response = signed(app.test_client(), creds, "POST", "/api/v1/validators/taps", body)
        assert response.status_code == 200, response.get_json()
        payload: dict[str, object] = response.get_json()
        return payload

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(1, 101)))
    decisions = [r["decision"] for r in results]
    assert decisions.count("accept") == 37
    assert {r["reason"] for r in results if r["decision"] == "deny"} == {"insufficient_balance"}
    with get_db(app).session() as session:
        assert ledger.card_account(session, card_id).balance == 0


TAP_SETS = st.lists(st.tuples(st.integers(0, 4 * 3600), st.sampled_from(["a", "b", "c"])),
                    min_size=2, max_size=8, unique_by=lambda t: t[0])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=TAP_SETS, seed=st.integers(0, 2**16), chunk=st.integers(1, 3))
def test_charges_are_identical_under_every_arrival_order(app: Flask, raw: list[tuple[int, str]], seed: int,
                                                         chunk: int) -> None:
    app.extensions.pop("ticketing", None)
    app.config["FARE_PROFILE"] = "astana"
    ctx = get_ticketing(app)
    n = next(NUMBERS)
    card_id, number, _ = make_card(app, balance=1_000_000, number=f"{n:019d}")
    creds = make_device(app, f"validator {n}")
    requests = [tap_request(creds.device_id, i + 1, number, s, vehicle=v, offline=True)
                for i, (s, v) in enumerate(raw)]
    shuffled = list(requests)
    random.Random(seed).shuffle(shuffled)
    for start in range(0, len(shuffled), chunk):
        with get_db(app).session() as session:
            apply_batch(session, ctx, shuffled[start:start + chunk])
            session.commit()
    with get_db(app).session() as session:
        apply_batch(session, ctx, shuffled)  # and the whole batch again: nothing changes
        session.commit()
    with get_db(app).session() as session:
        expected = {r.tap_id: r.fare for r in rate(ctx.profiles.get(session), "standard",
                                                   [TapIn(q.tap_key, q.tapped_at, q.vehicle_id, q.route_id)
                                                    for q in requests])}
        account = ledger.card_account(session, card_id)
        paid = dict(session.execute(
            select(Tap.tap_key, func.coalesce(-func.sum(LedgerEntry.amount), 0))
            .join(LedgerTransaction, LedgerTransaction.tap_id == Tap.id, isouter=True)
            .join(LedgerEntry, (LedgerEntry.transaction_id == LedgerTransaction.id)
                  & (LedgerEntry.account_id == account.id), isouter=True)
            .where(Tap.card_id == card_id).group_by(Tap.tap_key)).all())
        assert paid == expected
        assert account.balance == 1_000_000 - sum(expected.values())


def test_concurrent_taps_on_one_vehicle_see_each_other_as_double_taps(app: Flask) -> None:
    """The window is read after the card's lock is held, so a tap that waited sees the one it waited for."""
    if get_db(app).engine.dialect.name != "postgresql":
        pytest.skip("row locks under real concurrency need PostgreSQL (TEST_DATABASE_URL)")
    card_id, number, _ = make_card(app, balance=10 * 12000)
    creds = make_device(app)

    def one(seq: int) -> dict[str, object]:
        body = {"seq": seq, "card": number, "vehicle_id": "bus-1", "route_id": "R12", "tapped_at": T0.isoformat()}
        response = signed(app.test_client(), creds, "POST", "/api/v1/validators/taps", body)
        assert response.status_code == 200, response.get_json()
        payload: dict[str, object] = response.get_json()
        return payload

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(one, range(1, 11)))
    assert "double_tap" in {r["outcome"] for r in results}
    with get_db(app).session() as session:  # one fare in all (a tap that arrived late was corrected)
        assert ledger.card_account(session, card_id).balance == 9 * 12000
