"""Group commit of online taps: the coalescer, the ``qala_online_taps`` group function, and pipelined nonces."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import BigInteger, String, func, select

from app import get_db, get_redis
from app.models import Card, LedgerAccount, Tap
from app.ticketing import cards, devices, ledger
from app.ticketing.batches import _in
from app.ticketing.cardnumbers import number_hash
from app.ticketing.coalesce import Coalescer
from app.ticketing.context import get_ticketing
from app.ticketing.fares import rating_window
from app.ticketing.fastpath import FlatPrices
from tests.fixtures.tickets import T0, make_card, make_device, signed

pytestmark = pytest.mark.usefixtures("ledger_checked")  # every test leaves the ledger balanced


def _wait_until(check: Any, what: str) -> None:
    for _ in range(500):
        if check():
            return
        time.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


def test_the_coalescer_groups_what_arrives_while_a_group_runs() -> None:
    release = threading.Event()
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            release.wait(10)
        return [x * 10 for x in items]

    group: Coalescer[int, int] = Coalescer(run)
    with ThreadPoolExecutor(max_workers=6) as pool:
        first = pool.submit(group.submit, 1)
        _wait_until(lambda: calls, "the first group")
        rest = [pool.submit(group.submit, x) for x in range(2, 7)]
        _wait_until(lambda: len(group._waiting) == 5, "five waiting items")
        release.set()
        assert first.result() == 10
        assert sorted(f.result() for f in rest) == [20, 30, 40, 50, 60]
    assert calls[0] == [1] and sorted(calls[1]) == [2, 3, 4, 5, 6]  # one call for the five that waited
    assert (group.groups, group.items) == (2, 6)


def test_a_failing_group_fails_each_of_its_submitters_and_the_next_group_runs() -> None:
    fail = threading.Event()
    fail.set()

    def run(items: list[str]) -> list[str]:
        if fail.is_set():
            raise RuntimeError("database gone")
        return [s.upper() for s in items]

    group: Coalescer[str, str] = Coalescer(run)
    with pytest.raises(RuntimeError, match="database gone"):
        group.submit("a")
    fail.clear()
    assert group.submit("b") == "B"


def test_the_coalescer_caps_a_group() -> None:
    release = threading.Event()
    sizes: list[int] = []

    def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        if len(sizes) == 1:
            release.wait(10)
        return items

    group: Coalescer[int, int] = Coalescer(run, max_items=3)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(group.submit, 0)]
        _wait_until(lambda: sizes, "the first group")
        futures += [pool.submit(group.submit, x) for x in range(1, 8)]
        _wait_until(lambda: len(group._waiting) == 7, "seven waiting items")
        release.set()
        assert sorted(f.result() for f in futures) == list(range(8))
    assert sizes[0] == 1 and max(sizes) == 3 and sum(sizes) == 8


def _group(app: Flask, taps: list[dict[str, Any]]) -> list[Any]:
    """``taps`` through ``qala_online_taps`` in one call (one group), with the profile's flat prices."""
    ctx = get_ticketing(app)
    assert ctx.fast is not None
    with get_db(app).session() as session:
        profile = ctx.profiles.get(session)
        ledger.system_account(session, "revenue")
        session.commit()
    items = []
    for tap in taps:
        at = T0 + dt.timedelta(seconds=tap.pop("sec"))
        start, end = rating_window(profile, at)
        prices = ctx.fast.prices(profile, "R12", at)
        assert isinstance(prices, FlatPrices)
        items.append(({"b": "h" * 64, "v": "bus-1", "r": "R12", "t": at.isoformat(), "ws": start.isoformat(),
                       "we": end.isoformat(), "dt": profile.config.double_tap_s, **tap}, prices, None))
    return ctx.fast._apply_group(items)


def _pg(app: Flask) -> None:
    if get_db(app).engine.dialect.name != "postgresql":
        pytest.skip("the group function is PostgreSQL's (SQLite takes the general path)")


