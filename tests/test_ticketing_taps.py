"""Tap processing against the database: every rule at the tap, exactly-once charging, late taps, the deny list."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import event, func, select, text

from app import get_db
from app.models import Card, DenyListEntry, LedgerEntry, Tap
from app.ticketing import cards, ledger
from app.ticketing.context import get_ticketing
from app.ticketing.errors import Conflict
from app.ticketing.fares import TapIn, rate
from app.ticketing.taps import TapRequest, TapResult, process_online_fast
from tests.fixtures.tickets import T0, make_card, make_device, send_tap, tap_request

pytestmark = pytest.mark.usefixtures("ledger_checked")  # every test leaves the ledger balanced


def balance(app: Flask, card_id: int) -> int:
    with get_db(app).session() as session:
        return ledger.card_account(session, card_id).balance


def test_online_tap_charges_the_fare_once(app: Flask) -> None:
    card_id, number, _ = make_card(app, balance=50000)
    dev = make_device(app)
    first = send_tap(app, tap_request(dev.device_id, 1, number))
    assert (first.decision, first.fare, first.balance) == ("accept", 12000, 38000)
    again = send_tap(app, tap_request(dev.device_id, 1, number))
    assert again.duplicate and (again.fare, again.balance) == (12000, 38000)
    assert balance(app, card_id) == 38000


def test_same_tap_key_with_a_different_body_is_a_conflict(app: Flask) -> None:
    _, number, _ = make_card(app, balance=50000)
    dev = make_device(app)
    send_tap(app, tap_request(dev.device_id, 1, number))
    with pytest.raises(Conflict):
        send_tap(app, tap_request(dev.device_id, 1, number, seconds=30))


def test_double_tap_same_vehicle_within_two_seconds_is_not_charged(app: Flask) -> None:
    card_id, number, _ = make_card(app, balance=50000)
    dev = make_device(app)
    send_tap(app, tap_request(dev.device_id, 1, number, 0))
    double = send_tap(app, tap_request(dev.device_id, 2, number, 1.5))
    assert (double.decision, double.outcome, double.fare) == ("accept", "double_tap", 0)
    later = send_tap(app, tap_request(dev.device_id, 3, number, 5))
    assert later.fare == 12000
    assert balance(app, card_id) == 26000


def test_insufficient_balance_is_denied_online(app: Flask) -> None:
    card_id, number, _ = make_card(app, balance=11999)
    dev = make_device(app)
    result = send_tap(app, tap_request(dev.device_id, 1, number))
    assert (result.decision, result.reason, result.balance) == ("deny", "insufficient_balance", 11999)
    assert balance(app, card_id) == 11999


def test_unknown_and_blocked_cards_are_denied(app: Flask) -> None:
    card_id, number, _ = make_card(app, balance=50000)
    dev = make_device(app)
    assert send_tap(app, tap_request(dev.device_id, 1, "1" * 19)).reason == "unknown_card"
    with get_db(app).session() as session:
        cards.block(session, session.get_one(Card, card_id), None, "lost")
        session.commit()
    result = send_tap(app, tap_request(dev.device_id, 2, number))
    assert (result.decision, result.reason) == ("deny", "blocked")
    assert balance(app, card_id) == 50000


def test_pass_reused_within_five_minutes_is_denied(app: Flask) -> None:
    card_id, number, _ = make_card(app, balance=500000, category="student")
    dev = make_device(app)
    with get_db(app).session() as session:
        cards.buy_pass(session, get_ticketing(app), session.get_one(Card, card_id), "pass_month", T0.replace(day=1))
        session.commit()
    assert balance(app, card_id) == 500000 - 420000
    first = send_tap(app, tap_request(dev.device_id, 1, number, 0, vehicle="a"))
    second = send_tap(app, tap_request(dev.device_id, 2, number, 200, vehicle="b"))
    third = send_tap(app, tap_request(dev.device_id, 3, number, 301, vehicle="c"))
    assert [(r.decision, r.reason, r.fare) for r in (first, second, third)] == [
        ("accept", None, 0), ("deny", "passback", 0), ("accept", None, 0)]


def test_offline_taps_go_to_minus_one_fare_then_the_card_is_denied_until_topped_up(app: Flask) -> None:
    card_id, number, _ = make_card(app, balance=5000)
    dev = make_device(app)
    results = [send_tap(app, tap_request(dev.device_id, i, number, i * 600, vehicle=f"v{i}", offline=True))
               for i in range(1, 4)]
    assert [r.balance for r in results] == [-7000, -12000, -12000]  # floor: −1 fare
    with get_db(app).session() as session:
        taps = session.scalars(select(Tap).order_by(Tap.device_seq)).all()
        assert [(t.fare, t.uncollected) for t in taps] == [(12000, 0), (12000, 7000), (12000, 12000)]
        entries = session.scalars(select(DenyListEntry)).all()
        assert [(e.action, e.reason) for e in entries] == [("add", "negative_balance")]
        cards.top_up(session, session.get_one(Card, card_id), 20000, "kiosk")
        session.commit()
        entries = session.scalars(select(DenyListEntry).order_by(DenyListEntry.version)).all()
        assert [e.action for e in entries] == ["add", "remove"]
    assert balance(app, card_id) == 8000


def test_late_tap_that_makes_a_transfer_is_corrected_by_an_adjustment(app: Flask) -> None:
    app.extensions.pop("ticketing", None)
    app.config["FARE_PROFILE"] = "astana"
    card_id, number, _ = make_card(app, balance=100000)
    dev = make_device(app)
    later = send_tap(app, tap_request(dev.device_id, 2, number, 1800, vehicle="b", offline=True))
    assert later.fare == 10000
    earlier = send_tap(app, tap_request(dev.device_id, 1, number, 0, vehicle="a", offline=True))
    assert earlier.fare == 10000
    # the 08:30 ride became the free transfer of the 08:00 one: refunded by an adjustment, not an edit
    assert balance(app, card_id) == 90000
    with get_db(app).session() as session:
        tap = session.scalars(select(Tap).where(Tap.device_seq == 2)).one()
        assert tap.fare == 10000  # history unchanged
        kinds = session.execute(text("SELECT kind FROM ledger_transactions WHERE tap_id = :id ORDER BY id"),
                                {"id": tap.id}).scalars().all()
        assert kinds == ["fare", "fare_adjustment"]


def test_ledger_entries_cannot_be_updated(app: Flask) -> None:
    make_card(app, balance=1000)
    with get_db(app).session() as session:
        entry = session.scalars(select(LedgerEntry)).first()
        assert entry is not None
        entry.amount = 999999
        with pytest.raises(Exception, match="immutable"):
            session.commit()


def test_an_online_tap_is_three_statements_on_postgresql(app: Flask) -> None:
    """Lock + lookup, window, and one write (a data-modifying CTE): the hot path's round trips, counted."""
    if get_db(app).engine.dialect.name != "postgresql":
        pytest.skip("the one-statement charge is PostgreSQL's")
    card_id, number, _ = make_card(app, balance=50000)
    dev = make_device(app)
    for seq in (1, 2):  # warm the profile cache and the revenue account id (remembered once committed)
        send_tap(app, tap_request(dev.device_id, seq, number, seq * 600, vehicle="a"))
    statements: list[str] = []
    engine = get_db(app).engine
    listener = lambda *args, **kw: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        result = send_tap(app, tap_request(dev.device_id, 3, number, 1800, vehicle="b"))
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert (result.decision, result.fare, result.balance) == ("accept", 12000, 14000)
    assert len(statements) == 3, [s.split()[:8] for s in statements]
    assert balance(app, card_id) == 14000


