"""The input layer: bad input is a 400 naming the field (or a 413) before any view runs, never a 500.

Every request, before its view (``before_request``, ahead of the blueprints' own hooks such as the device
signature check), is refused when it carries:

- a C0 control character (NUL above all: PostgreSQL refuses it in text) in a path segment, a query parameter
  or a form field, or, escaped, in a JSON string — tab, line feed and carriage return stay allowed where text
  is (query, form and JSON), never in a path segment;
- a path segment taken as an integer (``<int:card_id>``) outside signed 64 bits (the database's BIGINT);
- a JSON body nested deeper than ``MAX_JSON_DEPTH``, measured on the raw bytes *before* ``json.loads`` recurses
  (100,000 ``[`` would raise RecursionError inside the parser), or holding ``NaN``/``Infinity`` or a number
  that overflows to infinity (Python's json accepts both; JSON has neither).

Integer ranges inside bodies and parameters, and date-time ranges, are the declarations' job
(``app.api.spec``: int64 by default, years 1900–2100); the body size is ``BodyLimit``'s, in front of Flask.

The body checks run at C speed (splits, translations, substring searches, a regular expression or two): a
5,000-tap batch of 680 kB took 7 ms against 3–7 ms for its ``json.loads`` in one throwaway timing, a login body
microseconds. The displays' polls and the online taps that ``BoardPolls`` and ``FastTaps`` answer before Flask
never reach them (their own parsing refuses what they cannot take and hands it to Flask, which refuses it here).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.api.errors import API_PREFIX
from app.api.spec import INT64_MAX, INT64_MIN
from app.errors import BadRequest

__all__ = ["MAX_JSON_DEPTH", "BodyLimit", "check_json_body", "check_request", "json_depth", "outside_strings",
           "register_input_layer"]

MAX_JSON_DEPTH = 32

_PATH_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # all C0 but tab, line feed and carriage return
# a JSON string's escaped control character (an even run of backslashes before it is escaped backslashes)
_ESCAPED_CONTROL = re.compile(rb'(?<!\\)(?:\\\\)*\\(?:u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F])|[bf])')
# a string, or an unterminated one running to the end: every quote starts a match that consumes, so a body of
# unmatched quotes costs one pass, not one pass per quote
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_NON_FINITE = re.compile(rb"NaN|Infinity")
# only a number with a 3-digit exponent or 200 digits in a row can overflow a float to infinity
_HUGE_EXPONENT = re.compile(rb"[eE][+-]?[0-9]{3}")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 200


def check_request() -> None:
    """The ``before_request`` hook: raise ``BadRequest`` (400, ``field`` named) for input no view may see."""
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and _PATH_CONTROLS.search(value):
            raise BadRequest(f"{name} must not contain control characters", field=name)
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            raise BadRequest(f"{name} must be at most {INT64_MAX}", field=name)
    _check_text(request.args.items(multi=True), "query parameter")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        _check_text(request.form.items(multi=True), "form field")
    elif request.is_json:
        check_json_body(_body())


def _body() -> bytes:
    """The body; one sent without a length (chunked) and reaching ``MAX_CONTENT_LENGTH`` is a 413 — werkzeug
    stops reading it at the limit without a word, and the truncated rest would pass for bad JSON."""
    request.max_content_length = body_limit(current_app.config, request.path)
    data = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(data) >= limit:
        request.stream.read(1)  # raises RequestEntityTooLarge when anything is left
        raise RequestEntityTooLarge()
    return data


def _check_text(pairs: Iterable[tuple[str, str]], kind: str) -> None:
    for name, value in pairs:
        if _TEXT_CONTROLS.search(name):
            raise BadRequest(f"a {kind} name must not contain control characters", field=name)
        if _TEXT_CONTROLS.search(value):
            raise BadRequest(f"{name} must not contain control characters", field=name)


def check_json_body(data: bytes) -> None:
    """Refuse a JSON body too deep, non-finite, or with control characters in a string — without recursing."""
    if not data:
        return
    bare = outside_strings(data)  # brackets, NaN and exponents inside strings are text
    if json_depth(bare) > MAX_JSON_DEPTH:
        raise BadRequest(f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep", field="body")
    if _NON_FINITE.search(bare) or (_huge_number(bare) and _overflows(data)):
        raise BadRequest("numbers must be finite (NaN and Infinity are not JSON)", field="body")
    if _maybe_escaped_control(data) and _ESCAPED_CONTROL.search(data):
        raise BadRequest("strings must not contain control characters (other than tab and newline)",
                         field=_control_field(data))


def outside_strings(data: bytes) -> bytes:
    """``data`` with its JSON strings blanked. Without a backslash no quote is escaped, and splitting at the quotes
    (C speed: a 5,000-tap batch in about a millisecond) alternates outside and inside exactly; otherwise a regular
    expression that knows escapes does it (ten times slower)."""
    if b"\\" not in data:
        return b"".join(data.split(b'"')[0::2])
    return _JSON_STRING.sub(b"", data)


def _maybe_escaped_control(data: bytes) -> bool:
    """A quick look (C speed) for what ``_ESCAPED_CONTROL`` can match: Cyrillic escapes (\\u04xx) never do."""
    return b"\\u00" in data or b"\\b" in data or b"\\f" in data


def _huge_number(bare: bytes) -> bool:
    return _HUGE_EXPONENT.search(bare) is not None or _LONG_DIGITS in bare.translate(_DIGITS_AS_ZERO)


def _overflows(data: bytes) -> bool:
    """Whether a number of ``data`` (nested no deeper than allowed) parses to an infinite float."""
    found: list[float] = []

    def parse_float(text: str) -> float:
        value = float(text)
        if math.isinf(value):
            found.append(value)
        return value

    try:
        json.loads(data, parse_float=parse_float)
    except ValueError:
        return False  # not JSON at all: the view says so
    return bool(found)


def json_depth(data: bytes) -> int:
    """The deepest bracket nesting of ``data``, whose strings are already blanked out (at most: when no more
    than ``MAX_JSON_DEPTH`` brackets open, their count is the answer)."""
    brackets = data.translate(None, _NOT_BRACKETS)
    openers = brackets.count(b"[") + brackets.count(b"{")
    if openers <= MAX_JSON_DEPTH:
        return openers  # a bound, and the usual small body's answer without a loop
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    break
        else:
            depth -= 1
    return deepest


def _control_field(data: bytes) -> str:
    """The path (``taps[3].card``) of the first string holding a control character; ``body`` if unparseable."""
    try:
        value = json.loads(data)  # safe: the depth was checked
    except ValueError:
        return "body"
    return _find_control(value, "body") or "body"


def _find_control(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if _TEXT_CONTROLS.search(value) else None
    if isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _find_control(item, f"{path}[{i}]")) is not None:
                return found
    if isinstance(value, dict):
        for name, item in value.items():
            child = name if path == "body" else f"{path}.{name}"
            if _TEXT_CONTROLS.search(name):
                return child
            if (found := _find_control(item, child)) is not None:
                return found
    return None


VALIDATORS_PREFIX = "/api/v1/validators/"
TAPS_PATH = VALIDATORS_PREFIX + "taps"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def body_limit(config: Mapping[str, Any], path: str) -> int | None:
    """The largest body ``path`` takes, in bytes: validators have limits of their own (an online tap is small; an
    offline batch of 5,000 taps may pass the global 1 MiB), everything else ``MAX_CONTENT_LENGTH``."""
    if path.startswith(VALIDATORS_PREFIX):
        return int(config["TAP_MAX_BODY" if path == TAPS_PATH else "VALIDATOR_MAX_BODY"])
    limit = config["MAX_CONTENT_LENGTH"]
    return None if limit is None else int(limit)


def too_large(environ: dict[str, Any], start_response: Callable[..., Any], limit: int) -> Iterable[bytes]:
    """413, the body unread and the connection closed (the unread rest must not be taken for the next request);
    the API's JSON error under /api/, text elsewhere."""
    message = f"the request body is larger than {limit} bytes"
    if str(environ.get("PATH_INFO", "")).startswith(API_PREFIX):
        body = json.dumps({"error": {"code": "request_entity_too_large", "message": message,
                                     "field": "body"}}).encode()
        kind = "application/json"
    else:
        body, kind = message.encode(), "text/plain; charset=utf-8"
    start_response("413 Request Entity Too Large", [("Content-Type", kind), ("Content-Length", str(len(body))),
                                                    ("Connection", "close")])
    return [body]


class BodyLimit:
    """WSGI middleware, outermost: a request declaring a body over its limit (``body_limit``) is answered 413 at
    once, unread, with the connection closed (the unread rest must not be taken for the next request).

    Flask enforces the same limit when a view reads the body, but the middlewares in front of Flask
    (``FastTaps``) read it themselves; this one check keeps them all from reading 100 MB."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.app = app
        self.next = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        declared = environ.get("CONTENT_LENGTH")
        limit = body_limit(self.app.config, str(environ.get("PATH_INFO", "")))
        if declared and limit is not None and declared.isdigit() and int(declared) > limit:
            return too_large(environ, start_response, limit)
        return self.next(environ, start_response)


def register_input_layer(app: Flask) -> None:
    """Check every request before its view; put the body limit in front of every other middleware."""
    app.before_request(check_request)
    app.wsgi_app = BodyLimit(app, app.wsgi_app)  # type: ignore[method-assign]
