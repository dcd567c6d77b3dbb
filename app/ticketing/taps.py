"""Tap processing: dedupe, rate, charge and correct, all in the caller's one transaction.

A tap is keyed by ``(device_id, device_seq)`` (its tap key). The card's ledger account is row-locked,
the card's taps of the rating window are re-rated with the new one in tap-time order, the new tap is
charged at most once (``charge_key`` is unique), and earlier taps whose price the late tap changed get
adjustment postings. Online taps need the balance; offline taps may take it to ``-debt_limit`` fares.

The common case is three statements and no ORM objects: (1) find the card, lock its account and look
for the tap key; (2) read the card's window (taps and passes) with a snapshot taken after the lock, so
a concurrent tap on the same card that committed while this one waited is seen; (3) write. On
PostgreSQL the write is one statement (a data-modifying CTE inserting the tap, moving the balance
under its floor condition, and inserting the transaction and both entries); elsewhere it is the
ledger service's ordinary postings. Both, and the adjustment postings, are ``app.ticketing.ledger``'s: this
module decides what to charge, the ledger writes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, literal, null, or_, select, type_coerce, union_all, update
from sqlalchemy.orm import Session

from app.models import Card, CardPass, LedgerAccount, LedgerEntry, LedgerTransaction, Tap
from app.ticketing import denylist, ledger
from app.ticketing.cardnumbers import number_hash
from app.ticketing.context import Ticketing
from app.ticketing.errors import Conflict
from app.ticketing.fares import FareProfile, PassIn, RatedTap, TapIn, rate, rating_window
from app.ticketing.fastpath import Nonce

__all__ = ["TapRequest", "TapResult", "process_online_fast", "process_tap", "result_of"]


@dataclass(frozen=True)
class TapRequest:
    device_id: str
    device_seq: int
    card_number: str
    vehicle_id: str
    route_id: str | None
    tapped_at: dt.datetime
    offline: bool
    body_hash: str
    card_hash: str | None = None  # number_hash of the card, when the caller already computed it
    tap_key: str = field(init=False, compare=False)  # device_id:device_seq, read many times per tap by a batch

    def __post_init__(self) -> None:
        object.__setattr__(self, "tap_key", f"{self.device_id}:{self.device_seq}")  # frozen: set once, here


@dataclass(frozen=True)
class TapResult:
    tap_key: str
    device_seq: int
    decision: str  # accept | deny
    outcome: str
    reason: str | None
    fare: int
    balance: int | None
    duplicate: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"tap_key": self.tap_key, "device_seq": self.device_seq, "decision": self.decision,
                "outcome": self.outcome, "reason": self.reason, "fare": self.fare, "balance": self.balance,
                "duplicate": self.duplicate}


@dataclass(frozen=True)
class _CardState:
    """The card and its locked account, as one row of statement (1)."""

    card_id: int
    status: str
    category: str
    masked: str
    account_id: int
    balance: int
    known_tap: bool  # the tap key was already stored when the statement started


@dataclass(frozen=True)
class _Outcome:
    outcome: str
    reason: str | None
    fare: int
    product_id: str | None = None
    uncollected: int = 0


def result_of(tap: Tap, *, duplicate: bool) -> TapResult:
    decision = "deny" if tap.outcome == "denied" else "accept"
    return TapResult(tap.tap_key, tap.device_seq, decision, tap.outcome, tap.reason, tap.fare, tap.balance_after,
                     duplicate)


def _result(req: TapRequest, o: _Outcome, balance: int | None) -> TapResult:
    return TapResult(req.tap_key, req.device_seq, "deny" if o.outcome == "denied" else "accept", o.outcome,
                     o.reason, o.fare, balance)


def process_online_fast(ctx: Ticketing, profile: FareProfile, req: TapRequest,
                        nonce: Nonce | None = None) -> TapResult | None:
    """The online tap in one autocommitted round trip (``app.ticketing.fastpath``); ``None`` when the tap needs
    the general path (nothing was written then). With ``nonce``, the request's nonce is claimed with the tap's
    group (``FastPath.apply``: ``Unauthorized`` when it was taken)."""
    if ctx.fast is None or req.offline:
        if nonce is not None:  # the caller would take the request's nonce as claimed
            raise ValueError("the fast path takes online taps on PostgreSQL")
        return None
    got = ctx.fast.apply(profile, tap_key=req.tap_key, device_id=req.device_id, device_seq=req.device_seq,
                         body_hash=req.body_hash, card_hash=req.card_hash or number_hash(ctx.hash_key, req.card_number),
                         vehicle_id=req.vehicle_id, route_id=req.route_id, tapped_at=req.tapped_at, nonce=nonce)
    if got is None:
        return None
    outcome, reason, fare, balance, product = got
    return _result(req, _Outcome(outcome, reason, fare, product), balance)


def process_tap(session: Session, ctx: Ticketing, req: TapRequest) -> TapResult:
    """Apply one tap; a repeat of a known tap key returns the stored result (409 when its body differs)."""
    state = _lock_card(session, req.card_hash or number_hash(ctx.hash_key, req.card_number), req.tap_key)
    if state is None or state.known_tap:
        existing = session.scalar(select(Tap).where(Tap.tap_key == req.tap_key))
        if existing is not None:
            if existing.body_hash != req.body_hash:
                raise Conflict(f"tap {req.tap_key} was already received with a different body")
            return result_of(existing, duplicate=True)
    if state is None:
        return _record(session, req, None, _Outcome("denied", "unknown_card", 0), None)
    if state.status != "active":
        return _record(session, req, state, _Outcome("denied", state.status, 0), state.balance)
    profile = ctx.profiles.get(session)
    prior, passes = _window(session, profile, state.card_id, req.tapped_at)
    new = TapIn(req.tap_key, req.tapped_at, req.vehicle_id, req.route_id)
    rated = {r.tap_id: r for r in rate(profile, state.category,
                                       [*(TapIn(p.tap_key, p.at, p.vehicle_id, p.route_id) for p in prior), new],
                                       passes)}
    mine = rated[req.tap_key]
    if mine.outcome == "denied":
        return _record(session, req, state, _Outcome("denied", mine.reason, 0, mine.product_id), state.balance)
    if not req.offline and mine.fare > state.balance:
        return _record(session, req, state, _Outcome("denied", "insufficient_balance", 0, mine.product_id),
                       state.balance)
    base = profile.leg_price(state.category, req.route_id, req.tapped_at)[1]
    floor = -profile.config.debt_limit_fares * base if req.offline else 0
    charge = min(mine.fare, max(0, state.balance - floor))
    uncollected = mine.fare - charge
    outcome = _Outcome(mine.outcome, "debt_limit" if uncollected else mine.reason, mine.fare, mine.product_id,
                       uncollected)
    tap_id, balance = _charge(session, ctx, req, state, outcome, charge, floor)
    if not _is_last(new, prior):  # rating is causal: a tap after all others cannot change their prices
        _correct(session, ctx, state.account_id, prior, rated)
        balance = ledger.card_account(session, state.card_id).balance
        session.execute(update(Tap).where(Tap.id == tap_id).values(balance_after=balance)
                        .execution_options(synchronize_session=False))
    if balance < 0:
        denylist.set_denied(session, session.get_one(Card, state.card_id), True, "negative_balance")
    return _result(req, outcome, balance)


def _lock_card(session: Session, hashed: str, tap_key: str) -> _CardState | None:
    known = select(Tap.id).where(Tap.tap_key == tap_key).scalar_subquery()
    stmt = (select(Card.id, Card.status, Card.rider_category, Card.masked, LedgerAccount.id, LedgerAccount.balance,
                   known)
            .join(LedgerAccount, LedgerAccount.card_id == Card.id).where(Card.number_hash == hashed)
            .with_for_update(of=LedgerAccount))
    row = session.execute(stmt).first()
    if row is None:
        return None
    return _CardState(row[0], row[1], row[2], row[3], row[4], int(row[5]), row[6] is not None)


def _is_last(new: TapIn, prior: list[ledger.PriorRide]) -> bool:
    return all((p.at, p.tap_key) < (new.at, new.tap_id) for p in prior)


def _window(session: Session, profile: FareProfile, card_id: int,
            at: dt.datetime) -> tuple[list[ledger.PriorRide], list[PassIn]]:
    """The card's rides and passes of the rating window, in one statement."""
    start, end = rating_window(profile, at)
    rides = or_(Tap.offline.is_(True), Tap.outcome.in_(("accepted", "double_tap")))
    no_time = type_coerce(null(), Tap.tapped_at.type)
    taps = select(literal("t").label("kind"), Tap.id, Tap.tap_key, Tap.tapped_at, no_time.label("until"),
                  Tap.vehicle_id, Tap.route_id, Tap.uncollected).where(
        Tap.card_id == card_id, Tap.tapped_at >= start, Tap.tapped_at < end, rides)
    passes = select(literal("p"), CardPass.id, CardPass.fare_product_id, CardPass.valid_from, CardPass.valid_to,
                    null(), null(), null()).where(
        CardPass.card_id == card_id, CardPass.valid_to > start, CardPass.valid_from < end)
    rows: list[Any] = list(session.execute(union_all(taps, passes)))
    prior = [ledger.PriorRide(r[1], r[2], _utc(r[3]), r[5], r[6], int(r[7])) for r in rows if r[0] == "t"]
    return prior, [PassIn(r[2], _utc(r[3]), _utc(r[4])) for r in rows if r[0] == "p"]


