"""Rider top-ups through a payment provider: intents, the provider's signed webhook, and the sandbox's "pay" button.

The card is credited only by a webhook whose signature the provider's secret checks (``app.ticketing.payments``);
the sandbox "pay" action signs an event with that secret and hands it to the same code path. The sandbox's
checkout URL is a page (``/sandbox/checkout/<intent_id>``, ``app.web.rider_card``) whose buttons call "pay".
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from app.api.cards import CARD_ID, body_field, current_rider, rider_scope
from app.api.idempotency import run_mutation
from app.api.spec import Param, String, endpoint
from app.errors import NotFound
from app.extensions import get_db
from app.models import PaymentIntent, Rider
from app.ticketing import payments, riders
from app.ticketing.payments import PaymentProvider, SandboxProvider

__all__ = ["SANDBOX_CHECKOUT_PATH", "SANDBOX_PAY_PATH", "bp", "get_provider"]

bp = Blueprint("payments", __name__, url_prefix="/api/v1")

SANDBOX_PAY_PATH = "/api/v1/payments/sandbox/intents/{intent_id}/pay"
# the sandbox's checkout page for riders (app.web.rider_card), whose Approve / Decline buttons call SANDBOX_PAY_PATH
SANDBOX_CHECKOUT_PATH = "/sandbox/checkout/{intent_id}"
INTENT_ID = Param("intent_id", String(1, 64), "the payment intent's id (pi_…)", location="path", required=True)
PROVIDER = Param("provider", String(1, 32), "the payment provider's name, e.g. sandbox", location="path",
                 required=True)
_EXTENSION = "payments"


def get_provider(app: Flask) -> PaymentProvider | None:
    """The configured payment provider, made once per application (``None``: rider top-ups are off)."""
    if _EXTENSION not in app.extensions:
        app.extensions[_EXTENSION] = payments.make_provider(
            app.config["PAYMENT_PROVIDER"], app.config["PAYMENT_WEBHOOK_SECRET"],
            checkout_path=SANDBOX_CHECKOUT_PATH)
    provider: PaymentProvider | None = app.extensions[_EXTENSION]
    return provider


def _provider_named(name: str) -> PaymentProvider:
    provider = get_provider(current_app)
    if provider is None or provider.name != name:
        raise NotFound(f"no payment provider {name!r} is enabled here", field="provider")
    return provider


def _own_intent(session: Session, rider: Rider, intent_id: str) -> PaymentIntent:
    intent = session.get(PaymentIntent, intent_id)
    if intent is None or (intent.rider_id != rider.id and rider.role not in ("support", "admin")):
        raise NotFound("no such payment intent", field="intent_id")
    return intent


@bp.before_request
def _webhook_signature_first() -> None:
    """A webhook's signature is checked before its body is: an unsigned request learns nothing (401)."""
    if request.endpoint == "payments.webhook":
        provider = _provider_named(str((request.view_args or {}).get("provider", "")))
        provider.verify_signature(request.get_data(), request.headers)


@bp.post("/cards/<card_id>/payment-intents")
@endpoint("Start a top-up of one of my cards: a payment intent to pay at the provider's checkout. The card is "
          "credited only when the provider confirms the payment",
          request="PaymentIntentRequest", response="PaymentIntent", status=201, tag="payments", params=[CARD_ID],
          errors=[401, 404, 409, 503])
def create_intent(card_id: int) -> ResponseReturnValue:
    amount = body_field("amount", int)
    provider = get_provider(current_app)

    def work(session: Session) -> tuple[dict[str, Any], int]:
        rider = current_rider(session)
        card = riders.owned_card(session, rider, card_id)
        intent, _ = payments.create_intent(session, provider, card, rider.id, amount)
        return payments.intent_summary(intent, provider), 201

    return run_mutation(rider_scope(), work)


@bp.get("/payment-intents/<intent_id>")
@endpoint("One of my payment intents: pending until the provider confirms (succeeded) or declines (failed, "
          "canceled)", response="PaymentIntent", tag="payments", params=[INTENT_ID], errors=[401, 404])
def intent_detail(intent_id: str) -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        intent = _own_intent(session, current_rider(session), intent_id)
        return jsonify(payments.intent_summary(intent, get_provider(current_app)))


@bp.post("/payments/<provider>/webhook")
@endpoint("The payment provider's confirmation of a payment, signed with the shared webhook secret (the "
          "sandbox: X-Sandbox-Signature: t=<unix>,v1=<hex HMAC-SHA256 of '<t>.' + body>). A repeated delivery "
          "answers 200 and credits nothing", request="PaymentWebhookEvent", response="PaymentWebhookResult",
          tag="payments", params=[PROVIDER], errors=[401, 404, 409])
def webhook(provider: str) -> ResponseReturnValue:
    found = _provider_named(provider)

    def work(session: Session) -> tuple[dict[str, Any], int]:
        applied = payments.receive_webhook(session, found, request.get_data(), request.headers)
        return _webhook_result(applied), 200

    return run_mutation(f"webhook:{found.name}", work)


def _webhook_result(applied: payments.Applied) -> dict[str, Any]:
    return {"received": True, "intent_id": applied.intent.id, "status": applied.intent.status,
            "duplicate": not applied.changed}


@bp.post("/payments/sandbox/intents/<intent_id>/pay")
@endpoint("SANDBOX ONLY: play the payment provider for one of my pending intents — the sandbox signs a webhook "
          "event with the outcome and applies it exactly as the provider's own call would (404 unless the "
          "sandbox provider is enabled)", request="SandboxPayment", response="PaymentIntent", tag="payments",
          params=[INTENT_ID], errors=[401, 404, 409])
def sandbox_pay(intent_id: str) -> ResponseReturnValue:
    provider = _provider_named(SandboxProvider.name)
    if not isinstance(provider, SandboxProvider):
        raise NotFound("the sandbox provider is not enabled here", field="provider")
    outcome = body_field("outcome", str)

    def work(session: Session) -> tuple[dict[str, Any], int]:
        intent = _own_intent(session, current_rider(session), intent_id)
        body = provider.event_body(intent.provider_ref, outcome, intent.amount, intent.currency)
        applied = payments.receive_webhook(session, provider, body, provider.sign(body))
        return payments.intent_summary(applied.intent, provider), 200

    return run_mutation(rider_scope(), work)
