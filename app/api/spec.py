"""Declarative API parameters: one declaration per endpoint parses the request and feeds the OpenAPI document.

    @bp.get("/stops/<stop_id>")
    @endpoint("Stop by id", response="Stop", params=[Param("stop_id", String(), "GTFS stop_id", location="path")])
    def stop(stop_id: str) -> ResponseReturnValue: ...

    @bp.post("/validators/taps")
    @endpoint("One online tap", request="TapRequest", response="TapResult", tag="validators")
    def tap() -> ResponseReturnValue: ...

``request`` names the JSON Schema (in ``app.api.schemas.SCHEMAS``) of a JSON body: the same schema is
published as the operation's ``requestBody`` and checked before the view runs, so a malformed body is a
400 whose ``field`` names the part at fault (``taps[3].seq``).

The declaration is attached to the view function (``endpoint_of(view)``), so the OpenAPI builder
finds it by walking ``app.url_map``: no separate registry to keep in step.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from flask import current_app, request
from flask.typing import ResponseReturnValue

from app.api.schemas import SCHEMAS
from app.errors import BadRequest

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "Boolean",
    "Date",
    "DateTime",
    "Endpoint",
    "Integer",
    "LatLon",
    "Param",
    "ParamType",
    "String",
    "body_error",
    "endpoint",
    "endpoint_of",
    "parse_instant",
]

View = TypeVar("View", bound=Callable[..., ResponseReturnValue])
_ATTR = "qala_endpoint"

# every integer the API takes fits the database's BIGINT unless declared narrower
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# dates and instants the API takes: wide enough for any timetable, history or pass, narrow enough that every
# conversion between time zones stays within datetime's years 1–9999
FIRST_YEAR, LAST_YEAR = 1900, 2100
_YEARS = f"years {FIRST_YEAR} to {LAST_YEAR}"


def parse_instant(text: str) -> dt.datetime:
    """An ISO-8601 instant with a UTC offset, within ``FIRST_YEAR``–``LAST_YEAR``; ``ValueError`` (with a
    message for the client) otherwise."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("must be an ISO-8601 date-time such as 2026-03-10T08:00:00+05:00") from None
    if value.utcoffset() is None:
        raise ValueError("must include a UTC offset (e.g. +05:00 or Z)")
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be within {_YEARS}, got {text!r}")
    return value


class ParamType(ABC):
    """How one parameter's text becomes a value, and the JSON Schema that describes the text."""

    @abstractmethod
    def parse(self, raw: str) -> Any:
        """Return the value or raise ``ValueError`` with a message for the client."""

    @abstractmethod
    def schema(self) -> dict[str, Any]:
        """JSON Schema of the raw parameter."""


@dataclass(frozen=True)
class String(ParamType):
    min_length: int = 1
    max_length: int = 255

    def parse(self, raw: str) -> str:
        value = raw.strip()
        if not self.min_length <= len(value) <= self.max_length:
            raise ValueError(f"must be {self.min_length} to {self.max_length} characters long")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": self.min_length, "maxLength": self.max_length}


@dataclass(frozen=True)
class Integer(ParamType):
    """An integer, within signed 64 bits unless declared narrower."""

    minimum: int | None = None
    maximum: int | None = None

    def parse(self, raw: str) -> int:
        if not re.fullmatch(r"\s*[+-]?[0-9]{1,30}\s*", raw):
            raise ValueError(f"must be an integer, got {raw[:40]!r}")
        value = int(raw)
        low, high = self.bounds()
        if value < low:
            raise ValueError(f"must be at least {low}, got {value}")
        if value > high:
            raise ValueError(f"must be at most {high}, got {value}")
        return value

    def bounds(self) -> tuple[int, int]:
        return (INT64_MIN if self.minimum is None else self.minimum,
                INT64_MAX if self.maximum is None else self.maximum)

    def schema(self) -> dict[str, Any]:
        low, high = self.bounds()
        return {"type": "integer", "minimum": low, "maximum": high}


@dataclass(frozen=True)
class Boolean(ParamType):
    def parse(self, raw: str) -> bool:
        text = raw.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ValueError(f"must be true or false, got {raw!r}")

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Date(ParamType):
    def parse(self, raw: str) -> dt.date:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw.strip()):
            raise ValueError(f"must be a date as YYYY-MM-DD, got {raw!r}")
        try:
            value = dt.date.fromisoformat(raw.strip())
        except ValueError:
            raise ValueError(f"{raw!r} is not a calendar date") from None
        if not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise ValueError(f"must be within {_YEARS}, got {raw!r}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date"}


@dataclass(frozen=True)
class DateTime(ParamType):
    """An ISO-8601 instant; the UTC offset is required so the instant is unambiguous."""

    def parse(self, raw: str) -> dt.datetime:
        return parse_instant(raw)

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