def _utc(value: dt.datetime | str) -> dt.datetime:
    """SQLite returns naive datetimes (or text, through a UNION); every stored time is UTC."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _tap_values(req: TapRequest, state: _CardState | None, o: _Outcome, balance: int | None) -> dict[str, Any]:
    return {"tap_key": req.tap_key, "device_id": req.device_id, "device_seq": req.device_seq,
            "body_hash": req.body_hash, "card_id": state.card_id if state else None,
            "card_masked": state.masked if state else None, "vehicle_id": req.vehicle_id, "route_id": req.route_id,
            "tapped_at": req.tapped_at, "offline": req.offline, "outcome": o.outcome, "reason": o.reason,
            "fare": o.fare, "uncollected": o.uncollected, "product_id": o.product_id, "balance_after": balance}


def _record(session: Session, req: TapRequest, state: _CardState | None, o: _Outcome,
            balance: int | None) -> TapResult:
    session.execute(insert(Tap).values(_tap_values(req, state, o, balance)))
    return _result(req, o, balance)


def _charge(session: Session, ctx: Ticketing, req: TapRequest, state: _CardState, o: _Outcome, charge: int,
            floor: int) -> tuple[int, int]:
    """Insert the tap and post its fare; returns the tap's id and the card's new balance."""
    balance = state.balance - charge
    values = _tap_values(req, state, o, balance)
    if charge == 0:
        return int(session.execute(insert(Tap).values(values).returning(Tap.id)).scalar_one()), balance
    revenue = ledger.system_account(session, "revenue", ctx.accounts)
    return ledger.charge_tap(session, values, account_id=state.account_id, revenue_id=revenue, charge=charge,
                             floor=floor)


def _correct(session: Session, ctx: Ticketing, account_id: int, prior: list[ledger.PriorRide],
             rated: dict[str, RatedTap]) -> None:
    """Adjustment postings for earlier taps whose price changed; history itself is never edited."""
    if not prior:
        return
    rows = session.execute(
        select(LedgerTransaction.tap_id, func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(LedgerEntry.account_id == account_id, LedgerTransaction.tap_id.in_([t.id for t in prior]))
        .group_by(LedgerTransaction.tap_id)).all()
    paid = {tap_id: int(amount) for tap_id, amount in rows}
    revenue = None
    for tap in prior:
        tap.paid = paid.get(tap.id, 0)
        diff = tap.adjustment(rated[tap.tap_key].fare)
        if diff == 0:
            continue
        revenue = revenue or ledger.system_account(session, "revenue", ctx.accounts)
        count = session.scalar(select(func.count()).select_from(LedgerTransaction)
                               .where(LedgerTransaction.tap_id == tap.id)) or 0
        ledger.post(session, "fare_adjustment", [ledger.Leg(account_id, -diff, card=True), ledger.Leg(revenue, diff)],
                    charge_key=ledger.adjustment_key(tap.tap_key, count), tap_id=tap.id,
                    reason="re-rated after a late tap")
