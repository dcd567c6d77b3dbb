"""One unit of work per mutating request, honouring ``Idempotency-Key``.

The stored response is written in the same transaction as the effect, so a request either happened
(and its response is on record) or did not happen at all. Same key + same body → the stored response
with ``Idempotent-Replayed: true``; same key + different body → 409. Unique-key races and PostgreSQL
deadlocks/serialisation failures are retried with a fresh session.

Secrets are never stored: a response's secret fields (a new card's ``number`` and ``code``, any ``token`` or
``password``, at any depth) are dropped from the record, which names them under ``shown_only_once`` — so a replay
answers the same status and body without them. Records expire after ``IDEMPOTENCY_TTL_S``: an older record is
ignored (and deleted) when its key comes again, and ``prune_idempotency`` deletes the rest on a schedule (the
worker loop and ``qala idempotency prune``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Collection
from typing import Any, cast

from flask import Response, current_app, jsonify, request
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.errors import BadRequest
from app.extensions import get_db
from app.instants import as_utc
from app.models import IdempotencyRecord
from app.ticketing.errors import Conflict

__all__ = [
    "SECRET_FIELDS",
    "SHOWN_ONCE",
    "Work",
    "is_expired",
    "prune_idempotency",
    "redact",
    "run_mutation",
]

Work = Callable[[Session], tuple[dict[str, Any], int]]
ATTEMPTS = 3
# Keys whose values a response may show once but a record must never hold.
SECRET_FIELDS: frozenset[str] = frozenset({"number", "code", "token", "password"})
SHOWN_ONCE = "shown_only_once"  # the stored body's list of the secret fields it left out


def redact(payload: Any, secret_fields: Collection[str] = SECRET_FIELDS) -> tuple[Any, list[str]]:
    """``payload`` without its secret fields (at any depth), and the sorted names of those it dropped."""
    dropped: set[str] = set()

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            kept = {}
            for name, item in value.items():
                if name in secret_fields:
                    dropped.add(name)
                else:
                    kept[name] = walk(item)
            return kept
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(payload), sorted(dropped)


def _stored_response(payload: dict[str, Any], secret_fields: Collection[str]) -> dict[str, Any]:
    kept: dict[str, Any]
    kept, dropped = redact(payload, secret_fields)
    if dropped:
        kept[SHOWN_ONCE] = dropped
    return kept


def _request_hash() -> str:
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data())
    return digest.hexdigest()


def _replay(record: IdempotencyRecord, request_hash: str) -> Response:
    if record.request_hash != request_hash:
        raise Conflict("this Idempotency-Key was used with a different request body")
    response = jsonify(record.response)
    response.status_code = record.status_code
    response.headers["Idempotent-Replayed"] = "true"
    return response


def is_expired(created_at: dt.datetime, now: dt.datetime, ttl_s: float) -> bool:
    """Whether a record made at ``created_at`` is older than ``ttl_s`` (SQLite hands back naive UTC)."""
    return as_utc(created_at) < now - dt.timedelta(seconds=ttl_s)


def _stored(session: Session, scope: str, key: str, ttl_s: float) -> IdempotencyRecord | None:
    """The live record of ``key``. An expired one is deleted, in a transaction of its own, so the key can be
    stored again: the work that follows may write through another session (SQLite has one writer at a time)."""
    record = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                            IdempotencyRecord.key == key))
    if record is not None and is_expired(record.created_at, dt.datetime.now(dt.UTC), ttl_s):
        session.delete(record)
        session.commit()
        return None
    return record


def run_mutation(scope: str, work: Work, *, secret_fields: Collection[str] = SECRET_FIELDS) -> Response:
    """Run ``work(session)``, store its response (minus ``secret_fields``) under the request's Idempotency-Key,
    and commit once. The first answer carries the secrets; a replay names them under ``shown_only_once``."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 200:
        raise BadRequest("Idempotency-Key must be 1 to 200 characters", field="Idempotency-Key")
    request_hash = _request_hash()
    ttl_s = float(current_app.config["IDEMPOTENCY_TTL_S"])
    db = get_db(current_app)
    for attempt in range(ATTEMPTS):
        with db.session() as session:
            try:
                if key and (found := _stored(session, scope, key, ttl_s)) is not None:
                    return _replay(found, request_hash)
                payload, status = work(session)
                if key:
                    session.add(IdempotencyRecord(scope=scope, key=key, request_hash=request_hash,
                                                  status_code=status,
                                                  response=_stored_response(payload, secret_fields)))
                session.commit()
            except (IntegrityError, OperationalError):
                session.rollback()
                if attempt == ATTEMPTS - 1:
                    raise
                continue
        response = jsonify(payload)
        response.status_code = status
        return response
    raise AssertionError("unreachable")


def prune_idempotency(session: Session, now: dt.datetime, ttl_s: float) -> int:
    """Delete the records older than ``ttl_s`` at ``now``; the number deleted. The caller commits."""
    cutoff = now - dt.timedelta(seconds=ttl_s)
    result = cast(CursorResult[Any], session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)))
    return result.rowcount
