"""Request bodies against their schemas (``app.api.spec.body_error``, compiled once per schema): every keyword
the published schemas use, the field named in the answer, and the first problem in schema order."""

from __future__ import annotations

from typing import Any

import pytest

from app.api.schemas import SCHEMAS
from app.api.spec import body_error

SHAPE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "seq": {"type": "integer", "minimum": 1, "maximum": 99},
        "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
        "nick": {"type": ["string", "null"], "maxLength": 3},
        "at": {"type": "string", "format": "date-time"},
        "kind": {"enum": ["bus", "tram"]},
        "version": {"const": 2},
        "flag": {"type": "boolean"},
        "ratio": {"type": "number", "minimum": 0.5},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 2},
        "any": {},
        "either": {"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 3}]},
        "both": {"allOf": [{"type": "integer"}, {"minimum": 10}]},
    },
    "required": ["seq", "name", "nick"],
}

GOOD: dict[str, Any] = {"seq": 5, "name": "abc", "nick": None, "at": "2026-03-10T08:00:00+05:00", "kind": "bus",
                        "version": 2, "flag": True, "ratio": 0.75, "tags": ["x"], "any": [{"deep": None}],
                        "either": "long", "both": 12}


@pytest.mark.parametrize(("change", "problem"), [
    ({}, None),
    ({"seq": None}, ("seq", "is required")),
    ({"seq": True}, ("seq", "must be integer")),
    ({"seq": 1.5}, ("seq", "must be integer")),
    ({"seq": 0}, ("seq", "must be at least 1")),
    ({"seq": 100}, ("seq", "must be at most 99")),
    ({"name": "a"}, ("name", "must be 2 to 5 characters long")),
    ({"name": "abcdef"}, ("name", "must be 2 to 5 characters long")),
    ({"name": "AB"}, ("name", "must match ^[a-z]+$")),
    ({"nick": "abcd"}, ("nick", "must be 0 to 3 characters long")),
    ({"nick": 3}, ("nick", "must be string or null")),
    ({"at": "yesterday"}, ("at", "must be an ISO-8601 date-time such as 2026-03-10T08:00:00+05:00")),
    ({"at": "2026-03-10T08:00:00"}, ("at", "must include a UTC offset (e.g. +05:00 or Z)")),
    ({"kind": "boat"}, ("kind", "must be one of bus, tram")),
    ({"version": 3}, ("version", "must be 2")),
    ({"flag": 1}, ("flag", "must be boolean")),
    ({"ratio": 0.25}, ("ratio", "must be at least 0.5")),
    ({"ratio": 1}, None),
    ({"tags": []}, ("tags", "must hold 1 to 2 items")),
    ({"tags": ["a", "b", "c"]}, ("tags", "must hold 1 to 2 items")),
    ({"tags": ["a", ""]}, ("tags[1]", "must be 1 to any characters long")),
    ({"either": 7}, None),
    ({"either": "ab"}, ("either", "matches none of the allowed shapes")),
    ({"both": 9}, ("both", "must be at least 10")),
    ({"both": "12"}, ("both", "must be integer")),
])
def test_every_keyword_names_the_field(change: dict[str, Any], problem: tuple[str, str] | None) -> None:
    assert body_error({**GOOD, **change}, SHAPE) == problem


def test_missing_fields_are_reported_before_wrong_ones_in_schema_order() -> None:
    body = {k: v for k, v in GOOD.items() if k != "name"} | {"seq": 0}
    assert body_error(body, SHAPE) == ("name", "is required")
    assert body_error({**GOOD, "seq": 0, "name": "A"}, SHAPE) == ("seq", "must be at least 1")
    assert body_error([GOOD], SHAPE) == ("body", "must be object")


def test_a_batch_names_the_tap_and_field_at_fault(app: Any) -> None:
    """``$ref`` into the published schemas (the ticketing ones are installed with the app)."""
    tap = {"seq": 1, "card": "9643 0000 0000 0000 001", "vehicle_id": "bus-1", "route_id": "R12",
           "tapped_at": "2026-03-10T08:00:00+05:00"}
    batch = SCHEMAS["BatchRequest"]
    assert body_error({"taps": [tap] * 3}, batch) is None
    assert body_error({"taps": [tap, {**tap, "seq": "2"}]}, batch) == ("taps[1].seq", "must be integer")
    assert body_error({"taps": [tap, tap, {k: v for k, v in tap.items() if k != "card"}]}, batch) == (
        "taps[2].card", "is required")
    assert body_error({"taps": []}, batch) == ("taps", "must hold 1 to 5000 items")


def test_a_schema_is_checked_as_it_is_when_first_used() -> None:
    """Compiled per schema object: two schemas of the same shape are two compilations, each with its own rules."""
    low: dict[str, Any] = {"type": "integer", "minimum": 1}
    high: dict[str, Any] = {"type": "integer", "minimum": 10}
    assert body_error(5, low) is None
    assert body_error(5, high) == ("body", "must be at least 10")
    assert body_error(0, low) == ("body", "must be at least 1")
