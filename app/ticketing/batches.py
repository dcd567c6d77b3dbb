"""Offline batches, applied set-wise in the caller's one transaction; sequence gaps are reported.

Why set-wise: one commit per tap made a validator's backlog crawl (63 taps/s). Here a batch costs a fixed
handful of statements whatever its size:

1. lock the accounts of every card in the batch, in card-id order (the order every other writer uses), so
   concurrent batches and online taps cannot deadlock and nobody else charges these cards meanwhile;
2. look up which tap keys are already stored — *after* the locks, so a concurrent copy of the same tap that
   committed while this batch waited is seen (same key, same card ⇒ same lock) — and return their stored
   results; a key stored with another body is a ``conflict`` result;
3. read the card windows (rides and passes) and what each earlier ride has been charged so far;
4. rate each card's window once with the fare engine, old and new taps together in tap-time order, so the
   result depends only on the set of taps, never on arrival order; new taps get their final fare, earlier
   taps whose price changed get an adjustment entry (history is never edited);
5. write taps, transactions and entries in bulk (PostgreSQL: ids drawn from the sequences, then ``COPY``;
   SQLite: plain inserts) and move each card's running balance once — ``app.ticketing.ledger.write_batch``,
   like every other ledger write; this module plans the writes, the ledger makes them.

A key repeated across two concurrent batches on *different* cards (a forged or corrupted copy) makes one of
them fail on the unique key; the caller retries the whole batch, which then reports the conflict.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, String, any_, cast, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from app.models import Card, CardPass, Device, LedgerAccount, LedgerEntry, LedgerTransaction, Tap
from app.ticketing import denylist, ledger
from app.ticketing.cardnumbers import number_hash
from app.ticketing.context import Ticketing
from app.ticketing.fares import FareProfile, PassIn, TapIn, rate, rating_window
from app.ticketing.taps import TapRequest, TapResult, result_of

__all__ = ["apply_batch", "sequence_gaps"]

MAX_GAPS = 100


def sequence_gaps(session: Session, device_id: str) -> list[list[int]]:
    """Missing ``[first, last]`` ranges of the device's sequence numbers (1-based), oldest first (at most
    ``MAX_GAPS``); raises the device's watermark to just before the first gap (the caller commits).

    Only taps above the watermark are scanned: 1..watermark have all arrived and taps are never deleted, so a
    validator uploading in order costs about one batch of rows here however long its history (scanning all of it
    cost 175 ms per batch at 250,000 taps). What this transaction sees present stays present, so raising the
    watermark from it is safe under concurrent batches (it only ever moves up)."""
    watermark = int(session.scalar(select(Device.seq_watermark).where(Device.id == device_id)) or 0)
    prev = func.lag(Tap.device_seq).over(order_by=Tap.device_seq)
    inner = (select(Tap.device_seq.label("seq"), prev.label("prev"))
             .where(Tap.device_id == device_id, Tap.device_seq > watermark).subquery())
    rows = session.execute(select(inner.c.prev, inner.c.seq)
                           .where(inner.c.seq - func.coalesce(inner.c.prev, watermark) > 1)
                           .order_by(inner.c.seq).limit(MAX_GAPS)).all()
    gaps = [[int(p if p is not None else watermark) + 1, int(s) - 1] for p, s in rows]
    reached = gaps[0][0] - 1 if gaps else int(session.scalar(
        select(func.max(Tap.device_seq)).where(Tap.device_id == device_id)) or 0)
    if reached > watermark:
        session.execute(update(Device).where(Device.id == device_id, Device.seq_watermark < reached)
                        .values(seq_watermark=reached))
    return gaps


@dataclass
class _Card:
    card_id: int
    status: str
    category: str
    masked: str
    number_hash: str
    account_id: int
    balance: int


@dataclass
class _NewTap:
    req: TapRequest
    card: _Card | None
    outcome: str
    reason: str | None
    fare: int = 0
    charge: int = 0
    uncollected: int = 0
    product_id: str | None = None
    balance_after: int | None = None

    def result(self) -> TapResult:
        decision = "deny" if self.outcome == "denied" else "accept"
        return TapResult(self.req.tap_key, self.req.device_seq, decision, self.outcome, self.reason, self.fare,
                         self.balance_after)


@dataclass
class _Writes:
    taps: list[_NewTap] = field(default_factory=list)
    postings: list[ledger.Posting] = field(default_factory=list)  # new_tap indexes ``taps``
    deltas: dict[int, int] = field(default_factory=lambda: defaultdict(int))


def _utc(value: dt.datetime | str) -> dt.datetime:
    if type(value) is dt.datetime and value.tzinfo is not None:  # PostgreSQL's timestamptz: the common case
        return value
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _in(session: Session, column: InstrumentedAttribute[Any], values: Sequence[Any],
        kind: type[String] | type[BigInteger]) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``= ANY(array)``: one parameter instead of thousands to render, sent
    as the array's text (psycopg's list adapter runs a regular expression per element: 0.84 ms for a chunk's
    2,500 earlier-ride ids, against 0.19 ms)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(cast(literal(ledger.array_literal(values, kind)), ARRAY(kind())))
    return column.in_(list(values))


OUT_OF_RANGE = "tap_time_out_of_range"  # the reason of a tap dated outside the batch's window
BATCH_SLOT_LOCK = 7_302_000  # pg_advisory_xact_lock ids BATCH_SLOT_LOCK + slot: bounded batch concurrency


def apply_batch(session: Session, ctx: Ticketing, requests: Sequence[TapRequest], *,
                window: tuple[dt.datetime, dt.datetime] | None = None) -> list[dict[str, Any]]:
    """Apply a batch of taps in ``session``'s transaction (the caller commits); one result per request.

    A tap dated outside ``window`` (first, last) — older than a validator can have held it, or in the future — is
    stored denied (``tap_time_out_of_range``) and charged nothing: recorded, so its sequence number counts as
    arrived and a repeat returns the same result.

    On PostgreSQL at most ``ctx.batch_slots`` batch transactions run at once in the whole service (each first
    takes one of that many transaction-scoped advisory locks, before any card lock, so the wait cannot
    deadlock): a backlog of offline taps then uses a bounded share of the database's CPU and leaves the rest
    to online taps, which never wait for a slot."""
    if ctx.batch_slots > 0 and session.get_bind().dialect.name == "postgresql":
        _take_batch_slot(session, ctx.batch_slots)
    hashes = {r.tap_key: r.card_hash or number_hash(ctx.hash_key, r.card_number) for r in requests}
    first: dict[str, TapRequest] = {}
    for req in requests:
        first.setdefault(req.tap_key, req)
    cards = _lock_cards(session, sorted(set(hashes.values())))
    stored = {t.tap_key: t for t in session.scalars(select(Tap).where(_in(session, Tap.tap_key, list(first), String)))}
    results: dict[str, dict[str, Any]] = {}
    fresh: list[TapRequest] = []
    for key, req in first.items():
        if key in stored:
            results[key] = _stored_result(stored[key], req)
        else:
            fresh.append(req)
    if fresh:
        writes = _rate_and_plan(session, ctx, fresh, cards, hashes, window)
        _write(session, ctx, writes)
        for new in writes.taps:
            results[new.req.tap_key] = new.result().as_json()
        _update_deny_list(session, writes, cards)
    return [results[r.tap_key] if r.body_hash == first[r.tap_key].body_hash else _conflict(r) for r in requests]


def _take_batch_slot(session: Session, slots: int) -> None:
    """A free slot if there is one (tried in order), else wait for a random one. (Waiting on a random slot
    straight away put two of four concurrent batches on the same slot while another stood free.)"""
    free = session.scalar(text("SELECT s FROM generate_series(0, :n - 1) AS s "
                               "WHERE pg_try_advisory_xact_lock(:base + s) LIMIT 1"),
                          {"n": slots, "base": BATCH_SLOT_LOCK})
    if free is None:
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"),
                        {"id": BATCH_SLOT_LOCK + random.randrange(slots)})


def _conflict(req: TapRequest) -> dict[str, Any]:
    return {"tap_key": req.tap_key, "device_seq": req.device_seq, "decision": "conflict",
            "reason": f"tap {req.tap_key} was already received with a different body"}


def _stored_result(tap: Tap, req: TapRequest) -> dict[str, Any]:
    if tap.body_hash != req.body_hash:
        return _conflict(req)
    return result_of(tap, duplicate=True).as_json()


def _lock_cards(session: Session, hashes: list[str]) -> dict[str, _Card]:
    stmt = (select(Card.id, Card.status, Card.rider_category, Card.masked, Card.number_hash, LedgerAccount.id,
                   LedgerAccount.balance)
            .join(LedgerAccount, LedgerAccount.card_id == Card.id).where(_in(session, Card.number_hash, hashes, String))
            .order_by(Card.id).with_for_update(of=LedgerAccount))
    rows = session.connection().execute(stmt).all()
    return {r[4]: _Card(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6])) for r in rows}


def _windows(session: Session, card_ids: list[int], bounds: list[tuple[dt.datetime, dt.datetime]],
             ) -> tuple[dict[int, list[ledger.PriorRide]], dict[int, list[PassIn]]]:
    """Every ride and pass of these cards in the rating windows the batch touches, and what rides were charged."""
    start, end = min(b[0] for b in bounds), max(b[1] for b in bounds)
    rides: dict[int, list[ledger.PriorRide]] = defaultdict(list)
    by_id: dict[int, ledger.PriorRide] = {}
    ride = Tap.offline.is_(True) | Tap.outcome.in_(("accepted", "double_tap"))
    db = session.connection()  # Core rows: the ORM's per-row work cost more than the rows themselves
    for card_id, tap_id, key, at, vehicle, route, uncollected, fare in db.execute(
            select(Tap.card_id, Tap.id, Tap.tap_key, Tap.tapped_at, Tap.vehicle_id, Tap.route_id, Tap.uncollected,
                   Tap.fare)
            .where(_in(session, Tap.card_id, card_ids, BigInteger), Tap.tapped_at >= start, Tap.tapped_at < end, ride)
            ).all():  # fetchall: iterating the result fetched row by row
        # what the tap was charged when it was stored (every writer stores fare and uncollected so: the charge
        # is their difference, one 'fare' transaction when it is not zero); adjustments come from the ledger
        charged = fare - uncollected
        prior = ledger.PriorRide(tap_id, key, _utc(at), vehicle, route, uncollected, -charged, 1 if charged else 0)
        rides[card_id or 0].append(prior)  # never NULL: selected by card
        by_id[tap_id] = prior
    if by_id:
        adjusted = (select(LedgerTransaction.tap_id, func.count(func.distinct(LedgerTransaction.id)),
                           func.coalesce(func.sum(LedgerEntry.amount), 0))
                    .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
                    .join(LedgerAccount, (LedgerAccount.id == LedgerEntry.account_id) & (LedgerAccount.kind == "card"))
                    .where(text("ledger_transactions.kind = 'fare_adjustment'"),  # inline: the partial index (0016)
                           _in(session, LedgerTransaction.tap_id, list(by_id), BigInteger))
                    .group_by(LedgerTransaction.tap_id))
        for adjusted_id, postings, amount in db.execute(adjusted).all():
            by_id[int(adjusted_id or 0)].postings += int(postings)
            by_id[int(adjusted_id or 0)].paid += int(amount)
    passes: dict[int, list[PassIn]] = defaultdict(list)
    for card_id, product, start_at, end_at in db.execute(
            select(CardPass.card_id, CardPass.fare_product_id, CardPass.valid_from, CardPass.valid_to)
            .where(_in(session, CardPass.card_id, card_ids, BigInteger), CardPass.valid_to > start,
                   CardPass.valid_from < end)).all():
        passes[card_id].append(PassIn(product, _utc(start_at), _utc(end_at)))
    return rides, passes


def _rate_and_plan(session: Session, ctx: Ticketing, fresh: list[TapRequest], cards: dict[str, _Card],
                   hashes: dict[str, str], window: tuple[dt.datetime, dt.datetime] | None = None) -> _Writes:
    profile = ctx.profiles.get(session)
    writes = _Writes()
    groups: dict[tuple[int, tuple[dt.datetime, dt.datetime]], list[TapRequest]] = defaultdict(list)
    for req in sorted(fresh, key=lambda r: (r.tapped_at, r.tap_key)):
        card = cards.get(hashes[req.tap_key])
        if window is not None and not window[0] <= req.tapped_at <= window[1]:
            writes.taps.append(_NewTap(req, card, "denied", OUT_OF_RANGE,
                                       balance_after=card.balance if card else None))
        elif card is None:
            writes.taps.append(_NewTap(req, None, "denied", "unknown_card"))
        elif card.status != "active":
            writes.taps.append(_NewTap(req, card, "denied", card.status, balance_after=card.balance))
        else:
            groups[(card.card_id, rating_window(profile, req.tapped_at))].append(req)
    if not groups:
        return writes
    by_card = {c.card_id: c for c in cards.values()}
    rides, passes = _windows(session, sorted({k[0] for k in groups}), list({k[1] for k in groups}))
    for (card_id, (start, end)), reqs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        prior = [p for p in rides.get(card_id, ()) if start <= p.at < end]
        _rate_group(profile, by_card[card_id], reqs, prior, passes.get(card_id, []), writes)
    return writes


def _rate_group(profile: FareProfile, card: _Card, reqs: list[TapRequest], prior: list[ledger.PriorRide],
                passes: list[PassIn], writes: _Writes) -> None:
    """One card's rating window: final fares for the new taps, adjustments for the earlier ones."""
    taps = [TapIn(p.tap_key, p.at, p.vehicle_id, p.route_id) for p in prior]
    taps += [TapIn(r.tap_key, r.tapped_at, r.vehicle_id, r.route_id) for r in reqs]
    rated = {r.tap_id: r for r in rate(profile, card.category, taps, passes)}
    for req in reqs:  # in tap-time order: the floor check sees the balance the earlier taps left
        mine = rated[req.tap_key]
        if mine.outcome == "denied":
            writes.taps.append(_NewTap(req, card, "denied", mine.reason, 0, product_id=mine.product_id,
                                       balance_after=card.balance))
            continue
        base = profile.leg_price(card.category, req.route_id, req.tapped_at)[1]
        floor = -profile.config.debt_limit_fares * base
        charge = min(mine.fare, max(0, card.balance - floor))
        uncollected = mine.fare - charge
        card.balance -= charge
        new = _NewTap(req, card, mine.outcome, "debt_limit" if uncollected else mine.reason, mine.fare, charge,
                      uncollected, mine.product_id, card.balance)
        writes.taps.append(new)
        if charge:
            writes.postings.append(ledger.Posting("fare", ledger.fare_key(req.tap_key), len(writes.taps) - 1, None,
                                                  None, card.account_id, charge))
            writes.deltas[card.account_id] -= charge
    for p in prior:
        diff = p.adjustment(rated[p.tap_key].fare)
        if diff == 0:
            continue
        writes.postings.append(ledger.Posting("fare_adjustment", ledger.adjustment_key(p.tap_key, p.postings), None,
                                              p.id, "re-rated after a late tap", card.account_id, diff))
        writes.deltas[card.account_id] -= diff
        card.balance -= diff


def _tap_values(new: _NewTap) -> tuple[Any, ...]:
    """The tap's row in ``ledger.TAP_COLUMNS[1:]`` order (the id comes from the sequence)."""
    req, card = new.req, new.card
    return (req.tap_key, req.device_id, req.device_seq, req.body_hash, card.card_id if card else None,
            card.masked if card else None, req.vehicle_id, req.route_id, req.tapped_at, req.offline, new.outcome,
            new.reason, new.fare, new.uncollected, new.product_id, new.balance_after)


def _write(session: Session, ctx: Ticketing, writes: _Writes) -> None:
    revenue = ledger.system_account(session, "revenue", ctx.accounts) if writes.postings else 0
    ledger.write_batch(session, [_tap_values(new) for new in writes.taps], writes.postings, writes.deltas, revenue)


def _update_deny_list(session: Session, writes: _Writes, cards: dict[str, _Card]) -> None:
    """A card the batch left below zero goes on the deny list (until a top-up brings it back)."""
    negative = sorted({c.card_id for c in cards.values() if c.balance < 0 and writes.deltas.get(c.account_id)})
    for card_id in negative:
        denylist.set_denied(session, session.get_one(Card, card_id), True, "negative_balance")
