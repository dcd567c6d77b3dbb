"""One unit of work per mutating request, honouring ``Idempotency-Key``.

The stored response is written in the same transaction as the effect, so a request either happened
(and its response is on record) or did not happen at all. Same key + same body → the stored response
with ``Idempotent-Replayed: true``; same key + different body → 409. Unique-key races and PostgreSQL
deadlocks/serialisation failures are retried with a fresh session.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app import get_db
from app.errors import BadRequest
from app.models import IdempotencyRecord
from app.ticketing.errors import Conflict

__all__ = ["Work", "run_mutation"]

Work = Callable[[Session], tuple[dict[str, Any], int]]
ATTEMPTS = 3


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


def _stored(session: Session, scope: str, key: str) -> IdempotencyRecord | None:
    return session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                          IdempotencyRecord.key == key))


def run_mutation(scope: str, work: Work) -> Response:
    """Run ``work(session)``, store its response under the request's Idempotency-Key, and commit once."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 200:
        raise BadRequest("Idempotency-Key must be 1 to 200 characters", field="Idempotency-Key")
    request_hash = _request_hash()
    db = get_db(current_app)
    for attempt in range(ATTEMPTS):
        with db.session() as session:
            if key and (found := _stored(session, scope, key)) is not None:
                return _replay(found, request_hash)
            try:
                payload, status = work(session)
                if key:
                    session.add(IdempotencyRecord(scope=scope, key=key, request_hash=request_hash,
                                                  status_code=status, response=payload))
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
