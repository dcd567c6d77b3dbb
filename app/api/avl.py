"""AVL API: on-board units POST batches of GPS pings, signed like validators (per-device HMAC keys)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from app import get_db
from app.api.device_auth import authenticate_device
from app.avl.context import get_avl
from app.avl.ingest import IngestSettings
from app.avl.jsonpings import parse_pings
from app.errors import BadRequest

__all__ = ["bp"]

bp = Blueprint("avl", __name__, url_prefix="/api/v1/avl")


bp.before_request(authenticate_device)


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
