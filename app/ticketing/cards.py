"""Card lifecycle: issue, top up (a channel transfer), passes, block/unblock, move balance, staff adjustments.

Functions take the session and change it; the caller commits once per use case. Staff actions write the
audit log in the same transaction as their effect.
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import BadRequest, NotFound
from app.models import AuditLog, Card, CardPass, Rider
from app.ticketing import denylist, ledger
from app.ticketing.cardnumbers import code_hash, generate_card, mask, number_hash, parse_number
from app.ticketing.context import Ticketing
from app.ticketing.errors import Conflict

__all__ = [
    "adjust",
    "block",
    "buy_pass",
    "card_by_number",
    "channel_top_up",
    "issue_card",
    "move_balance",
    "top_up",
    "unblock",
]

CHANNELS = ("kiosk", "app", "bank")
PAYMENT_KEY_PREFIX = "payment:"  # the charge key of an app top-up: payment:<intent id>
CONCESSIONS_NEED_REGISTRATION = True


def issue_card(session: Session, ctx: Ticketing, *, category: str = "standard", number: str | None = None,
               code: str | None = None, rider_id: int | None = None) -> tuple[Card, str, str]:
    """A new active card with its ledger account; returns the card, its number and printed code."""
    if category not in ctx.profiles.get(session).categories and category != "standard":
        raise BadRequest(f"unknown rider category {category!r}", field="category")
    if category != "standard" and rider_id is None and CONCESSIONS_NEED_REGISTRATION:
        raise BadRequest("a concession card must be registered to a person", field="rider_id")
    if rider_id is not None and session.get(Rider, rider_id) is None:
        raise NotFound(f"no rider with id {rider_id}", field="rider_id")
    if number is None or code is None:
        number, code = generate_card()
    number = parse_number(number)
    hashed = number_hash(ctx.hash_key, number)
    if session.scalar(select(Card.id).where(Card.number_hash == hashed)) is not None:
        raise Conflict("this card number is already issued")
    card = Card(number_hash=hashed, masked=mask(number), code_hash=code_hash(ctx.hash_key, number, code),
                rider_category=category, status="active", rider_id=rider_id)
    session.add(card)
    session.flush()
    ledger.open_card_account(session, card.id)
    return card, number, code


def card_by_number(session: Session, ctx: Ticketing, number: str, code: str | None = None) -> Card:
    """The card with this number (and printed code, when given); ``NotFound`` otherwise, saying nothing more."""
    try:
        digits = parse_number(number)
    except ValueError:
        raise NotFound("no such card") from None
    card = session.scalar(select(Card).where(Card.number_hash == number_hash(ctx.hash_key, digits)))
    # constant-time: how long the comparison takes says nothing about how much of a guessed code was right
    if card is None or (code is not None
                        and not hmac.compare_digest(card.code_hash, code_hash(ctx.hash_key, digits, code))):
        raise NotFound("no such card")
    return card


def top_up(session: Session, card: Card, amount: int, channel: str, *, charge_key: str | None = None,
           reason: str | None = None) -> int:
    """Move ``amount`` tiyn from a channel account onto the card; returns the new balance.

    ``charge_key`` (unique in the ledger) makes a second posting for the same payment fail instead of crediting
    twice. Who may call this is the callers' rule: a confirmed provider payment (``app.ticketing.payments``), an
    authenticated kiosk or bank device, or staff (``channel_top_up``, audited).
    """
    if channel not in CHANNELS:
        raise BadRequest(f"channel must be one of {', '.join(CHANNELS)}", field="channel")
    if not 0 < amount <= 10_000_000:
        raise BadRequest("amount must be 1 to 10,000,000 tiyn", field="amount")
    if channel == "app" and not (charge_key or "").startswith(PAYMENT_KEY_PREFIX):
        # the app channel is the payment provider's: money arrives there only with a confirmed payment
        raise ValueError("an app top-up needs the charge key of a confirmed payment (payment:<intent id>)")
    account = ledger.lock_card_account(session, card.id)
    source = ledger.system_account(session, f"channel:{channel}")
    ledger.post(session, "top_up", [ledger.Leg(source, -amount), ledger.Leg(account.id, amount, card=True)],
                charge_key=charge_key, reason=reason)
    balance = ledger.card_account(session, card.id).balance
    if balance >= 0 and card.status == "active":
        denylist.set_denied(session, card, False, "topped_up")
    return balance


def channel_top_up(session: Session, card: Card, amount: int, channel: str, *, actor_id: int | None,
                   reason: str, **details: Any) -> int:
    """A kiosk or bank top-up (by a channel device, or entered by staff), with its audit row; the new balance."""
    if channel not in ("kiosk", "bank"):
        raise BadRequest("channel must be kiosk or bank", field="channel")
    if card.status == "replaced":
        raise Conflict("this card was replaced; top up its replacement instead")
    balance = top_up(session, card, amount, channel)
    _audit(session, actor_id, "top_up", card, reason, amount=amount, channel=channel, **details)
    return balance


def buy_pass(session: Session, ctx: Ticketing, card: Card, product_id: str, start: dt.datetime) -> CardPass:
    """Buy a period pass from the card's stored value (it must cover the price)."""
    profile = ctx.profiles.get(session)
    price = profile.product_amount(product_id, card.rider_category)
    if not profile.is_pass(product_id) or price is None:
        raise BadRequest(f"{product_id!r} is not a pass for this card's rider category", field="product")
    account = ledger.lock_card_account(session, card.id)
    revenue = ledger.system_account(session, "revenue")
    ledger.post(session, "pass_sale", [ledger.Leg(account.id, -price, 0, card=True), ledger.Leg(revenue, price)],
                reason=product_id)
    days = profile.config.pass_days[product_id]
    item = CardPass(card_id=card.id, fare_product_id=product_id, price=price, valid_from=start,
                    valid_to=start + dt.timedelta(days=days))
    session.add(item)
    session.flush()
    return item


