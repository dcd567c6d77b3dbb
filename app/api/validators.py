"""Validator API: signed online taps, offline batches and the deny list."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.api.device_auth import require_device
from app.api.idempotency import run_mutation
from app.api.inputs import TAPS_PATH, VALIDATORS_PREFIX, body_limit, too_large
from app.api.schemas import SCHEMAS
from app.api.spec import Integer, Param, body_error, endpoint
from app.api.unavailable import (
    DATABASE_ERRORS,
    RETRY_AFTER_S,
    database_unavailable_json,
    redis_unavailable_json,
)
from app.cache import REDIS_UNREACHABLE
from app.errors import BadRequest, QalaError
from app.extensions import get_db, get_redis
from app.ticketing import denylist
from app.ticketing.batches import apply_batch, sequence_gaps
from app.ticketing.cardnumbers import CardNumberError, number_hash, parse_number
from app.ticketing.context import Ticketing, get_ticketing
from app.ticketing.devices import nonce_key, verify_request
from app.ticketing.tapdates import TapClock, parse_tapped_at
from app.ticketing.taps import TapRequest, process_online_fast, process_tap
from app.web.headers import security_headers

__all__ = ["FastTaps", "bp", "parse_tap"]

log = logging.getLogger(__name__)

bp = Blueprint("validators", __name__, url_prefix="/api/v1/validators")

MAX_BATCH = 5000
CHUNK_TAPS = 250  # taps per transaction of a large batch sent without an Idempotency-Key
ATTEMPTS = 3
SIGNED = ("Signed like every validator request (headers X-Qala-Device, X-Qala-Key, X-Qala-Timestamp, "
          "X-Qala-Nonce, X-Qala-Signature over the method, path, query string, timestamp, nonce, Idempotency-Key and "
          "body; 401 with a reason code otherwise, 403 for a device that is not a validator, 503 with Retry-After "
          "while Redis is away). ")


def limit_body() -> None:
    """A chunked body (no length) is read up to the validators' own limit (``app.api.inputs.body_limit``) and
    refused beyond it; a declared length over it was answered 413 unread, in front of Flask."""
    request.max_content_length = body_limit(current_app.config, request.path)


bp.before_request(limit_body)  # before the signature check reads the body
bp.before_request(require_device())  # validators only: 401 unsigned, 403 for a kiosk or bank device

VERIFIED = "qala.device_id"  # environ keys set by FastTaps; a client cannot set them (headers become HTTP_*)
DECLINED = "qala.fast_declined"
_HEADERS = ("HTTP_X_QALA_DEVICE", "HTTP_X_QALA_KEY", "HTTP_X_QALA_TIMESTAMP", "HTTP_X_QALA_NONCE",
            "HTTP_X_QALA_SIGNATURE")


class FastTaps:
    """WSGI middleware for the common online tap, in front of Flask (installed by ``app.fastpaths``).

    A signed ``POST /api/v1/validators/taps`` without an ``Idempotency-Key`` whose body matches the
    ``TapRequest`` schema is verified (signature, nonce), parsed and applied through the group-commit fast
    path (``app.ticketing.fastpath``, which claims the request's nonce with its group) without a Flask
    request context, session cookie, routing or hooks — the same functions the view uses, so the answer is
    the same. Everything else goes to Flask unchanged: an unsigned, badly signed or replayed request, a
    malformed body (Flask checks again and answers with the same 401 or 400), and a tap the fast path
    declines. Once the signature and nonce were checked here, ``qala.device_id`` in the
    environ tells ``require_device`` so (the nonce is already taken), and ``qala.fast_declined`` tells
    the view not to try the fast path twice.

    Every validator request's body is bounded here first (``TAP_MAX_BODY``, ``VALIDATOR_MAX_BODY``): 413 from
    ``Content-Length`` before a byte is read, a chunked body read only up to the limit — ahead of the input
    layer and the signature check, which read the body. A Redis outage is answered 503 here; any other
    unexpected error is logged with its traceback and the request goes on to Flask. A tap taken up here and
    handed to Flask is logged with the reason (DEBUG: Flask answers those as it always does).
    """

    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.next = wsgi_app
        self.security = list(security_headers(app.config, page=False))  # what Flask adds to its answers

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(VALIDATORS_PREFIX):
            return self.next(environ, start_response)
        limit = body_limit(self.app.config, path) or 0
        body = _buffered_body(environ, limit)
        if body is None:
            return too_large(environ, start_response, limit)
        if (path != TAPS_PATH or environ.get("REQUEST_METHOD") != "POST" or "HTTP_IDEMPOTENCY_KEY" in environ
                or not all(h in environ for h in _HEADERS)):
            return self.next(environ, start_response)
        try:
            payload = self._tap(environ, body)
        except QalaError as exc:  # a bad signature or body, a replay: Flask checks again and answers the same 4xx
            log.debug("a tap refused on the fast path goes to Flask: %s: %s", type(exc).__name__, exc)
            payload = None
        except REDIS_UNREACHABLE as exc:  # nothing was written and the nonce may be unclaimed: the validator retries
            log.warning("Redis unavailable on a fast-path tap: %s: %s", type(exc).__name__, exc)
            return _unavailable(start_response, redis_unavailable_json())
        except DATABASE_ERRORS as exc:  # a read before the tap (keys, fare profile): nothing was written
            log.warning("database unavailable on a fast-path tap: %s", type(exc).__name__)
            return _unavailable(start_response, database_unavailable_json())
        except Exception:  # a bug or an outage Flask may handle (its error handlers answer): never silently
            log.exception("the online fast path failed; the tap goes to the general path")
            payload = None
        if payload is None:
            environ["wsgi.input"].seek(0)
            return self.next(environ, start_response)
        data = (json.dumps(payload, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                                   *self.security])
        return [data]

    def _tap(self, environ: dict[str, Any], body: bytes) -> dict[str, Any] | None:
        app = self.app
        ctx = get_ticketing(app)
        if ctx.fast is None:
            log.debug("no group-commit path (the database is not PostgreSQL): the tap goes to Flask")
            return None
        profile = ctx.profiles.refreshed(get_db(app).session)
        redis = get_redis(app)
        headers = {name: environ[h] for name, h in zip(
            ("X-Qala-Device", "X-Qala-Key", "X-Qala-Timestamp", "X-Qala-Nonce", "X-Qala-Signature"), _HEADERS,
            strict=True)}
        # the nonce is claimed with the tap's group (app.ticketing.fastpath), once the body is known to be good
        device_id = verify_request(get_db(app).session, redis, headers, "POST", TAPS_PATH, body,
                                   cache=ctx.device_keys, box=ctx.keys, claim_nonce=False,
                                   query=environ.get("QUERY_STRING", ""),
                                   idempotency_key=environ.get("HTTP_IDEMPOTENCY_KEY"), kinds=("validator",))
        claim = nonce_key(device_id, headers["X-Qala-Nonce"])
        try:
            obj = json.loads(body)
        except ValueError:
            log.debug("a tap body that is not JSON goes to Flask (a 400 there)")
            return None
        if claim is None or body_error(obj, SCHEMAS["TapRequest"]) is not None:
            log.debug("a tap with an overlong nonce or a body not a TapRequest goes to Flask (401 or 400 there)")
            return None
        req = parse_tap(ctx, device_id, obj, offline=False, clock=TapClock.from_config(app.config))
        result = process_online_fast(ctx, profile, req,
                                     nonce=(ctx.nonce_claims(redis), (claim, int(headers["X-Qala-Timestamp"]))))
        environ[VERIFIED] = device_id  # the nonce is this request's now
        if result is None:
            log.debug("the group-commit path declined the tap; it goes to Flask's general path")
            environ[DECLINED] = True
            return None
        return result.as_json()


def _buffered_body(environ: dict[str, Any], limit: int) -> bytes | None:
    """A validator request's body, read at most ``limit`` (+1) bytes far, or ``None`` when it is larger: from
    ``Content-Length`` before anything is read; a chunked body up to the limit. The environ then holds the body
    in memory with its length, so everything behind (the input layer, Flask) reads the same bytes."""
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH") or ""
    if declared.isdigit():
        if int(declared) > limit:
            return None
        body = stream.read(int(declared)) if int(declared) else b""
    elif environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream with the body
        parts, size = [], 0
        while size <= limit and (chunk := stream.read(min(65536, limit + 1 - size))):
            parts.append(chunk)
            size += len(chunk)
        if size > limit:
            return None
        body = b"".join(parts)
    else:
        body = b""
    environ.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    return body


def _unavailable(start_response: Callable[..., Any], data: bytes) -> Iterable[bytes]:
    start_response("503 SERVICE UNAVAILABLE", [("Content-Type", "application/json"),
                                               ("Content-Length", str(len(data))),
                                               ("Retry-After", str(RETRY_AFTER_S))])
    return [data]


def _field(obj: dict[str, Any], name: str, kind: type, required: bool = True) -> Any:
    value = obj.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadRequest(f"{name} must be a {kind.__name__}", field=name)
    return value


def parse_tap(ctx: Ticketing, device_id: str, obj: Any, offline: bool, clock: TapClock | None = None) -> TapRequest:
    """A tap from its JSON object; the body hash covers the tap itself, not how it travelled. With ``clock``, an
    online tap not dated about now is a 400 (offline ones are judged by the batch; ``app.ticketing.tapdates``)."""
    if not isinstance(obj, dict):
        raise BadRequest("a tap must be a JSON object", field="tap")
    seq = _field(obj, "seq", int)
    if seq < 1:
        raise BadRequest("seq must be at least 1", field="seq")
    try:
        number = parse_number(_field(obj, "card", str))
    except CardNumberError as exc:
        raise BadRequest(str(exc), field="card") from None
    vehicle = _field(obj, "vehicle_id", str)
    route = _field(obj, "route_id", str, required=False)
    at = parse_tapped_at(_field(obj, "tapped_at", str))
    if not offline and clock is not None:
        clock.check_online(at)
    hashed = number_hash(ctx.hash_key, number)
    canonical = json.dumps([hashed, vehicle, route, at.isoformat()])
    return TapRequest(device_id, seq, number, vehicle[:64], route, at, offline,
                      hashlib.sha256(canonical.encode()).hexdigest(), hashed)


def _json_body() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequest("the body must be JSON", field="body")
    return body


@bp.post("/taps")
@endpoint("One online tap: accept or deny, with the reason, fare and remaining balance (tiyn)",
          request="TapRequest", response="TapResult", tag="validators", errors=[401, 409],
          description=SIGNED + "The tap key is `device:seq`: re-sending it returns the stored result "
                      "(`duplicate: true`); the same key with a different tap is 409.")
def tap() -> ResponseReturnValue:
    ctx = get_ticketing(current_app)
    req = parse_tap(ctx, g.device_id, _json_body(), offline=False, clock=TapClock.from_config(current_app.config))
    if ctx.fast is not None and "Idempotency-Key" not in request.headers and not request.environ.get(DECLINED):
        profile = ctx.profiles.refreshed(get_db(current_app).session)
        fast = process_online_fast(ctx, profile, req)
        if fast is not None:
            return jsonify(fast.as_json())

    def work(session: Session) -> tuple[dict[str, Any], int]:
        return process_tap(session, ctx, req).as_json(), 200

    return run_mutation(f"device:{g.device_id}", work)


@bp.post("/batches")
@endpoint("Offline taps, late, duplicated or out of order: each charged at most once, rated by its own time",
          request="BatchRequest", response="BatchResult", tag="validators", errors=[401, 409],
          description=SIGNED + "A batch with an Idempotency-Key, or of at most 250 taps, is applied in one "
                      "transaction; a larger one commits per chunk of about 250 taps (a card's taps stay together). "
                      "Each card is locked once, its taps are "
                      "rated with the card's earlier taps by their own times, and earlier taps whose price a late "
                      "tap changes get adjustment entries. A tap whose key was stored with a different body is "
                      "reported as a `conflict` result; a repeated tap returns its stored result "
                      "(`duplicate: true`). `gaps` lists the device's missing sequence numbers.")
def batch() -> ResponseReturnValue:
    ctx = get_ticketing(current_app)
    body = _json_body()
    taps = body.get("taps") if isinstance(body, dict) else None
    if not isinstance(taps, list) or not 1 <= len(taps) <= MAX_BATCH:
        raise BadRequest(f"taps must be a list of 1 to {MAX_BATCH} taps", field="taps")
    requests = []
    for i, item in enumerate(taps):
        try:
            requests.append(parse_tap(ctx, g.device_id, item, offline=True))
        except BadRequest as exc:
            raise BadRequest(exc.message, field=f"taps[{i}].{exc.field}" if exc.field else "taps") from None
    window = TapClock.from_config(current_app.config).offline_window()
    if "Idempotency-Key" not in request.headers and len(requests) > CHUNK_TAPS:
        results = _apply_in_chunks(ctx, requests, window)
        with get_db(current_app).session() as session:
            gaps = sequence_gaps(session, g.device_id)
            session.commit()  # the watermark it raised
        return jsonify(_batch_body(results, gaps))

    def work(session: Session) -> tuple[dict[str, Any], int]:
        return _batch_body(apply_batch(session, ctx, requests, window=window),
                           sequence_gaps(session, g.device_id)), 200

    return run_mutation(f"device:{g.device_id}", work)


def _batch_body(results: list[dict[str, Any]], gaps: list[list[int]]) -> dict[str, Any]:
    summary = {k: sum(1 for r in results if r["decision"] == k) for k in ("accept", "deny", "conflict")}
    duplicates = sum(1 for r in results if r.get("duplicate"))
    return {"results": results, "counts": {**summary, "duplicates": duplicates}, "gaps": gaps}


def _chunks(requests: list[TapRequest]) -> list[list[int]]:
    """Indices of the batch in chunks of about ``CHUNK_TAPS`` taps; a card's taps (and every copy of a tap key)
    stay in one chunk, so each card is still rated once with all its taps of the batch."""
    by_card: dict[str, list[int]] = {}
    card_of_key: dict[str, str] = {}
    for i, req in enumerate(requests):
        card = card_of_key.setdefault(req.tap_key, req.card_hash or "")
        by_card.setdefault(card, []).append(i)
    chunks: list[list[int]] = [[]]
    for indices in by_card.values():
        if chunks[-1] and len(chunks[-1]) + len(indices) > CHUNK_TAPS:
            chunks.append([])
        chunks[-1].extend(indices)
    return chunks


def _apply_in_chunks(ctx: Ticketing, requests: list[TapRequest],
                     window: tuple[dt.datetime, dt.datetime] | None) -> list[dict[str, Any]]:
    """A large batch without an Idempotency-Key commits per chunk of cards: card locks are held for one chunk's
    work instead of the whole batch's, so online taps on those cards wait less. Each tap is still charged at most
    once (a retry after a failure returns the stored results of the chunks already committed)."""
    db = get_db(current_app)
    results: list[dict[str, Any]] = [{} for _ in requests]
    for indices in _chunks(requests):
        part = [requests[i] for i in indices]
        for attempt in range(ATTEMPTS):
            with db.session() as session:
                try:
                    applied = apply_batch(session, ctx, part, window=window)
                    session.commit()
                    break
                except (IntegrityError, OperationalError):
                    session.rollback()
                    if attempt == ATTEMPTS - 1:
                        raise
        for i, result in zip(indices, applied, strict=True):
            results[i] = result
    return results


@bp.get("/deny-list")
@endpoint(
    "Deny-list changes since a version",
    response="DenyList",
    tag="validators",
    description=SIGNED + "Returns the changes (card hash, add/remove) with a version "
                "greater than `since`, oldest first, and the current version to ask from next time.",
    params=[Param("since", Integer(0), "the last version this validator has applied", default=0)],
    errors=[401],
)
def deny_list(since: int) -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        return jsonify(denylist.changes_since(session, get_redis(current_app), since))
