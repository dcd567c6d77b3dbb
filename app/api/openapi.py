"""The OpenAPI 3.1 document, built by walking ``app.url_map`` and the ``@endpoint`` declarations.

Rules under ``/api/`` without a declaration still appear (with a generic operation), so the
document never silently misses an endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.routing import Rule

from app.api.errors import API_PREFIX
from app.api.schemas import EXAMPLES, SCHEMAS, ref
from app.api.spec import Endpoint, Param, endpoint_of

__all__ = ["ERROR_RESPONSES", "build_openapi", "openapi_path"]

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"

# status → (component name, description)
ERROR_RESPONSES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "A parameter or a body field is missing or malformed; `field` names it."),
    401: ("Unauthorized", "Authentication failed; `code` says why (e.g. bad_signature, stale_request)."),
    403: ("Forbidden", "Authenticated, but this account may not do this."),
    404: ("NotFound", "No such id in the active feed, or no such URL."),
    405: ("MethodNotAllowed", "The URL exists but not for this method."),
    409: ("Conflict", "The request conflicts with the state: e.g. an Idempotency-Key or tap key reused with a "
                      "different body, or too little balance."),
    429: ("TooManyRequests", "Rate limited; try again later."),
    500: ("InternalError", "An unexpected error; it was logged."),
    503: ("NoActiveFeed", "No schedule has been imported yet."),
}

TAGS = [
    {"name": "schedule", "description": "Stops, routes and timetables of the active GTFS feed."},
    {"name": "meta", "description": "This document and its human-readable page."},
    {"name": "health", "description": "Liveness and readiness probes."},
    {"name": "validators", "description": "Signed validator requests: online taps, offline batches, deny list."},
    {"name": "cards", "description": "Rider accounts and their cards."},
    {"name": "staff", "description": "Card support for staff (roles support and admin); every action is audited."},
]

_DESCRIPTION = (
    "Qala's public-transport API for Kazakh cities. Every error has the same body: "
    '`{"error": {"code": "...", "message": "...", "field": "<parameter or null>"}}`. '
    "Times are ISO-8601 with the agency's UTC offset; schedule data comes from the active feed version."
)


def openapi_path(rule: Rule) -> str:
    """``/api/v1/stops/<stop_id>`` → ``/api/v1/stops/{stop_id}`` (converters dropped)."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)


def build_openapi(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        view = app.view_functions.get(rule.endpoint)
        spec = endpoint_of(view) if view is not None else None
        if spec is None and not rule.rule.startswith(API_PREFIX):
            continue
        operations = paths.setdefault(openapi_path(rule), {})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operations[method.lower()] = _operation(app, rule, view, spec)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Qala API", "version": API_VERSION, "description": _DESCRIPTION},
        "tags": TAGS,
        "paths": paths,
        "components": {"schemas": SCHEMAS, "responses": _error_components()},
    }


def _operation(app: Flask, rule: Rule, view: Callable[..., Any] | None, spec: Endpoint | None) -> dict[str, Any]:
    if spec is None:
        return _undeclared_operation(rule, view)
    declared = {p.name for p in spec.params if p.location == "path"}
    parameters = [_parameter(app, p) for p in spec.params]
    parameters += [_generic_path_parameter(name) for name in sorted(rule.arguments - declared)]
    operation: dict[str, Any] = {
        "operationId": rule.endpoint,
        "summary": spec.summary,
        "tags": [spec.tag],
        "parameters": parameters,
        "responses": {str(spec.status): _success(spec), **_errors(rule, spec.errors)},
    }
    if spec.request is not None:
        body: dict[str, Any] = {"schema": ref(spec.request)}
        if spec.request in EXAMPLES:
            body["example"] = EXAMPLES[spec.request]
        operation["requestBody"] = {"required": True, "content": {"application/json": body}}
    if spec.description:
        operation["description"] = spec.description
    return operation


def _undeclared_operation(rule: Rule, view: Callable[..., Any] | None) -> dict[str, Any]:
    doc = (view.__doc__ or "").strip().splitlines() if view is not None else []
    return {
        "operationId": rule.endpoint,
        "summary": doc[0] if doc else rule.endpoint,
        "parameters": [_generic_path_parameter(name) for name in sorted(rule.arguments)],
        "responses": {"200": {"description": "Success (no declared schema)."}, **_errors(rule, ())},
    }


def _parameter(app: Flask, param: Param) -> dict[str, Any]:
    schema = param.type.schema()
    default = app.config[param.config_default] if param.config_default else param.default
    if default is not None:
        schema["default"] = default
    description = param.description
    if param.config_default:
        description += f" (default from the {param.config_default} setting)"
    parameter: dict[str, Any] = {
        "name": param.name,
        "in": param.location,
        "required": param.required or param.location == "path",
        "description": description,
        "schema": schema,
    }
    if param.example is not None:
        parameter["example"] = param.example
    return parameter


def _generic_path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _success(spec: Endpoint) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": ref(spec.response)}
    if spec.response in EXAMPLES:
        content["example"] = EXAMPLES[spec.response]
    return {"description": spec.summary, "content": {spec.media_type: content}}


def _errors(rule: Rule, declared: tuple[int, ...]) -> dict[str, Any]:
    statuses = set(declared)
    if rule.rule.startswith(API_PREFIX):
        statuses.add(500)
    return {str(s): {"$ref": f"#/components/responses/{ERROR_RESPONSES[s][0]}"}
            for s in sorted(statuses) if s in ERROR_RESPONSES}


def _error_components() -> dict[str, Any]:
    return {
        name: {"description": text, "content": {"application/json": {"schema": ref("Error")}}}
        for name, text in ERROR_RESPONSES.values()
    }