def _audit(session: Session, actor_id: int | None, action: str, card: Card, reason: str, **details: Any) -> None:
    session.add(AuditLog(actor_id=actor_id, action=action, card_id=card.id, reason=reason, details=details))


def block(session: Session, card: Card, actor_id: int | None, reason: str) -> None:
    if card.status == "replaced":
        raise Conflict("a replaced card cannot be blocked again")
    card.status = "blocked"
    card.status_reason = reason
    denylist.set_denied(session, card, True, "blocked")
    _audit(session, actor_id, "block", card, reason)


def unblock(session: Session, card: Card, actor_id: int | None, reason: str) -> None:
    if card.status != "blocked":
        raise Conflict("only a blocked card can be unblocked")
    card.status = "active"
    card.status_reason = None
    if ledger.card_account(session, card.id).balance >= 0:
        denylist.set_denied(session, card, False, "unblocked")
    _audit(session, actor_id, "unblock", card, reason)


def move_balance(session: Session, old: Card, new: Card, actor_id: int | None, reason: str) -> int:
    """Move the whole balance of ``old`` to ``new``; ``old`` becomes replaced (and denied). Returns the amount."""
    if old.id == new.id or new.status != "active":
        raise Conflict("the balance can move only to another active card")
    first, second = sorted((old.id, new.id))
    ledger.lock_card_account(session, first)
    ledger.lock_card_account(session, second)
    source = ledger.card_account(session, old.id)
    target = ledger.card_account(session, new.id)
    amount = source.balance
    if amount:
        legs = [ledger.Leg(source.id, -amount, card=True), ledger.Leg(target.id, amount, card=True)]
        ledger.post(session, "balance_move", legs, reason=reason)
    old.status = "replaced"
    old.replaced_by_id = new.id
    denylist.set_denied(session, old, True, "replaced")
    _audit(session, actor_id, "move_balance", old, reason, to_card_id=new.id, amount=amount)
    return amount


def adjust(session: Session, card: Card, amount: int, actor_id: int | None, reason: str, kind: str) -> int:
    """A staff refund (``amount`` > 0 credits the card) or adjustment, from the adjustment account."""
    if not reason.strip():
        raise BadRequest("a reason is required", field="reason")
    if amount == 0 or abs(amount) > 10_000_000:
        raise BadRequest("amount must be non-zero and at most 10,000,000 tiyn", field="amount")
    account = ledger.lock_card_account(session, card.id)
    source = ledger.system_account(session, "adjustment")
    ledger.post(session, kind, [ledger.Leg(source, -amount), ledger.Leg(account.id, amount, card=True)],
                reason=reason)
    _audit(session, actor_id, kind, card, reason, amount=amount)
    balance = ledger.card_account(session, card.id).balance
    # a debit may leave a debt (a reversed top-up, a chargeback): the ledger records it as it is, and the card
    # is denied until topped up, the rule an offline tap below zero follows
    if balance < 0:
        denylist.set_denied(session, card, True, "negative_balance")
    elif card.status == "active":
        denylist.set_denied(session, card, False, "adjusted")
    return balance
