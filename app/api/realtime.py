"""Push for stop boards: ``GET /api/v1/stops/<stop_id>/arrivals/stream`` (server-sent events)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from flask.typing import ResponseReturnValue

from app.realtime.sse import board_events, first_answer

__all__ = ["bp"]

bp = Blueprint("realtime", __name__, url_prefix="/api/v1/stops")


@bp.get("/<stop_id>/arrivals/stream")
def arrivals_stream(stop_id: str) -> ResponseReturnValue:
    """Server-sent events: ``event: board`` with the arrivals JSON on connect and on every change."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    first_answer(app, stop_id)  # an unknown stop is a JSON 404 before the stream starts
    events = board_events(app, stop_id, heartbeat_s=float(app.config.get("REALTIME_SSE_HEARTBEAT_S", 15)),
                          max_s=float(app.config.get("REALTIME_SSE_MAX_S", 300)))
    response = Response(events, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # proxies must pass events through at once
    return response