def test_a_group_applies_each_tap_by_the_single_tap_rules(app: Flask) -> None:
    _pg(app)
    ctx = get_ticketing(app)
    rich_id, rich, _ = make_card(app, balance=50000)
    poor_id, poor, _ = make_card(app, balance=5000)
    blocked_id, blocked, _ = make_card(app, balance=50000)
    with get_db(app).session() as session:
        cards.block(session, session.get_one(Card, blocked_id), None, "lost")
        session.commit()
    dev = make_device(app).device_id
    h = ctx.hash_key

    def tap(seq: int, number: str, sec: int) -> dict[str, Any]:
        return {"k": f"{dev}:{seq}", "d": dev, "s": seq, "c": number_hash(h, number), "sec": sec}

    out = _group(app, [tap(1, rich, 0), tap(2, poor, 0), tap(3, blocked, 0), tap(4, "9" * 19, 0),
                       tap(5, rich, 1),  # within 2 s of tap 1 in the same group: left to the engine
                       tap(6, rich, 600)])  # later in the same group: sees tap 1's charge
    assert out[0] == ("accepted", None, 12000, 38000, "ride")
    assert out[1] == ("denied", "insufficient_balance", 0, 5000, "ride")
    assert out[2] is None and out[3] is None and out[4] is None
    assert out[5] == ("accepted", None, 12000, 26000, "ride")
    with get_db(app).session() as session:
        stored = set(session.scalars(select(Tap.tap_key)))
        assert stored == {f"{dev}:1", f"{dev}:2", f"{dev}:6"}  # declined taps wrote nothing
        assert ledger.card_account(session, rich_id).balance == 26000
        assert ledger.card_account(session, poor_id).balance == 5000
        assert ledger.card_account(session, blocked_id).balance == 50000


def test_a_tap_whose_key_is_taken_fails_alone(app: Flask) -> None:
    """A unique conflict on one tap (here a device sequence stored under another key) leaves the others applied."""
    _pg(app)
    ctx = get_ticketing(app)
    card_id, number, _ = make_card(app, balance=50000)
    dev = make_device(app).device_id
    c = number_hash(ctx.hash_key, number)
    assert _group(app, [{"k": f"{dev}:1", "d": dev, "s": 1, "c": c, "sec": 0}])[0] is not None
    out = _group(app, [{"k": "other-key", "d": dev, "s": 1, "c": c, "sec": 600},
                       {"k": f"{dev}:2", "d": dev, "s": 2, "c": c, "sec": 1200}])
    assert out[0] is None
    assert out[1] == ("accepted", None, 12000, 26000, "ride")
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Tap)) == 2
        assert ledger.card_account(session, card_id).balance == 26000


def test_a_card_locked_elsewhere_does_not_hold_up_its_group(app: Flask) -> None:
    """A card an offline batch (here another connection) has locked is declined at once; the rest are applied."""
    _pg(app)
    import psycopg

    ctx = get_ticketing(app)
    busy_id, busy, _ = make_card(app, balance=50000)
    free_id, free, _ = make_card(app, balance=50000)
    dev = make_device(app).device_id
    assert ctx.fast is not None
    other = psycopg.connect(ctx.fast.conninfo)
    try:
        other.execute("SELECT 1 FROM ledger_accounts WHERE card_id = %s FOR UPDATE", (busy_id,))
        out = _group(app, [{"k": f"{dev}:1", "d": dev, "s": 1, "c": number_hash(ctx.hash_key, busy), "sec": 0},
                           {"k": f"{dev}:2", "d": dev, "s": 2, "c": number_hash(ctx.hash_key, free), "sec": 0}])
    finally:
        other.rollback()
        other.close()
    assert out[0] is None
    assert out[1] == ("accepted", None, 12000, 38000, "ride")
    with get_db(app).session() as session:
        assert ledger.card_account(session, busy_id).balance == 50000
        assert ledger.card_account(session, free_id).balance == 38000


