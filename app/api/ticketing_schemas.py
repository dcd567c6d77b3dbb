"""JSON Schemas of the ticketing request and response bodies, published beside the schedule ones in the OpenAPI
document; request schemas are also what ``@endpoint(request=...)`` checks bodies against."""

from __future__ import annotations

from typing import Any

from app.api.schemas import EXAMPLES, SCHEMAS, ref
from app.ticketing.payments import MAX_TOP_UP, MIN_TOP_UP, OUTCOMES

__all__ = ["TICKETING_EXAMPLES", "TICKETING_SCHEMAS", "install_schemas"]

_TIYN = {"type": "integer", "description": "integer tiyn (1 ₸ = 100 tiyn)"}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object schema; every property is required unless named in ``optional``."""
    return {"type": "object", "properties": properties, "required": [p for p in properties if p not in optional]}


_CARD_NUMBER = {"type": "string", "minLength": 19, "maxLength": 40,
                "description": "the 19-digit card number (spaces and dashes allowed)"}
_CODE = {"type": "string", "minLength": 1, "maxLength": 8, "description": "the 3-digit code printed on the card"}
_REASON = {"type": "string", "minLength": 1, "maxLength": 500, "description": "why (kept in the audit log)"}
_AMOUNT = {"type": "integer", "minimum": 1, "maximum": 10_000_000, "description": "integer tiyn (1 ₸ = 100 tiyn)"}
_WHEN = {"type": "string", "format": "date-time", "description": "ISO-8601 with a UTC offset"}

_REQUESTS: dict[str, Any] = {
    "TapRequest": _object({
        "seq": {"type": "integer", "minimum": 1, "description": "the device's sequence number of this tap"},
        "card": _CARD_NUMBER,
        "vehicle_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "route_id": {"type": ["string", "null"], "maxLength": 255},
        "tapped_at": {**_WHEN, "description": "when the card was tapped (the tap is rated by this time)"},
    }, optional=("route_id",)),
    "BatchRequest": _object({"taps": {"type": "array", "items": ref("TapRequest"), "minItems": 1,
                                      "maxItems": 5000}}),
    "RiderRegistration": _object({
        "login": {"type": "string", "minLength": 3, "maxLength": 200, "description": "email or phone number"},
        "password": {"type": "string", "minLength": 1, "maxLength": 200},
        "full_name": {"type": ["string", "null"], "maxLength": 200},
    }, optional=("full_name",)),
    "Login": _object({"login": {"type": "string", "minLength": 1, "maxLength": 200},
                      "password": {"type": "string", "minLength": 1, "maxLength": 200}}),
    "CardCredentials": _object({"card": _CARD_NUMBER, "code": _CODE}),
    "Logout": {**_object({}), "description": "an empty object: every token of the account is revoked"},
    "PaymentIntentRequest": _object({"amount": {
        "type": "integer", "minimum": MIN_TOP_UP, "maximum": MAX_TOP_UP,
        "description": "tiyn to add to the card once the payment is confirmed (100 ₸ to 50,000 ₸)"}}),
    "SandboxPayment": _object({"outcome": {"enum": list(OUTCOMES),
                                           "description": "what the sandbox provider reports for the payment"}}),
    "PaymentWebhookEvent": _object({
        "event_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "reference": {"type": "string", "minLength": 1, "maxLength": 128,
                      "description": "the provider's reference of the intent"},
        "status": {"enum": list(OUTCOMES)},
        "amount": {"type": "integer", "description": "tiyn; must equal the intent's"},
        "currency": {"type": "string", "minLength": 1, "maxLength": 128, "examples": ["KZT"]},
    }),
    "DeviceTopUp": _object({"card": _CARD_NUMBER, "amount": {
        "type": "integer", "minimum": 100, "maximum": MAX_TOP_UP,
        "description": "tiyn received by the kiosk or bank (1 ₸ to 50,000 ₸)"}}),
    "PassPurchase": _object({"product": {"type": "string", "minLength": 1, "maxLength": 255,
                                         "examples": ["pass_month"]},
                             "start": {**_WHEN, "type": ["string", "null"]}}, optional=("start",)),
    "CardIssue": _object({"category": {"type": ["string", "null"], "maxLength": 64},
                          "rider_id": {"type": ["integer", "null"], "minimum": 1}},
                         optional=("category", "rider_id")),
    "StaffReason": _object({"reason": _REASON}),
    "BalanceMove": _object({"reason": _REASON, "to_card_id": {"type": "integer", "minimum": 1}}),
    "AdjustmentRequest": _object({
        "reason": _REASON,
        "amount": {"type": "integer",
                   "description": "tiyn credited to the card (negative: debited); a refund is positive"},
        "kind": {"enum": ["refund", "adjustment", None]},
    }, optional=("kind",)),
    "ChannelTopUp": _object({"amount": {**_AMOUNT, "maximum": MAX_TOP_UP}, "channel": {"enum": ["kiosk", "bank"]},
                             "reason": {"type": ["string", "null"], "maxLength": 500}}, optional=("reason",)),
}

_TAP_RESULT = _object({
    "tap_key": {"type": "string", "description": "device_id:seq"},
    "device_seq": {"type": "integer"},
    "decision": {"enum": ["accept", "deny"]},
    "outcome": {"enum": ["accepted", "double_tap", "denied"]},
    "reason": {"type": ["string", "null"], "description": "e.g. insufficient_balance, blocked, passback, "
                                                          "unknown_card, debt_limit"},
    "fare": _TIYN,
    "balance": {"type": ["integer", "null"], "description": "the card's balance after the tap (tiyn)"},
    "duplicate": {"type": "boolean", "description": "true: this tap key was already applied; stored result"},
})

_RESPONSES: dict[str, Any] = {
    "TapResult": _TAP_RESULT,
    "TapConflict": _object({"tap_key": {"type": "string"}, "device_seq": {"type": "integer"},
                            "decision": {"const": "conflict"}, "reason": {"type": "string"}}),
    "BatchResult": _object({
        "results": {"type": "array", "items": {"oneOf": [ref("TapResult"), ref("TapConflict")]},
                    "description": "one per tap, in the order sent"},
        "counts": _object({k: {"type": "integer", "minimum": 0}
                           for k in ("accept", "deny", "conflict", "duplicates")}),
        "gaps": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2,
                                            "maxItems": 2},
                 "description": "missing [first, last] ranges of this device's sequence numbers"},
    }),
    "RiderCreated": _object({"rider_id": {"type": "integer"}, "login": {"type": "string"}}),
    "Token": _object({"token": {"type": "string", "description": "send as `Authorization: Bearer <token>`"},
                      "rider_id": {"type": "integer"}}),
    "LoggedOut": _object({"logged_out": {"const": True}}),
    "CardWithPass": {"allOf": [ref("Card"), _object({"pass": _object({
        "product": {"type": "string"}, "price": _TIYN, "valid_from": _WHEN, "valid_to": _WHEN})})]},
    "IssuedCard": {"allOf": [ref("Card"), _object({
        "number": {"type": "string", "pattern": "^[0-9]{19}$",
                   "description": "shown once, never stored: absent from a replay of the same Idempotency-Key"},
        "code": {"type": "string", "pattern": "^[0-9]{3}$", "description": "shown once, like the number"},
        "shown_only_once": {"type": "array", "items": {"type": "string"},
                            "description": "on a replay: the fields the first answer showed and no replay can"}},
        optional=("number", "code", "shown_only_once"))]},
    "BalanceMoved": _object({"moved": _TIYN, "from": ref("Card"), "to": ref("Card")}),
    "PaymentIntent": _object({
        "intent_id": {"type": "string"}, "card_id": {"type": "integer"},
        "status": {"enum": ["pending", *OUTCOMES]}, "amount": _TIYN, "currency": {"const": "KZT"},
        "provider": {"type": "string"},
        "checkout_url": {"type": ["string", "null"], "description": "where to pay, while the intent is pending"},
        "created_at": _WHEN}),
    "PaymentWebhookResult": _object({
        "received": {"const": True}, "intent_id": {"type": "string"}, "status": {"enum": ["pending", *OUTCOMES]},
        "duplicate": {"type": "boolean", "description": "true: this event changed nothing (already settled)"}}),
    "DeviceTopUpResult": _object({"masked": {"type": "string"}, "amount": _TIYN, "channel": {"enum": ["kiosk", "bank"]},
                                  "balance": _TIYN, "currency": {"const": "KZT"}}),
    "CardBalance": _object({"masked": {"type": "string"}, "status": {"enum": ["active", "blocked", "replaced"]},
                            "balance": _TIYN, "currency": {"const": "KZT"}}),
}

TICKETING_SCHEMAS: dict[str, Any] = {
    **_REQUESTS,
    **_RESPONSES,
    "DenyListChange": _object({
        "version": {"type": "integer"},
        "card": {"type": "string", "description": "the card's keyed hash"},
        "action": {"enum": ["add", "remove"]},
        "reason": {"type": "string"},
    }),
    "DenyList": _object({"version": {"type": "integer"},
                         "changes": {"type": "array", "items": ref("DenyListChange")}}),
    "Card": _object({
        "card_id": {"type": "integer"},
        "masked": {"type": "string", "examples": ["**** **** **** 1234 567"]},
        "status": {"enum": ["active", "blocked", "replaced"]},
        "category": {"type": "string"},
        "balance": _TIYN,
        "currency": {"const": "KZT"},
    }),
    "CardList": _object({"cards": {"type": "array", "items": ref("Card")}}),
    "CardHistory": _object({
        "taps": {"type": "array", "items": _object({
            "at": {"type": "string", "format": "date-time"}, "vehicle_id": {"type": "string"},
            "route_id": {"type": ["string", "null"]}, "outcome": {"type": "string"},
            "reason": {"type": ["string", "null"]}, "fare": _TIYN,
            "product_id": {"type": ["string", "null"], "description": "the fare product the tap was rated by "
                           "(a pass's for a pass ride); a fare below its price marks a transfer"}})},
        "payments": {"type": "array", "items": _object({
            "kind": {"type": "string"}, "reason": {"type": ["string", "null"]},
            "at": {"type": "string", "format": "date-time"}, "amount": _TIYN})},
    }),
    "AuditLog": _object({"entries": {"type": "array", "items": _object({
        "id": {"type": "integer"}, "actor_id": {"type": ["integer", "null"]}, "action": {"type": "string"},
        "card_id": {"type": ["integer", "null"]}, "reason": {"type": ["string", "null"]},
        "details": {"type": "object"}, "at": {"type": "string", "format": "date-time"}})}}),
}


TICKETING_EXAMPLES: dict[str, Any] = {
    "TapRequest": {"seq": 1042, "card": "9643 1000 0000 1234 567", "vehicle_id": "bus-0412", "route_id": "R12",
                   "tapped_at": "2026-03-10T08:00:00+05:00"},
    "TapResult": {"tap_key": "dev_3f2a9c1b0d4e5f60:1042", "device_seq": 1042, "decision": "accept",
                  "outcome": "accepted", "reason": None, "fare": 12000, "balance": 38000, "duplicate": False},
    "PaymentIntentRequest": {"amount": 200000},
    "DeviceTopUp": {"card": "9643 1000 0000 1234 567", "amount": 100000},
    "AdjustmentRequest": {"reason": "charged twice at a faulty validator", "amount": 12000, "kind": "refund"},
}


def install_schemas() -> None:
    """Publish the ticketing schemas (and examples) in ``components/schemas`` (idempotent)."""
    for name, schema in TICKETING_SCHEMAS.items():
        SCHEMAS.setdefault(name, schema)
    for name, example in TICKETING_EXAMPLES.items():
        EXAMPLES.setdefault(name, example)
