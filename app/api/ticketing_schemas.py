"""JSON Schemas of the ticketing responses, published beside the schedule ones in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from app.api.schemas import SCHEMAS, ref

__all__ = ["TICKETING_SCHEMAS", "install_schemas"]

_TIYN = {"type": "integer", "description": "integer tiyn (1 ₸ = 100 tiyn)"}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": [p for p in properties if p not in optional]}


TICKETING_SCHEMAS: dict[str, Any] = {
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
            "reason": {"type": ["string", "null"]}, "fare": _TIYN})},
        "payments": {"type": "array", "items": _object({
            "kind": {"type": "string"}, "reason": {"type": ["string", "null"]},
            "at": {"type": "string", "format": "date-time"}, "amount": _TIYN})},
    }),
    "AuditLog": _object({"entries": {"type": "array", "items": _object({
        "id": {"type": "integer"}, "actor_id": {"type": ["integer", "null"]}, "action": {"type": "string"},
        "card_id": {"type": ["integer", "null"]}, "reason": {"type": ["string", "null"]},
        "details": {"type": "object"}, "at": {"type": "string", "format": "date-time"}})}}),
}


def install_schemas() -> None:
    """Publish the ticketing schemas in ``components/schemas`` (idempotent)."""
    for name, schema in TICKETING_SCHEMAS.items():
        SCHEMAS.setdefault(name, schema)