@dataclass(frozen=True)
class LatLon(ParamType):
    """``lat,lon`` in decimal degrees (WGS 84)."""

    def parse(self, raw: str) -> tuple[float, float]:
        parts = raw.split(",")
        try:
            lat, lon = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"must be 'lat,lon' in decimal degrees, got {raw!r}") from None
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"latitude must be within ±90 and longitude within ±180, got {raw!r}")
        return lat, lon

    def schema(self) -> dict[str, Any]:
        number = r"[+-]?[0-9]+(\.[0-9]+)?"
        return {"type": "string", "pattern": f"^{number},{number}$", "examples": ["43.2389,76.9457"]}


@dataclass(frozen=True)
class Param:
    """One query or path parameter; ``config_default`` names an app.config key holding the default."""

    name: str
    type: ParamType
    description: str
    location: Literal["query", "path"] = "query"
    required: bool = False
    default: Any = None
    config_default: str | None = None
    example: Any = None

    def default_value(self) -> Any:
        return current_app.config[self.config_default] if self.config_default else self.default

    def parse(self, raw: str | None) -> Any:
        if raw is None or (raw.strip() == "" and self.location == "query"):
            if self.required:
                raise BadRequest(f"{self.name} is required", field=self.name)
            return self.default_value()
        try:
            return self.type.parse(raw)
        except ValueError as exc:
            raise BadRequest(f"{self.name} {exc}", field=self.name) from None


@dataclass(frozen=True)
class Endpoint:
    """What an endpoint takes and returns; ``response`` names a schema in ``app.api.schemas``."""

    summary: str
    response: str
    params: tuple[Param, ...] = ()
    description: str = ""
    errors: tuple[int, ...] = ()
    tag: str = "schedule"
    media_type: str = "application/json"
    request: str | None = None  # the JSON Schema of the request body, by name in SCHEMAS
    status: int = 200  # of a successful response
    auth: str | None = None  # a key of app.api.openapi.AUTH; None: inferred from the blueprint
    # further answers with a body of their own schema: (status, schema name, description)
    other_responses: tuple[tuple[int, str, str], ...] = ()

    def parse(self, path_values: dict[str, Any]) -> dict[str, Any]:
        """Every declared parameter parsed; undeclared path values pass through as werkzeug gave them."""
        values: dict[str, Any] = dict(path_values)
        for param in self.params:
            raw = path_values.get(param.name) if param.location == "path" else request.args.get(param.name)
            values[param.name] = param.parse(raw)
        if self.request is not None:
            body = request.get_json(silent=True)
            if body is None:
                raise BadRequest("the body must be a JSON document", field="body")
            problem = body_error(body, SCHEMAS[self.request])
            if problem is not None:
                raise BadRequest(f"{problem[0]} {problem[1]}", field=problem[0])
        return values


def endpoint(
    summary: str,
    *,
    response: str,
    params: Sequence[Param] = (),
    description: str = "",
    errors: Sequence[int] = (),
    tag: str = "schedule",
    media_type: str = "application/json",
    request: str | None = None,
    status: int = 200,
    auth: str | None = None,
    other_responses: Sequence[tuple[int, str, str]] = (),
) -> Callable[[View], View]:
    """Declare an endpoint; the view is called with every declared parameter parsed as a keyword (and only
    once its JSON body, when ``request`` names a schema, matches that schema). ``auth`` names how callers
    authenticate (a key of ``app.api.openapi.AUTH``) where the blueprint's default does not fit."""
    spec = Endpoint(summary, response, tuple(params), description, tuple(errors), tag, media_type, request, status,
                    auth, tuple(other_responses))
    if (spec.params or spec.request) and 400 not in spec.errors:
        spec = replace(spec, errors=(400, *spec.errors))  # any parameter can be malformed

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(**path_values: Any) -> ResponseReturnValue:
            return view(**spec.parse(path_values))

        setattr(wrapper, _ATTR, spec)
        return wrapper  # type: ignore[return-value]

    return decorate


def endpoint_of(view: Callable[..., Any]) -> Endpoint | None:
    """The declaration attached to a view by ``@endpoint``, if any."""
    found = getattr(view, _ATTR, None)
    return found if isinstance(found, Endpoint) else None


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
    "boolean": (bool,), "null": (type(None),),
}


Problem = tuple[str, str] | None
_Check = Callable[[Any, str], Problem]


def body_error(value: Any, schema: dict[str, Any], path: str = "body") -> Problem:
    """The first way ``value`` breaks ``schema``, as (field, message); ``None`` when it conforms.

    Covers the JSON Schema subset the published schemas use: ``$ref`` (into SCHEMAS), ``allOf``, ``oneOf``,
    ``type``, ``enum``, ``const``, object ``properties``/``required``, array ``items``/``minItems``/
    ``maxItems``, string ``minLength``/``maxLength``/``pattern``/``format: date-time``, ``minimum``/``maximum``.
    Each schema is compiled once into a chain of checks (a batch of 5,000 taps is checked item by item, and
    walking the schema's dictionaries for every item cost more than the checks themselves).
    """
    return _compiled(schema)(value, path)


