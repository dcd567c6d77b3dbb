"""Tap processing: dedupe, rate, charge and correct, all in the caller's one transaction.

A tap is keyed by ``(device_id, device_seq)`` (its tap key). The card's ledger account is row-locked,
the card's taps of the rating window are re-rated with the new one in tap-time order, the new tap is
charged at most once (``charge_key`` is unique), and earlier taps whose price the late tap changed get
adjustment postings. Online taps need the balance; offline taps may take it to ``-debt_limit`` fares.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.models import Card, CardPass, LedgerEntry, LedgerTransaction, Tap
from app.ticketing import denylist, ledger
from app.ticketing.cardnumbers import number_hash
from app.ticketing.context import Ticketing
from app.ticketing.errors import Conflict
from app.ticketing.fares import FareProfile, PassIn, RatedTap, TapIn, rate, rating_window

__all__ = ["TapRequest", "TapResult", "process_tap", "result_of"]


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

    @property
    def tap_key(self) -> str:
        return f"{self.device_id}:{self.device_seq}"


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
        return asdict(self)


def result_of(tap: Tap, *, duplicate: bool) -> TapResult:
    decision = "deny" if tap.outcome == "denied" else "accept"
    return TapResult(tap.tap_key, tap.device_seq, decision, tap.outcome, tap.reason, tap.fare, tap.balance_after,
                     duplicate)


def process_tap(session: Session, ctx: Ticketing, req: TapRequest) -> TapResult:
    """Apply one tap; a repeat of a known tap key returns the stored result (409 when its body differs)."""
    existing = session.scalar(select(Tap).where(Tap.tap_key == req.tap_key))
    if existing is not None:
        if existing.body_hash != req.body_hash:
            raise Conflict(f"tap {req.tap_key} was already received with a different body")
        return result_of(existing, duplicate=True)
    card = session.scalar(select(Card).where(Card.number_hash == number_hash(ctx.hash_key, req.card_number)))
    if card is None:
        return _record(session, req, None, "denied", "unknown_card", 0, None)
    account = ledger.lock_card_account(session, card.id)
    if card.status != "active":
        return _record(session, req, card, "denied", card.status, 0, account.balance)
    profile = ctx.profiles.get(session)
    prior, passes = _window(session, profile, card, req.tapped_at)
    new = TapIn(req.tap_key, req.tapped_at, req.vehicle_id, req.route_id)
    rated = {r.tap_id: r for r in rate(profile, card.rider_category, [*_tap_ins(prior), new], passes)}
    mine = rated[req.tap_key]
    if mine.outcome == "denied":
        return _record(session, req, card, "denied", mine.reason, 0, account.balance, mine.product_id)
    if not req.offline and mine.fare > account.balance:
        return _record(session, req, card, "denied", "insufficient_balance", 0, account.balance, mine.product_id)
    base = profile.leg_price(card.rider_category, req.route_id, req.tapped_at)[1]
    floor = -profile.config.debt_limit_fares * base if req.offline else 0
    charge = min(mine.fare, max(0, account.balance - floor))
    balance = account.balance - charge
    tap = _insert_tap(session, req, card, mine, charge, balance)
    _charge(session, ctx, account.id, tap, charge, floor)
    if not _is_last(new, prior):  # rating is causal: a tap after all others cannot change their prices
        _correct(session, ctx, account.id, prior, rated)
        balance = ledger.card_account(session, card.id).balance
        tap.balance_after = balance
    if balance < 0:
        denylist.set_denied(session, card, True, "negative_balance")
    return result_of(tap, duplicate=False)


def _is_last(new: TapIn, prior: list[Tap]) -> bool:
    return all((_utc(t.tapped_at), t.tap_key) < (new.at, new.tap_id) for t in prior)


def _window(session: Session, profile: FareProfile, card: Card, at: dt.datetime) -> tuple[list[Tap], list[PassIn]]:
    start, end = rating_window(profile, at)
    rides = or_(Tap.offline.is_(True), Tap.outcome.in_(("accepted", "double_tap")))
    prior = list(session.scalars(select(Tap).where(Tap.card_id == card.id, Tap.tapped_at >= start,
                                                   Tap.tapped_at < end, rides)))
    passes = [PassIn(p.fare_product_id, _utc(p.valid_from), _utc(p.valid_to)) for p in session.scalars(
        select(CardPass).where(CardPass.card_id == card.id, CardPass.valid_to > start, CardPass.valid_from < end))]
    return prior, passes


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _tap_ins(taps: list[Tap]) -> list[TapIn]:
    return [TapIn(t.tap_key, _utc(t.tapped_at), t.vehicle_id, t.route_id) for t in taps]


def _new_tap(session: Session, req: TapRequest, card: Card | None, outcome: str, reason: str | None, fare: int,
             balance: int | None, product_id: str | None = None) -> Tap:
    tap = Tap(tap_key=req.tap_key, device_id=req.device_id, device_seq=req.device_seq, body_hash=req.body_hash,
              card_id=card.id if card else None, card_masked=card.masked if card else None,
              vehicle_id=req.vehicle_id, route_id=req.route_id, tapped_at=req.tapped_at, offline=req.offline,
              outcome=outcome, reason=reason, fare=fare, uncollected=0, product_id=product_id,
              balance_after=balance)
    session.add(tap)
    session.flush()
    return tap


def _record(session: Session, req: TapRequest, card: Card | None, outcome: str, reason: str | None, fare: int,
            balance: int | None, product_id: str | None = None) -> TapResult:
    return result_of(_new_tap(session, req, card, outcome, reason, fare, balance, product_id), duplicate=False)


def _insert_tap(session: Session, req: TapRequest, card: Card, rated: RatedTap, charge: int, balance: int) -> Tap:
    tap = _new_tap(session, req, card, rated.outcome, rated.reason, rated.fare, balance, rated.product_id)
    tap.uncollected = rated.fare - charge
    if tap.uncollected:
        tap.reason = "debt_limit"
    return tap


def _charge(session: Session, ctx: Ticketing, account_id: int, tap: Tap, amount: int, floor: int) -> None:
    if amount == 0:
        return
    revenue = ledger.system_account(session, "revenue", ctx.accounts)
    ledger.post(session, "fare", [ledger.Leg(account_id, -amount, floor, card=True), ledger.Leg(revenue, amount)],
                charge_key=f"fare:{tap.tap_key}", tap_id=tap.id)


def _correct(session: Session, ctx: Ticketing, account_id: int, prior: list[Tap],
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
        charged = -paid.get(tap.id, 0)
        diff = rated[tap.tap_key].fare - (charged + tap.uncollected)
        if diff < 0:
            diff = -min(-diff, charged)  # never refund what was never collected
        if diff == 0:
            continue
        revenue = revenue or ledger.system_account(session, "revenue", ctx.accounts)
        count = session.scalar(select(func.count()).select_from(LedgerTransaction)
                               .where(LedgerTransaction.tap_id == tap.id)) or 0
        ledger.post(session, "fare_adjustment", [ledger.Leg(account_id, -diff, card=True), ledger.Leg(revenue, diff)],
                    charge_key=f"adj:{tap.tap_key}:{count}", tap_id=tap.id, reason="re-rated after a late tap")
