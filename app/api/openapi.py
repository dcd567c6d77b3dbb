"""The OpenAPI 3.1 document, built by walking ``app.url_map`` and the ``@endpoint`` declarations.

Rules under ``/api/`` without a declaration still appear (with a generic operation), so the
document never silently misses an endpoint.

It promises only what an operation can answer: 400 everywhere (the input layer refuses bad text in any
parameter), 404 where a path takes a value, 413 where a body is taken, and what its authentication implies —
401 for a bearer token, 401/403 for staff, 401/403/503 (with ``Retry-After``) for signed device requests —
besides the statuses each endpoint declares. No blanket 500: a 500 is a bug, which the fuzzing test
(``tests/test_fuzz.py``) looks for. ``securitySchemes`` say how each operation authenticates, and ``links``
chain operations (register → log in → my cards; stop search → arrivals; card issue → card detail) so a
stateful fuzzer can follow them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter, Rule

from app.api.errors import API_PREFIX
from app.api.schemas import EXAMPLES, SCHEMAS, ref
from app.api.spec import Endpoint, Integer, Param, endpoint_of

__all__ = ["AUTH", "ERROR_RESPONSES", "LINKS", "SECURITY_SCHEMES", "build_openapi", "openapi_path"]

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"

# status → (component name, description)
ERROR_RESPONSES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "A parameter or a body field is missing or malformed (control characters, dates outside "
                        "1900–2100, integers beyond 64 bits, JSON nested too deep or with NaN included); `field` "
                        "names it."),
    401: ("Unauthorized", "Authentication failed; `code` says why (e.g. bad_signature, stale_request)."),
    403: ("Forbidden", "Authenticated, but this account may not do this."),
    404: ("NotFound", "No such id in the active feed, or no such URL."),
    405: ("MethodNotAllowed", "The URL exists but not for this method."),
    409: ("Conflict", "The request conflicts with the state: e.g. an Idempotency-Key or tap key reused with a "
                      "different body, or too little balance."),
    413: ("PayloadTooLarge", "The request body is larger than the server takes; refused before it was read."),
    422: ("Unprocessable", "Well-formed, but names something that cannot be used here (e.g. an unknown rider)."),
    429: ("TooManyRequests", "Rate limited or locked out after failed attempts; `Retry-After` says when to try "
                             "again."),
    503: ("Unavailable", "No schedule has been imported yet, or a store this request needs is unreachable; "
                         "`Retry-After`, when present, says when to try again."),
}
_RETRY_AFTER = {"description": "seconds to wait before trying again", "schema": {"type": "integer", "minimum": 0}}

_DEVICE_HEADERS = {
    "deviceId": ("X-Qala-Device", "the device id"),
    "deviceKey": ("X-Qala-Key", "the id of the device key that signed"),
    "deviceTimestamp": ("X-Qala-Timestamp", "Unix seconds; within 5 minutes of the server clock"),
    "deviceNonce": ("X-Qala-Nonce", "never reused by the device"),
    "deviceSignature": ("X-Qala-Signature", "hex HMAC-SHA256 with the device key of the method, path, query string, "
                                            "timestamp, nonce, Idempotency-Key and the body's SHA-256, one a line"),
}
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "A rider's or staff member's token from `POST /api/v1/riders/login`."},
    "staffSession": {"type": "apiKey", "in": "cookie", "name": "qala_staff",
                     "description": "The staff pages' session cookie (reports only)."},
    **{name: {"type": "apiKey", "in": "header", "name": header, "description": f"Device signature: {text}."}
       for name, (header, text) in _DEVICE_HEADERS.items()},
    "webhookSignature": {"type": "apiKey", "in": "header", "name": "X-Sandbox-Signature",
                         "description": "The payment provider's signature of the webhook body."},
}
# how each kind of caller authenticates: (security requirements, statuses that follow from them)
AUTH: dict[str, tuple[list[dict[str, list[str]]], tuple[int, ...]]] = {
    "public": ([], ()),
    "rider": ([{"bearer": []}], (401,)),
    "staff": ([{"bearer": []}], (401, 403)),
    "staff_or_session": ([{"bearer": []}, {"staffSession": []}], (401, 403)),
    # the signature's nonce is claimed in Redis: without it, a 503 with Retry-After
    "device": ([{name: [] for name in _DEVICE_HEADERS}], (401, 403, 503)),
    "webhook": ([{"webhookSignature": []}], (401,)),
}
_AUTH_BY_BLUEPRINT = {"validators": "device", "avl": "device", "channels": "device", "cards": "rider",
                      "payments": "rider", "staff": "staff", "reports": "staff_or_session"}
_AUTH_BY_ENDPOINT = {"cards.register": "public", "cards.login": "public", "cards.anonymous_balance": "public",
                     "payments.webhook": "webhook"}


def _link(operation_id: str, description: str, **values: Any) -> dict[str, Any]:
    body = values.pop("request_body", None)
    link: dict[str, Any] = {"operationId": operation_id, "description": description}
    if values:
        link["parameters"] = values
    if body is not None:
        link["requestBody"] = body
    return link


_CARD_ID = "$response.body#/card_id"
# (operationId, status) → links from that response; a link whose target is not in the document is left out
LINKS: dict[tuple[str, int], dict[str, dict[str, Any]]] = {
    ("cards.register", 201): {"LogIn": _link("cards.login", "Log in as the rider just registered", request_body={
        "login": "$request.body#/login", "password": "$request.body#/password"})},
    ("cards.login", 200): {"MyCards": _link("cards.my_cards", "The cards of the rider logged in "
                                                              "(send the token as a bearer token)")},
    ("cards.my_cards", 200): {
        "CardDetail": _link("cards.card_detail", "The first card", card_id="$response.body#/cards/0/card_id"),
        "CardHistory": _link("cards.card_history", "The first card's history",
                             card_id="$response.body#/cards/0/card_id")},
    ("cards.link_card", 200): {"CardDetail": _link("cards.card_detail", "The card just linked", card_id=_CARD_ID),
                               "CardHistory": _link("cards.card_history", "Its history", card_id=_CARD_ID)},
    ("staff.issue", 201): {
        "CardDetail": _link("cards.card_detail", "The card just issued (its rider's view)", card_id=_CARD_ID),
        "LinkCard": _link("cards.link_card", "Link the card just issued with its number and code", request_body={
            "card": "$response.body#/number", "code": "$response.body#/code"}),
        "Block": _link("staff.block", "Block the card just issued", card_id=_CARD_ID),
        "Audit": _link("staff.audit", "The audit log of the card just issued", card_id=_CARD_ID)},
    ("stops.search", 200): {
        name: _link(target, text, stop_id="$response.body#/stops/0/stop_id") for name, target, text in (
            ("StopDetail", "stops.detail", "The first stop found"),
            ("StopArrivals", "stops.arrivals", "Its next buses"),
            ("StopDepartures", "stops.departures", "Its departures today"))},
    ("routes.index", 200): {"RouteDetail": _link("routes.detail", "The first route",
                                                 route_id="$response.body#/routes/0/route_id")},
    ("payments.create_intent", 201): {
        "PaymentIntent": _link("payments.intent_detail", "The intent just started",
                               intent_id="$response.body#/intent_id"),
        "SandboxPay": _link("payments.sandbox_pay", "Pay it at the sandbox provider",
                            intent_id="$response.body#/intent_id"),
        "ProviderWebhook": _link("payments.webhook", "The provider's confirmation of a payment",
                                 provider="$response.body#/provider")},
}

TAGS = [
    {"name": "schedule", "description": "Stops, routes and timetables of the active GTFS feed."},
    {"name": "meta", "description": "This document and its human-readable page."},
    {"name": "health", "description": "Liveness and readiness probes."},
    {"name": "validators", "description": "Signed validator requests: online taps, offline batches, deny list."},
    {"name": "cards", "description": "Rider accounts and their cards."},
    {"name": "staff", "description": "Card support for staff (roles support and admin); every action is audited."},
    {"name": "payments", "description": "Rider top-ups: payment intents credited only by the provider's signed "
                                        "confirmation (the demo's provider is a labelled sandbox)."},
    {"name": "channels", "description": "Kiosk and bank top-ups, signed by registered channel devices; audited."},
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
    _add_links(paths)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Qala API", "version": API_VERSION, "description": _DESCRIPTION},
        "tags": TAGS,
        "paths": paths,
        "components": {"schemas": SCHEMAS, "responses": _error_components(), "securitySchemes": SECURITY_SCHEMES},
    }


def _auth(rule: Rule, spec: Endpoint | None) -> str:
    if spec is not None and spec.auth is not None:
        return spec.auth
    blueprint = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else ""
    return _AUTH_BY_ENDPOINT.get(rule.endpoint) or _AUTH_BY_BLUEPRINT.get(blueprint, "public")


def _implied_statuses(rule: Rule, spec: Endpoint | None) -> set[int]:
    """What any operation of this rule can answer besides its declaration (see the module docstring)."""
    statuses = {400} | set(AUTH[_auth(rule, spec)][1])
    if rule.arguments:
        statuses.add(404)
    if spec is not None and spec.request is not None:
        statuses.add(413)
    return statuses


def _add_links(paths: dict[str, dict[str, Any]]) -> None:
    operations = {op["operationId"]: op for ops in paths.values() for op in ops.values()}
    for (source, status), links in LINKS.items():
        response = operations.get(source, {}).get("responses", {}).get(str(status))
        present = {name: link for name, link in links.items() if link["operationId"] in operations}
        if response is not None and present:
            response["links"] = present


def _operation(app: Flask, rule: Rule, view: Callable[..., Any] | None, spec: Endpoint | None) -> dict[str, Any]:
    if spec is None:
        return _undeclared_operation(rule, view)
    declared = {p.name for p in spec.params if p.location == "path"}
    parameters = [_parameter(app, p) for p in spec.params]
    parameters += [_generic_path_parameter(rule, name) for name in sorted(rule.arguments - declared)]
    operation: dict[str, Any] = {
        "operationId": rule.endpoint,
        "summary": spec.summary,
        "tags": [spec.tag],
        "parameters": parameters,
        "responses": {str(spec.status): _success(spec), **_errors(rule, spec)},
        "security": AUTH[_auth(rule, spec)][0],
    }
    for status, schema_name, text in spec.other_responses:
        operation["responses"][str(status)] = {"description": text, "content": {
            spec.media_type: {"schema": ref(schema_name)}}}
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
        "parameters": [_generic_path_parameter(rule, name) for name in sorted(rule.arguments)],
        "responses": {"200": {"description": "Success (no declared schema)."}, **_errors(rule, None)},
        "security": AUTH[_auth(rule, None)][0],
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


def _generic_path_parameter(rule: Rule, name: str) -> dict[str, Any]:
    """A path value without a ``Param``: as werkzeug's converter takes it (``<int:card_id>``: 0 to 2^63 − 1)."""
    converter = rule._converters.get(name)  # werkzeug keeps no public map of a rule's converters
    schema: dict[str, Any] = {"type": "string"}
    if isinstance(converter, IntegerConverter):
        schema = Integer(0).schema()
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _success(spec: Endpoint) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": ref(spec.response)}
    if spec.response in EXAMPLES:
        content["example"] = EXAMPLES[spec.response]
    return {"description": spec.summary, "content": {spec.media_type: content}}


def _errors(rule: Rule, spec: Endpoint | None) -> dict[str, Any]:
    statuses = (set(spec.errors) if spec is not None else set()) | _implied_statuses(rule, spec)
    if spec is not None:
        statuses -= {status for status, _, _ in spec.other_responses}
    return {str(s): {"$ref": f"#/components/responses/{ERROR_RESPONSES[s][0]}"}
            for s in sorted(statuses) if s in ERROR_RESPONSES}


def _error_components() -> dict[str, Any]:
    components: dict[str, Any] = {}
    for status, (name, text) in ERROR_RESPONSES.items():
        components[name] = {"description": text, "content": {"application/json": {"schema": ref("Error")}}}
        if status in (429, 503):
            components[name]["headers"] = {"Retry-After": _RETRY_AFTER}
    return components