_COMPILED: dict[int, tuple[dict[str, Any], _Check]] = {}


def _compiled(schema: dict[str, Any]) -> _Check:
    found = _COMPILED.get(id(schema))
    if found is not None and found[0] is schema:
        return found[1]
    check = _compile(schema)
    _COMPILED[id(schema)] = (schema, check)  # holding the schema keeps its id from being reused
    return check


def _compile(schema: dict[str, Any]) -> _Check:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return lambda value, path: _compiled(SCHEMAS[name])(value, path)  # late: schemas refer to each other
    checks = [_compiled(part) for part in schema.get("allOf", [])]
    if "oneOf" in schema:
        shapes = [_compiled(s) for s in schema["oneOf"]]
        checks.append(lambda value, path: None if any(s(value, path) is None for s in shapes)
                      else (path, "matches none of the allowed shapes"))
    if "type" in schema:
        checks.append(_type_check(_types_of(schema)))
    if "enum" in schema:
        allowed, listed = schema["enum"], ", ".join(map(str, schema["enum"]))
        checks.append(lambda value, path: None if value in allowed else (path, f"must be one of {listed}"))
    if "const" in schema:
        const = schema["const"]
        checks.append(lambda value, path: None if value == const else (path, f"must be {const!r}"))
    by_kind = {dict: _object_check(schema), list: _array_check(schema), str: _string_check(schema),
               int: _integer_check(schema), float: _number_check(schema)}

    def check(value: Any, path: str) -> Problem:
        for one in checks:
            if (problem := one(value, path)) is not None:
                return problem
        kind = by_kind.get(type(value))
        return kind(value, path) if kind is not None else None

    return check


def _type_check(kinds: list[str]) -> _Check:
    allowed = tuple(t for k in kinds for t in _JSON_TYPES[k])
    numeric_only = not {"boolean"} & set(kinds)  # bool is an int to Python, never an integer to JSON
    message = f"must be {' or '.join(kinds)}"

    def check(value: Any, path: str) -> Problem:
        if isinstance(value, allowed) and not (numeric_only and isinstance(value, bool)):
            return None
        return path, message

    return check


def _child(path: str, name: str) -> str:
    return name if path == "body" else f"{path}.{name}"


def _object_check(schema: dict[str, Any]) -> _Check:
    properties = schema.get("properties", {})
    required = [(name, "null" in _types_of(properties[name])) for name in schema.get("required", [])]
    checks = [(name, _compiled(item)) for name, item in properties.items()]

    def check(value: dict[str, Any], path: str) -> Problem:
        for name, nullable in required:
            if name not in value or (value[name] is None and not nullable):
                return _child(path, name), "is required"
        for name, item in checks:
            if name in value and (problem := item(value[name], _child(path, name))) is not None:
                return problem
        return None

    return check


def _types_of(schema: dict[str, Any]) -> list[str]:
    kinds = schema.get("type", [])
    return [kinds] if isinstance(kinds, str) else list(kinds)


def _array_check(schema: dict[str, Any]) -> _Check:
    low, high = schema.get("minItems", 0), schema.get("maxItems")
    message = f"must hold {low} to {high if high is not None else 'any number of'} items"
    items = _compiled(schema["items"]) if "items" in schema else None

    def check(value: list[Any], path: str) -> Problem:
        if len(value) < low or (high is not None and len(value) > high):
            return path, message
        if items is None:
            return None
        for i, item in enumerate(value):
            if (problem := items(item, f"{path}[{i}]")) is not None:
                return problem
        return None

    return check


def _integer_check(schema: dict[str, Any]) -> _Check:
    """Bounds of an integer value; where the schema takes integers, signed 64 bits unless declared narrower."""
    if "integer" not in _types_of(schema):
        return _number_check(schema)
    return _number_check({"minimum": INT64_MIN, "maximum": INT64_MAX, **schema})


def _number_check(schema: dict[str, Any]) -> _Check:
    low, high = schema.get("minimum"), schema.get("maximum")

    def check(value: float, path: str) -> Problem:
        if low is not None and value < low:
            return path, f"must be at least {low}"
        if high is not None and value > high:
            return path, f"must be at most {high}"
        return None

    return check


def _string_check(schema: dict[str, Any]) -> _Check:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    length_message = f"must be {low} to {high if high is not None else 'any'} characters long"
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
    date_time = schema.get("format") == "date-time"

    def check(value: str, path: str) -> Problem:
        if len(value) < low or (high is not None and len(value) > high):
            return path, length_message
        if pattern is not None and not pattern.search(value):
            return path, f"must match {pattern.pattern}"
        if date_time:
            try:
                parse_instant(value)
            except ValueError as exc:
                return path, str(exc)
        return None

    return check