def test_a_failed_group_sends_its_taps_to_the_general_path(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    _pg(app)
    ctx = get_ticketing(app)
    assert ctx.fast is not None
    card_id, number, _ = make_card(app, balance=50000)
    creds = make_device(app)

    def broken(taps: list[Any]) -> list[Any]:
        raise RuntimeError("connection lost mid-group")

    monkeypatch.setattr(ctx.fast.group, "_run", broken)
    body = {"seq": 1, "card": number, "vehicle_id": "bus-1", "route_id": "R12", "tapped_at": T0.isoformat()}
    response = signed(app.test_client(), creds, "POST", "/api/v1/validators/taps", body)
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["decision"], response.get_json()["balance"]) == ("accept", 38000)
    with get_db(app).session() as session:
        assert ledger.card_account(session, card_id).balance == 38000


def test_concurrent_online_taps_on_many_cards_are_grouped_and_each_charged_once(app: Flask) -> None:
    _pg(app)
    ctx = get_ticketing(app)
    assert ctx.fast is not None
    made = [make_card(app, balance=3 * 12000) for _ in range(6)]
    creds = make_device(app)

    def one(seq: int) -> dict[str, Any]:
        _, number, _ = made[seq % len(made)]
        body = {"seq": seq, "card": number, "vehicle_id": f"bus-{seq}", "route_id": "R12",
                "tapped_at": (T0 + dt.timedelta(seconds=seq * 60)).isoformat()}
        response = signed(app.test_client(), creds, "POST", "/api/v1/validators/taps", body)
        assert response.status_code == 200, response.get_json()
        payload: dict[str, Any] = response.get_json()
        return payload

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(1, 49)))  # 8 taps per card, 3 fares each
    assert [r["decision"] for r in results].count("accept") == 18
    with get_db(app).session() as session:
        for card_id, _, _ in made:
            assert ledger.card_account(session, card_id).balance == 0
        assert session.scalar(select(func.count()).select_from(Tap)) == 48


def test_nonce_claims_of_one_group_are_first_come(app: Flask) -> None:
    ctx = get_ticketing(app)
    claims = ctx.nonce_claims(get_redis(app))
    now = int(time.time())
    refused = claims.claim_all([("qala-test:n1", now), ("qala-test:n2", now), ("qala-test:n1", now)])
    assert [r.code if r else None for r in refused] == [None, None, "replayed_nonce"]
    again = claims.claim(("qala-test:n2", now))
    assert again is not None and again.code == "replayed_nonce"
    assert claims.claim(("qala-test:n3", now)) is None


def test_a_nonce_replayed_concurrently_is_accepted_once(app: Flask) -> None:
    _, number, _ = make_card(app, balance=100000)
    creds = make_device(app)
    body = {"seq": 1, "card": number, "vehicle_id": "bus-1", "route_id": "R12", "tapped_at": T0.isoformat()}
    raw = json.dumps(body).encode()
    headers = devices.signing_headers(creds, "POST", "/api/v1/validators/taps", raw, nonce="same-nonce-everywhere")

    def one(_: int) -> int:
        response = app.test_client().post("/api/v1/validators/taps", data=raw, headers=headers,
                                          content_type="application/json")
        if response.status_code == 401:
            assert response.get_json()["error"]["code"] == "replayed_nonce"
        return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(one, range(8)))
    assert sorted(codes) == [200] + [401] * 7