def _fast(app: Flask, req: TapRequest) -> TapResult | None:
    ctx = get_ticketing(app)
    with get_db(app).session() as session:
        profile = ctx.profiles.get(session)
        ledger.system_account(session, "revenue")  # the function leaves creating it to the general path
        session.commit()
    return process_online_fast(ctx, profile, req)


def test_the_one_round_trip_path_agrees_with_the_fare_engine(app: Flask) -> None:
    """Random online taps on a few cards, each through the function when it takes it and the engine otherwise;
    then every card's charges are what the engine gives for its whole day, and the function took most taps."""
    if get_db(app).engine.dialect.name != "postgresql":
        pytest.skip("the one-round-trip function is PostgreSQL's")
    ctx = get_ticketing(app)
    rng = random.Random(5)
    made = [make_card(app, balance=rng.choice([0, 12000, 30000, 100000])) for _ in range(4)]
    dev = make_device(app)
    seconds = sorted(rng.sample(range(0, 6 * 3600), 40))
    fast = 0
    for seq, sec in enumerate(seconds, start=1):
        card_id, number, _ = rng.choice(made)
        req = tap_request(dev.device_id, seq, number, sec + rng.choice([0, 0, 1]), vehicle=rng.choice("ab"))
        got = _fast(app, req)
        fast += got is not None
        if got is None:
            got = send_tap(app, req)
        assert got.outcome in ("accepted", "denied", "double_tap")
    assert fast >= 20  # the function did take the common case
    with get_db(app).session() as session:
        profile = ctx.profiles.get(session)
        for card_id, _, _ in made:
            taps = session.scalars(select(Tap).where(Tap.card_id == card_id).order_by(Tap.tapped_at)).all()
            rides = [t for t in taps if t.outcome != "denied"]
            expected = {r.tap_id: r.fare for r in rate(profile, "standard",
                                                       [TapIn(t.tap_key, t.tapped_at.astimezone(dt.UTC),
                                                              t.vehicle_id, t.route_id) for t in rides])}
            assert {t.tap_key: t.fare for t in rides} == expected


