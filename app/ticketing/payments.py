"""Rider top-ups with money behind them: a payment intent, paid through a provider, credits the card exactly once.

A rider asks for an intent (amount within ``MIN_TOP_UP``..``MAX_TOP_UP``, the card's balance plus its pending
intents within ``BALANCE_CAP``); the provider answers with its reference and where to pay. Only the provider's
signed confirmation moves money: ``receive_webhook`` checks the signature, parses the event, and ``apply_event``
takes the intent from ``pending`` to its outcome with one conditional UPDATE, so a second delivery of the same
event (or a concurrent one) finds nothing pending and credits nothing. The credit is a ledger top-up from
``channel:app`` whose ``charge_key`` (unique) names the intent: a second posting could not commit either.
``failed`` and ``canceled`` are final and never credit; an event whose amount or currency differs from the
intent's is refused.

``SandboxProvider`` is the demo's and the tests' provider: SANDBOX, no money moves anywhere. It signs events
like a real acquirer (HMAC-SHA256 over ``timestamp.body``) and production refuses it unless explicitly allowed
(``app.config``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.datastructures import Headers

from app.errors import BadRequest, NotFound, QalaError
from app.instants import rfc3339
from app.models import Card, LedgerTransaction, PaymentIntent
from app.ticketing import cards, ledger
from app.ticketing.errors import Conflict, Unauthorized

__all__ = [
    "BALANCE_CAP",
    "MAX_TOP_UP",
    "MIN_TOP_UP",
    "OUTCOMES",
    "Applied",
    "Checkout",
    "PaymentEvent",
    "PaymentProvider",
    "PaymentsUnavailable",
    "SandboxProvider",
    "apply_event",
    "check_top_up",
    "create_intent",
    "intent_summary",
    "make_provider",
    "receive_webhook",
]

log = logging.getLogger(__name__)

HeaderMap = Mapping[str, str] | Headers

MIN_TOP_UP = 10_000  # tiyn: 100 ₸
MAX_TOP_UP = 5_000_000  # tiyn: 50,000 ₸ per top-up
BALANCE_CAP = 10_000_000  # tiyn: 100,000 ₸ on one card, counting payments still pending
PENDING_COUNTS_FOR = dt.timedelta(hours=1)  # an abandoned checkout stops holding room under the cap
CURRENCY = "KZT"
OUTCOMES = ("succeeded", "failed", "canceled")


class PaymentsUnavailable(QalaError):
    """503: rider top-ups are turned off (``QALA_PAYMENT_PROVIDER=none``)."""

    status = 503
    code = "payments_unavailable"


@dataclass(frozen=True)
class Checkout:
    """The provider's answer to a new intent: its own reference, and where the rider pays."""

    provider_ref: str
    checkout_url: str


@dataclass(frozen=True)
class PaymentEvent:
    """What a provider's webhook says happened to one payment."""

    event_id: str
    provider_ref: str
    status: str  # one of OUTCOMES
    amount: int  # tiyn
    currency: str


@dataclass(frozen=True)
class Applied:
    """The intent after an event, and whether this event changed it (False: a repeat, or a late event)."""

    intent: PaymentIntent
    changed: bool


class PaymentProvider(Protocol):
    """A card acquirer or wallet: takes payments for intents and confirms them with signed webhooks."""

    name: str

    def create_checkout(self, intent_id: str, amount: int, currency: str) -> Checkout:
        """Open a payment for an intent; the provider's reference and the rider's checkout URL."""

    def checkout_url(self, intent_id: str, provider_ref: str) -> str:
        """Where the rider pays an intent that is still pending."""

    def verify_signature(self, body: bytes, headers: HeaderMap, now: dt.datetime | None = None) -> None:
        """Raise ``Unauthorized`` unless the webhook was signed by the provider (recently)."""

    def parse_event(self, body: bytes) -> PaymentEvent:
        """The event of a verified webhook body; ``BadRequest`` naming the field when malformed."""


