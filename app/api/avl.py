"""AVL API: on-board units POST batches of GPS pings, signed like validators (per-device HMAC keys)."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from app import get_db, get_redis
from app.avl.context import get_avl
from app.avl.ingest import IngestSettings
from app.avl.jsonpings import parse_pings
from app.errors import BadRequest
from app.ticketing.context import get_ticketing
from app.ticketing.devices import verify_request

__all__ = ["bp"]

bp = Blueprint("avl", __name__, url_prefix="/api/v1/avl")


@bp.before_request
def authenticate_device() -> None:
    keys = get_ticketing(current_app).device_keys
    with get_db(current_app).session() as session:
        g.device_id = verify_request(session, get_redis(current_app), request.headers, request.method,
                                     request.path, request.get_data(), cache=keys)


@bp.post("/pings")
def pings() -> ResponseReturnValue:
    """A batch of pings: stored whole (minus rejected pings, counted by reason) or, on bad JSON, not at all."""
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequest("the body must be JSON", field="body")
    frame = parse_pings(body)
    settings = IngestSettings(max_age_s=float(current_app.config.get("AVL_MAX_PING_AGE_S", 24 * 3600)))
    with get_db(current_app).session() as session:
        report = get_avl(current_app).ingest(session, frame, "api", settings=settings)
    return jsonify(report.as_json())
