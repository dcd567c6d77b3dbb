"""Redis or the database away is a 503 with ``Retry-After``, never a 500: the error handlers, and the same answer
for WSGI middleware.

Which errors: redis-py's ``ConnectionError`` (refused, reset, and its subclass ``BusyLoadingError`` while a
restarted server loads its data), ``TimeoutError`` and ``ReadOnlyError`` (a replica after a failover) answer
``redis_unavailable``; the database's operational errors — a connection lost or terminated, a server shutting
down or starting, a deadlock or serialization failure, the pool exhausted (SQLAlchemy's ``OperationalError``,
``DisconnectionError`` and ``TimeoutError``, psycopg's ``OperationalError`` from the raw fast-path connection) —
answer ``service_unavailable``: nothing was committed and the same request may simply be sent again. The body is
the API's one JSON error shape (``app.api.errors``); pages get a short text. Every such answer is logged as a
warning (one line, no traceback, no SQL or parameters: the outage, not a bug).
"""

from __future__ import annotations

import json
import logging

import psycopg
from flask import Flask, Response, request
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.cache import REDIS_UNREACHABLE

__all__ = ["DATABASE_ERRORS", "RETRY_AFTER_S", "database_unavailable_json", "redis_unavailable_json",
           "register_unavailable_handlers"]

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
DATABASE_ERRORS: tuple[type[Exception], ...] = (OperationalError, DisconnectionError, PoolTimeoutError,
                                                psycopg.OperationalError)
_REDIS_MESSAGE = "a backing service (Redis) is unavailable; retry after the Retry-After delay"
_DATABASE_MESSAGE = "the database is unavailable or busy; nothing was changed; retry after the Retry-After delay"


def _json(code: str, message: str) -> bytes:
    return (json.dumps({"error": {"code": code, "message": message, "field": None}}, separators=(",", ":"))
            + "\n").encode()


def redis_unavailable_json() -> bytes:
    """The 503 body, for callers outside a Flask request (``app.api.validators.FastTaps``)."""
    return _json("redis_unavailable", _REDIS_MESSAGE)


def database_unavailable_json() -> bytes:
    return _json("service_unavailable", _DATABASE_MESSAGE)


def _unavailable(code: str, message: str) -> Response:
    if request.path.startswith("/api/"):
        response = Response(_json(code, message), status=503, mimetype="application/json")
    else:
        response = Response("Service temporarily unavailable; retry shortly.\n", status=503, mimetype="text/plain")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def handle_redis_unavailable(exc: Exception) -> Response:
    log.warning("Redis unavailable on %s %s: %s: %s", request.method, request.path, type(exc).__name__, exc)
    return _unavailable("redis_unavailable", _REDIS_MESSAGE)


def handle_database_unavailable(exc: Exception) -> Response:
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy's own text carries the statement and its parameters
    first_line = (str(cause).splitlines() or [""])[0][:200]
    log.warning("database unavailable on %s %s: %s: %s", request.method, request.path, type(cause).__name__,
                first_line)
    return _unavailable("service_unavailable", _DATABASE_MESSAGE)


def register_unavailable_handlers(app: Flask) -> None:
    for error in REDIS_UNREACHABLE:
        app.register_error_handler(error, handle_redis_unavailable)
    for error in DATABASE_ERRORS:
        app.register_error_handler(error, handle_database_unavailable)