class SandboxProvider:
    """SANDBOX payment provider for the demo and the tests: nobody is charged, no money arrives.

    Webhooks carry ``X-Sandbox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`` and
    are refused when more than ``TOLERANCE_S`` old (a replay after that is refused; one within it finds the
    intent already settled).
    """

    name = "sandbox"
    HEADER = "X-Sandbox-Signature"
    TOLERANCE_S = 300

    def __init__(self, secret: str, checkout_path: str = "/sandbox/checkout/{intent_id}") -> None:
        if not secret:
            raise ValueError("the sandbox provider needs a webhook secret")
        self._secret = secret.encode()
        self._checkout_path = checkout_path

    def create_checkout(self, intent_id: str, amount: int, currency: str) -> Checkout:
        ref = "sbx_" + secrets.token_hex(12)
        return Checkout(ref, self.checkout_url(intent_id, ref))

    def checkout_url(self, intent_id: str, provider_ref: str) -> str:
        return self._checkout_path.format(intent_id=intent_id)

    def _mac(self, timestamp: str, body: bytes) -> str:
        return hmac.new(self._secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()

    def sign(self, body: bytes, now: dt.datetime | None = None) -> dict[str, str]:
        """The headers the sandbox sends with a webhook body."""
        timestamp = str(int((now or dt.datetime.now(dt.UTC)).timestamp()))
        return {self.HEADER: f"t={timestamp},v1={self._mac(timestamp, body)}"}

    def event_body(self, provider_ref: str, outcome: str, amount: int, currency: str = CURRENCY) -> bytes:
        """The webhook body the sandbox sends when a payment reaches ``outcome``."""
        return json.dumps({"event_id": "evt_" + secrets.token_hex(12), "reference": provider_ref,
                           "status": outcome, "amount": amount, "currency": currency}).encode()

    def verify_signature(self, body: bytes, headers: HeaderMap, now: dt.datetime | None = None) -> None:
        raw = headers.get(self.HEADER) or ""
        parts = dict(item.split("=", 1) for item in raw.split(",") if "=" in item)
        timestamp, mac = parts.get("t", ""), parts.get("v1", "")
        if not timestamp.isdigit() or not mac:
            raise Unauthorized("missing_signature", f"sign the webhook with {self.HEADER}: t=<unix>,v1=<hex>")
        current = (now or dt.datetime.now(dt.UTC)).timestamp()
        if abs(current - int(timestamp)) > self.TOLERANCE_S:
            raise Unauthorized("stale_request", f"the webhook was signed more than {self.TOLERANCE_S} s ago")
        if not hmac.compare_digest(self._mac(timestamp, body), mac):
            raise Unauthorized("bad_signature", "the webhook signature does not match")

    def parse_event(self, body: bytes) -> PaymentEvent:
        try:
            data = json.loads(body)
        except ValueError:
            raise BadRequest("the body must be a JSON document", field="body") from None
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object", field="body")
        text = {name: _text(data, name) for name in ("event_id", "reference", "status", "currency")}
        amount = data.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise BadRequest("amount must be an integer (tiyn)", field="amount")
        if text["status"] not in OUTCOMES:
            raise BadRequest(f"status must be one of {', '.join(OUTCOMES)}", field="status")
        return PaymentEvent(text["event_id"], text["reference"], text["status"], amount, text["currency"])


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        raise BadRequest(f"{name} must be a string of 1 to 128 characters", field=name)
    return value


def make_provider(name: str, secret: str, *, checkout_path: str) -> PaymentProvider | None:
    """The configured provider (``None``: rider top-ups are off)."""
    if name == "none":
        return None
    if name == "sandbox":
        return SandboxProvider(secret, checkout_path)
    raise ValueError(f"unknown payment provider {name!r}")


def check_top_up(session: Session, card: Card, amount: int, *, minimum: int = MIN_TOP_UP) -> None:
    """Refuse an amount outside the per-top-up limits (400) or one that would take the card over the cap (409)."""
    if not minimum <= amount <= MAX_TOP_UP:
        raise BadRequest(f"amount must be {minimum:,} to {MAX_TOP_UP:,} tiyn", field="amount")
    since = dt.datetime.now(dt.UTC) - PENDING_COUNTS_FOR
    pending = session.scalar(select(func.coalesce(func.sum(PaymentIntent.amount), 0))
                             .where(PaymentIntent.card_id == card.id, PaymentIntent.status == "pending",
                                    PaymentIntent.created_at >= since)) or 0
    balance = ledger.card_account(session, card.id).balance
    if balance + pending + amount > BALANCE_CAP:
        room = max(0, BALANCE_CAP - balance - pending)
        raise Conflict(f"a card holds at most {BALANCE_CAP:,} tiyn; at most {room:,} more can be added now",
                       field="amount", details={"room": room})


def create_intent(session: Session, provider: PaymentProvider | None, card: Card, rider_id: int,
                  amount: int) -> tuple[PaymentIntent, Checkout]:
    """A pending intent to top up ``card`` by ``amount`` tiyn, opened with the provider. Nothing is credited."""
    if provider is None:
        raise PaymentsUnavailable("rider top-ups are turned off here; top up at a kiosk or a bank")
    if card.status != "active":
        raise Conflict(f"this card is {card.status}; it cannot be topped up")
    check_top_up(session, card, amount)
    intent_id = "pi_" + secrets.token_hex(12)
    checkout = provider.create_checkout(intent_id, amount, CURRENCY)
    now = dt.datetime.now(dt.UTC)
    intent = PaymentIntent(id=intent_id, card_id=card.id, rider_id=rider_id, amount=amount, currency=CURRENCY,
                           provider=provider.name, provider_ref=checkout.provider_ref, status="pending",
                           created_at=now, updated_at=now)
    session.add(intent)
    session.flush()
    return intent, checkout


def apply_event(session: Session, provider_name: str, event: PaymentEvent) -> Applied:
    """Settle the intent the event is about, exactly once; a success credits the card from ``channel:app``."""
    intent = session.scalar(select(PaymentIntent).where(PaymentIntent.provider == provider_name,
                                                        PaymentIntent.provider_ref == event.provider_ref))
    if intent is None:
        raise NotFound("no payment intent with this reference", field="reference")
    if (event.amount, event.currency) != (intent.amount, intent.currency):
        log.error("payment event %s for intent %s says %s %s, the intent %s %s", event.event_id, intent.id,
                  event.amount, event.currency, intent.amount, intent.currency)
        raise Conflict("the event's amount or currency does not match the intent", field="amount")
    # the one state change an event may make; a repeat (or a concurrent copy, which waits for this row's
    # lock and then finds it no longer pending) changes nothing
    claimed = session.scalar(update(PaymentIntent)
                             .where(PaymentIntent.id == intent.id, PaymentIntent.status == "pending")
                             .values(status=event.status, updated_at=dt.datetime.now(dt.UTC))
                             .returning(PaymentIntent.id).execution_options(synchronize_session=False))
    session.refresh(intent)
    if claimed is None:
        if intent.status != event.status:
            log.warning("payment event %s says %s for intent %s, already %s; ignored", event.event_id,
                        event.status, intent.id, intent.status)
        return Applied(intent, False)
    if event.status == "succeeded":
        charge_key = f"{cards.PAYMENT_KEY_PREFIX}{intent.id}"
        cards.top_up(session, session.get_one(Card, intent.card_id), intent.amount, "app",
                     charge_key=charge_key, reason=f"{provider_name} payment {intent.id}")
        intent.ledger_transaction_id = session.scalar(select(LedgerTransaction.id)
                                                      .where(LedgerTransaction.charge_key == charge_key))
        session.flush()
    return Applied(intent, True)


def receive_webhook(session: Session, provider: PaymentProvider, body: bytes, headers: HeaderMap,
                    now: dt.datetime | None = None) -> Applied:
    """A provider's webhook: signature first, then the event, then its effect."""
    provider.verify_signature(body, headers, now)
    return apply_event(session, provider.name, provider.parse_event(body))


def intent_summary(intent: PaymentIntent, provider: PaymentProvider | None) -> dict[str, Any]:
    """The rider's view of an intent (the checkout URL while it can still be paid)."""
    pay = (provider.checkout_url(intent.id, intent.provider_ref)
           if provider is not None and intent.status == "pending" and provider.name == intent.provider else None)
    return {"intent_id": intent.id, "card_id": intent.card_id, "status": intent.status, "amount": intent.amount,
            "currency": intent.currency, "provider": intent.provider, "checkout_url": pay,
            "created_at": rfc3339(intent.created_at)}
