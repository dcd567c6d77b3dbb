"""Request signing for devices (validators, on-board units): one ``before_request`` hook for their blueprints."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import current_app, g, request

from app.cache import REDIS_UNREACHABLE
from app.extensions import get_db, get_redis
from app.ticketing.context import get_ticketing
from app.ticketing.devices import claim_request_nonce, verify_request

__all__ = ["require_device"]

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
                                   claim_nonce=False, query=request.environ.get("QUERY_STRING", ""),
                                   idempotency_key=request.headers.get("Idempotency-Key"), kinds=kinds)
        try:
            claim_request_nonce(ctx.nonce_claims(redis), device_id, request.headers["X-Qala-Nonce"],
                                int(request.headers["X-Qala-Timestamp"]))
        except REDIS_UNREACHABLE as exc:
            if not read_only:
                raise
            log.warning("Redis unavailable, %s %s served without a nonce claim: %s", request.method, request.path,
                        exc)
        g.device_id = device_id

    return authenticate

