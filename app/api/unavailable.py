"""Redis away is a 503 with ``Retry-After``, never a 500: the error handler, and the same answer for WSGI middleware.

Which errors: redis-py's ``ConnectionError`` (refused, reset, and its subclass ``BusyLoadingError`` while a
restarted server loads its data), ``TimeoutError`` and ``ReadOnlyError`` (a replica after a failover). The body is
the API's one JSON error shape (``app.api.errors``) with code ``redis_unavailable``; pages get a short text.
Every such answer is logged as a warning (one line, no traceback: the outage, not a bug).
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["REDIS_ERRORS", "RETRY_AFTER_S", "redis_unavailable_json", "register_unavailable_handlers"]

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, ReadOnlyError)
_MESSAGE = "a backing service (Redis) is unavailable; retry after the Retry-After delay"


def redis_unavailable_json() -> bytes:
    """The 503 body, for callers outside a Flask request (``app.api.validators.FastTaps``)."""
    error = {"code": "redis_unavailable", "message": _MESSAGE, "field": None}
    return (json.dumps({"error": error}, separators=(",", ":")) + "\n").encode()


def handle_redis_unavailable(exc: Exception) -> Response:
    log.warning("Redis unavailable on %s %s: %s: %s", request.method, request.path, type(exc).__name__, exc)
    if request.path.startswith("/api/"):
        response = Response(redis_unavailable_json(), status=503, mimetype="application/json")
    else:
        response = Response("Service temporarily unavailable; retry shortly.\n", status=503, mimetype="text/plain")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def register_unavailable_handlers(app: Flask) -> None:
    for error in REDIS_ERRORS:
        app.register_error_handler(error, handle_redis_unavailable)
