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
]

View = TypeVar("View", bound=Callable[..., ResponseReturnValue])
_ATTR = "qala_endpoint"


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
    minimum: int | None = None
    maximum: int | None = None

    def parse(self, raw: str) -> int:
        if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", raw):
            raise ValueError(f"must be an integer, got {raw!r}")
        value = int(raw)
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {self.maximum}, got {value}")
        return value

    def schema(self) -> dict[str, Any]:
        bounds = {"minimum": self.minimum, "maximum": self.maximum}
        return {"type": "integer", **{k: v for k, v in bounds.items() if v is not None}}


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
            return dt.date.fromisoformat(raw.strip())
        except ValueError:
            raise ValueError(f"{raw!r} is not a calendar date") from None

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date"}


@dataclass(frozen=True)
class DateTime(ParamType):
    """An ISO-8601 instant; the UTC offset is required so the instant is unambiguous."""

    def parse(self, raw: str) -> dt.datetime:
        try:
            value = dt.datetime.fromisoformat(raw.strip())
        except ValueError:
            raise ValueError(f"must be an ISO-8601 date-time such as 2026-03-10T08:00:00+05:00, got {raw!r}") from None
        if value.utcoffset() is None:
            raise ValueError("must include a UTC offset (e.g. +05:00 or Z)")
        return value

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
) -> Callable[[View], View]:
    """Declare an endpoint; the view is called with every declared parameter parsed as a keyword (and only
    once its JSON body, when ``request`` names a schema, matches that schema)."""
    spec = Endpoint(summary, response, tuple(params), description, tuple(errors), tag, media_type, request, status)
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


def _is_type(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, _JSON_TYPES[kind])


def body_error(value: Any, schema: dict[str, Any], path: str = "body") -> tuple[str, str] | None:
    """The first way ``value`` breaks ``schema``, as (field, message); ``None`` when it conforms.

    Covers the JSON Schema subset the published schemas use: ``$ref`` (into SCHEMAS), ``allOf``, ``oneOf``,
    ``type``, ``enum``, ``const``, object ``properties``/``required``, array ``items``/``minItems``/
    ``maxItems``, string ``minLength``/``maxLength``/``pattern``/``format: date-time``, ``minimum``/``maximum``.
    """
    if "$ref" in schema:
        return body_error(value, SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]], path)
    for part in schema.get("allOf", []):
        if (problem := body_error(value, part, path)) is not None:
            return problem
    if "oneOf" in schema and not any(body_error(value, s, path) is None for s in schema["oneOf"]):
        return path, "matches none of the allowed shapes"
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is_type(value, k) for k in kinds):
            return path, f"must be {' or '.join(kinds)}"
    if "enum" in schema and value not in schema["enum"]:
        return path, f"must be one of {', '.join(map(str, schema['enum']))}"
    if "const" in schema and value != schema["const"]:
        return path, f"must be {schema['const']!r}"
    if isinstance(value, dict):
        return _object_error(value, schema, path)
    if isinstance(value, list):
        return _array_error(value, schema, path)
    if isinstance(value, str):
        return _string_error(value, schema, path)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return path, f"must be at least {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return path, f"must be at most {schema['maximum']}"
    return None


def _child(path: str, name: str) -> str:
    return name if path == "body" else f"{path}.{name}"


def _object_error(value: dict[str, Any], schema: dict[str, Any], path: str) -> tuple[str, str] | None:
    for name in schema.get("required", []):
        if name not in value or (value[name] is None and "null" not in _types_of(schema["properties"][name])):
            return _child(path, name), "is required"
    for name, item in schema.get("properties", {}).items():
        if name in value and (problem := body_error(value[name], item, _child(path, name))) is not None:
            return problem
    return None


def _types_of(schema: dict[str, Any]) -> list[str]:
    kinds = schema.get("type", [])
    return [kinds] if isinstance(kinds, str) else list(kinds)


def _array_error(value: list[Any], schema: dict[str, Any], path: str) -> tuple[str, str] | None:
    low, high = schema.get("minItems", 0), schema.get("maxItems")
    if len(value) < low or (high is not None and len(value) > high):
        return path, f"must hold {low} to {high if high is not None else 'any number of'} items"
    for i, item in enumerate(value):
        if (problem := body_error(item, schema.get("items", {}), f"{path}[{i}]")) is not None:
            return problem
    return None


def _string_error(value: str, schema: dict[str, Any], path: str) -> tuple[str, str] | None:
    if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
        return path, f"must be {schema.get('minLength', 0)} to {schema.get('maxLength', 'any')} characters long"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return path, f"must match {schema['pattern']}"
    if schema.get("format") == "date-time":
        try:
            offset = dt.datetime.fromisoformat(value).utcoffset()
        except ValueError:
            return path, "must be an ISO-8601 date-time such as 2026-03-10T08:00:00+05:00"
        if offset is None:
            return path, "must include a UTC offset (e.g. +05:00 or Z)"
    return None