def test_the_wsgi_fast_taps_answer_like_the_view_and_hand_everything_else_to_flask(app: Flask) -> None:
    """A signed malformed body that FastTaps verified (taking its nonce) still gets Flask's 400, not a replay 401;
    an Idempotency-Key tap goes to Flask; a fast answer has the view's shape."""
    from app.api.validators import FastTaps

    layer = app.wsgi_app  # FastTaps sits in front of Flask, behind the body limit (app.api.inputs.BodyLimit)
    while not isinstance(layer, FastTaps) and hasattr(layer, "next"):
        layer = layer.next
    assert isinstance(layer, FastTaps)
    _, number, _ = make_card(app, balance=50000)
    creds = make_device(app)
    client = app.test_client()
    taps = "/api/v1/validators/taps"
    good = {"seq": 1, "card": number, "vehicle_id": "bus-1", "route_id": "R12", "tapped_at": T0.isoformat()}
    first = signed(client, creds, "POST", taps, good)
    assert first.status_code == 200 and first.content_type == "application/json"
    assert first.get_json() == {"tap_key": f"{creds.device_id}:1", "device_seq": 1, "decision": "accept",
                                "outcome": "accepted", "reason": None, "fare": 12000, "balance": 38000,
                                "duplicate": False}
    bad = signed(client, creds, "POST", taps, {**good, "seq": "two"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "seq", bad.get_json()
    unsigned = client.post(taps, json=good)
    assert unsigned.status_code == 401 and unsigned.get_json()["error"]["code"] == "missing_signature"
    repeat = signed(client, creds, "POST", taps, good)  # declined by the fast path: the view's stored result
    assert repeat.status_code == 200 and repeat.get_json()["duplicate"] is True
    keyed = signed(client, creds, "POST", taps, {**good, "seq": 2, "tapped_at": (T0 + dt.timedelta(minutes=9))
                                                 .isoformat()}, headers={"Idempotency-Key": "k-1"})
    again = signed(client, creds, "POST", taps, {**good, "seq": 2, "tapped_at": (T0 + dt.timedelta(minutes=9))
                                                 .isoformat()}, headers={"Idempotency-Key": "k-1"})
    assert keyed.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Tap)) == 2


def test_batch_transactions_take_free_slots_first_and_wait_when_all_are_taken(app: Flask) -> None:
    _pg(app)
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from app.ticketing.batches import BATCH_SLOT_LOCK, _take_batch_slot

    db = get_db(app)
    holders = [db.session() for _ in range(2)]
    try:
        for session in holders:
            _take_batch_slot(session, 2)  # each gets its own slot at once (a random pick could wait on a held one)
        held = {int(k) - BATCH_SLOT_LOCK for k in holders[0].scalars(text(
            "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid >= :base "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
            {"base": BATCH_SLOT_LOCK})}
        assert held == {0, 1}
        with db.session() as third:
            third.execute(text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(OperationalError):
                _take_batch_slot(third, 2)  # both taken: it waits
        holders[0].rollback()
        with db.session() as fourth:
            _take_batch_slot(fourth, 2)  # the freed slot
            fourth.rollback()
    finally:
        for session in holders:
            session.rollback()
            session.close()


def test_batch_set_lookups_find_exactly_the_values_given_whatever_their_characters(app: Flask) -> None:
    """The batch's ``= ANY(array)`` lookups (PostgreSQL: the array sent as its text, strings quoted and escaped;
    SQLite: ``IN``) match every value as it is, quotes, backslashes, commas, braces and all."""
    codes = ['quote"d', "back\\slash", "com,ma", "{brace}", " spaced ", "NULL", "", "plain:1"]
    with get_db(app).session() as session:
        accounts = [LedgerAccount(code=f"lookup-{c}", kind="adjustment") for c in codes]
        decoy = LedgerAccount(code="lookup-other", kind="adjustment")
        session.add_all([*accounts, decoy])
        session.flush()
        wanted = [f"lookup-{c}" for c in codes]
        found = session.scalars(select(LedgerAccount.code).where(_in(session, LedgerAccount.code, wanted, String)))
        assert sorted(found) == sorted(wanted)
        ids = [a.id for a in accounts[:3]]
        by_id = session.scalars(select(LedgerAccount.id).where(_in(session, LedgerAccount.id, ids, BigInteger)))
        assert sorted(by_id) == sorted(ids)
        none = session.scalars(select(LedgerAccount.id).where(_in(session, LedgerAccount.id, [], BigInteger)))
        assert list(none) == []
        session.rollback()
