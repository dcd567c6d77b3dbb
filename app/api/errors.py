"""The one JSON error format of the API: ``{"error": {"code", "message", "field"}}``.

Domain errors (``QalaError``) always answer in it; HTTP errors (404 unknown URL, 405, …) and
unexpected exceptions do so under ``/api/`` and keep Flask's default pages elsewhere.
"""

from __future__ import annotations

import re

from flask import Flask, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from app.errors import QalaError

__all__ = ["API_PREFIX", "error_response", "register_error_handlers"]

API_PREFIX = "/api/"


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    """Build the JSON error body with ``status``."""
    response = jsonify(error={"code": code, "message": message, "field": field})
    response.status_code = status
    return response


def _is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def _http_code(exc: HTTPException) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")


def _http_message(exc: HTTPException) -> str:
    if isinstance(exc, NotFound):
        return f"no API endpoint at {request.path}"
    if isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(sorted(set(exc.valid_methods or ()) - {"HEAD", "OPTIONS"}))
        return f"{request.method} is not allowed on {request.path}; use {allowed}"
    return exc.description or exc.name or "error"


def handle_qala_error(exc: QalaError) -> ResponseReturnValue:
    response = error_response(exc.status, exc.code, exc.message, exc.field)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def handle_http_exception(exc: HTTPException) -> ResponseReturnValue:
    if not _is_api_request() or exc.code is None:
        return exc
    # a body over MAX_CONTENT_LENGTH without a declared length (chunked) is found while reading: the body is at fault
    response = error_response(exc.code, _http_code(exc), _http_message(exc), "body" if exc.code == 413 else None)
    for name, value in exc.get_headers():
        if name.lower() != "content-type":  # keeps e.g. the Allow header of a 405
            response.headers[name] = value
    return response


def handle_unexpected(exc: Exception) -> ResponseReturnValue:
    if not _is_api_request():
        raise exc  # Flask's own 500 handling (and propagation in tests) for pages
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(QalaError, handle_qala_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