def test_the_function_declines_what_the_engine_must_rate(app: Flask) -> None:
    if get_db(app).engine.dialect.name != "postgresql":
        pytest.skip("the one-round-trip function is PostgreSQL's")
    _, number, _ = make_card(app, balance=100000)
    dev = make_device(app)
    assert _fast(app, tap_request(dev.device_id, 1, number, 0)) is not None
    assert _fast(app, tap_request(dev.device_id, 1, number, 0)) is None  # a repeat: the stored result
    assert _fast(app, tap_request(dev.device_id, 2, number, 1)) is None  # within 2 s of a ride: maybe a double tap
    assert _fast(app, tap_request(dev.device_id, 3, number, -600)) is None  # before a ride: a late tap
    assert _fast(app, tap_request(dev.device_id, 4, "1" * 19, 900)) is None  # unknown card
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Tap)) == 1  # declining wrote nothing


def test_an_online_tap_is_one_round_trip_on_postgresql(app: Flask, tmp_path: Path) -> None:
    """libpq's own trace of the connection: exactly one Sync (one round trip) for the whole tap."""
    if get_db(app).engine.dialect.name != "postgresql":
        pytest.skip("the one-round-trip function is PostgreSQL's")
    card_id, number, _ = make_card(app, balance=50000)
    dev = make_device(app)
    assert _fast(app, tap_request(dev.device_id, 1, number, 0)) is not None  # connects, caches the prices
    fast = get_ticketing(app).fast
    assert fast is not None
    pgconn = fast.connection().pgconn
    trace = tmp_path / "libpq.trace"
    with trace.open("w") as out:
        pgconn.trace(out.fileno())
        try:
            result = _fast(app, tap_request(dev.device_id, 2, number, 900))
        finally:
            pgconn.untrace()
    assert result is not None and (result.decision, result.fare, result.balance) == ("accept", 12000, 26000)
    sent = [line.split("\t")[3].split(" ")[0] for line in trace.read_text().splitlines() if "\tF\t" in line]
    assert sent.count("Sync") + sent.count("Query") == 1, sent
    assert balance(app, card_id) == 26000
