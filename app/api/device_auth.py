"""Request signing for devices (validators, on-board units): one ``before_request`` hook for their blueprints."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import current_app, g, request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app import get_db, get_redis
from app.ticketing.context import get_ticketing
from app.ticketing.devices import nonce_key, verify_request
from app.ticketing.errors import Unauthorized

__all__ = ["authenticate_device", "require_device"]

log = logging.getLogger(__name__)

VALIDATOR_KINDS = ("validator",)


def require_device(kinds: tuple[str, ...] | None = VALIDATOR_KINDS) -> Callable[[], None]:
    """A ``before_request`` hook that verifies the request's signature (401) and the device's kind (403) and puts
    the device id in ``g.device_id``.

    A request ``app.api.validators.FastTaps`` already verified (and whose nonce it took) carries the device id
    in the WSGI environ under ``qala.device_id``, which no client can set.

    A GET changes nothing, so when Redis is away its nonce is not claimed (a replay inside the signed timestamp's
    window returns what the first request got, to someone who could read that anyway): the deny list stays
    available from the database. Every other method needs its nonce claimed, so Redis errors propagate (503)."""

    def authenticate() -> None:
        verified = request.environ.get("qala.device_id")
        if verified is not None:
            g.device_id = verified
            return
        ctx = get_ticketing(current_app)
        redis = get_redis(current_app)
        read_only = request.method in ("GET", "HEAD")
        device_id = verify_request(get_db(current_app).session, redis, request.headers, request.method,
                                   request.path, request.get_data(), cache=ctx.device_keys, box=ctx.keys,
                                   nonces=ctx.nonce_claims(redis), claim_nonce=not read_only,
                                   query=request.environ.get("QUERY_STRING", ""),
                                   idempotency_key=request.headers.get("Idempotency-Key"), kinds=kinds)
        if read_only:
            _claim_if_possible(device_id, request.headers.get("X-Qala-Nonce", ""),
                               request.headers.get("X-Qala-Timestamp", "0"))
        g.device_id = device_id

    return authenticate


def _claim_if_possible(device_id: str, nonce: str, timestamp: str) -> None:
    """Claim a read-only request's nonce; refused replays are 401 as ever, but a Redis outage lets it through."""
    claim = nonce_key(device_id, nonce)
    if claim is None:
        raise Unauthorized("replayed_nonce", "this nonce was already used")
    redis = get_redis(current_app)
    try:
        refused = get_ticketing(current_app).nonce_claims(redis).claim((claim, int(timestamp)))
    except (RedisConnectionError, RedisTimeoutError) as exc:
        log.warning("Redis unavailable, %s %s served without a nonce claim: %s", request.method, request.path, exc)
        return
    if refused is not None:
        raise refused


authenticate_device = require_device(None)  # any kind of device (kept for callers that need no kind)
