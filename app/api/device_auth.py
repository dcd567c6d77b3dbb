"""Request signing for devices (validators, on-board units): one ``before_request`` hook for their blueprints."""

from __future__ import annotations

from flask import current_app, g, request

from app import get_db, get_redis
from app.ticketing.context import get_ticketing
from app.ticketing.devices import verify_request

__all__ = ["authenticate_device"]


def authenticate_device() -> None:
    """Verify the request's HMAC signature and put the device id in ``g.device_id`` (401 otherwise).

    A request ``app.api.validators.FastTaps`` already verified (and whose nonce it took) carries the device id
    in the WSGI environ under ``qala.device_id``, which no client can set."""
    verified = request.environ.get("qala.device_id")
    if verified is not None:
        g.device_id = verified
        return
    ctx = get_ticketing(current_app)
    redis = get_redis(current_app)
    g.device_id = verify_request(get_db(current_app).session, redis, request.headers, request.method,
                                 request.path, request.get_data(), cache=ctx.device_keys, box=ctx.keys,
                                 nonces=ctx.nonce_claims(redis))
