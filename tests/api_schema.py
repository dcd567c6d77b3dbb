"""A small JSON Schema checker (the subset our OpenAPI schemas use), so tests can hold every response
to the schema the API publishes for it."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

__all__ = ["schema_errors"]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
    "boolean": (bool,), "null": (type(None),),
}


def _is_type(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def schema_errors(value: Any, schema: dict[str, Any], components: dict[str, Any], path: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema`` (``$ref`` resolved in ``components``), as readable strings."""
    if "$ref" in schema:
        return schema_errors(value, components[schema["$ref"].rsplit("/", 1)[-1]], components, path)
    errors: list[str] = []
    for part in schema.get("allOf", []):
        errors += schema_errors(value, part, components, path)
    if "oneOf" in schema:
        matches = [s for s in schema["oneOf"] if not schema_errors(value, s, components, path)]
        if len(matches) != 1:
            errors.append(f"{path}: matches {len(matches)} of oneOf")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: {value!r} != {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is_type(value, k) for k in kinds):
            return [*errors, f"{path}: {value!r} is not {kinds}"]
    if isinstance(value, dict):
        errors += _object_errors(value, schema, components, path)
    elif isinstance(value, list):
        errors += _array_errors(value, schema, components, path)
    elif isinstance(value, str):
        errors += _string_errors(value, schema, path)
    elif isinstance(value, int | float) and "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} < {schema['minimum']}")
    return errors


def _object_errors(value: dict[str, Any], schema: dict[str, Any], components: dict[str, Any], path: str) -> list[str]:
    errors = [f"{path}: missing {name}" for name in schema.get("required", []) if name not in value]
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for name, item in value.items():
        if name in properties:
            errors += schema_errors(item, properties[name], components, f"{path}.{name}")
        elif isinstance(extra, dict):
            errors += schema_errors(item, extra, components, f"{path}.{name}")
    return errors


def _array_errors(value: list[Any], schema: dict[str, Any], components: dict[str, Any], path: str) -> list[str]:
    errors = []
    if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
        errors.append(f"{path}: {len(value)} items")
    for i, item in enumerate(value):
        errors += schema_errors(item, schema.get("items", {}), components, f"{path}[{i}]")
    return errors


def _string_errors(value: str, schema: dict[str, Any], path: str) -> list[str]:
    errors = []
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    try:
        if schema.get("format") == "date":
            dt.date.fromisoformat(value)
        elif schema.get("format") == "date-time" and dt.datetime.fromisoformat(value).utcoffset() is None:
            errors.append(f"{path}: {value!r} has no UTC offset")
    except ValueError:
        errors.append(f"{path}: {value!r} is not a {schema['format']}")
    return errors
