"""Push for stop boards: ``GET /api/v1/stops/<stop_id>/arrivals/stream`` (server-sent events)."""

from __future__ import annotations

import threading

from flask import Blueprint, Flask, Response, current_app
from flask.typing import ResponseReturnValue

from app.api.errors import error_response
from app.api.spec import Param, String, endpoint
from app.realtime.sse import board_events, first_answer

__all__ = ["bp"]

bp = Blueprint("realtime", __name__, url_prefix="/api/v1/stops")

STREAMS_BUSY_RETRY_S = 30


def _stream_slots(app: Flask) -> threading.BoundedSemaphore:
    found: threading.BoundedSemaphore | None = app.extensions.get("sse_slots")
    if found is None:
        found = app.extensions.setdefault("sse_slots", threading.BoundedSemaphore(app.config["REALTIME_SSE_STREAMS"]))
    return found


@bp.get("/<stop_id>/arrivals/stream")
@endpoint("Next buses at a stop, pushed as server-sent events", response="EventStream", tag="schedule",
          media_type="text/event-stream", errors=[404, 503],
          params=[Param("stop_id", String(), "GTFS stop_id", location="path", required=True, example="S1")],
          description="`event: board` carries the same JSON as `/arrivals`, on connect and on every change. A "
                      "process keeps at most `REALTIME_SSE_STREAMS` streams open: beyond that, 503 with "
                      "`Retry-After` (poll `/arrivals` meanwhile).")
def arrivals_stream(stop_id: str) -> ResponseReturnValue:
    """Server-sent events: ``event: board`` with the arrivals JSON on connect and on every change.

    Each open stream holds one of the process's server threads for as long as it lasts, so a process keeps at most
    ``REALTIME_SSE_STREAMS`` open (``QALA_SSE_STREAMS``) and answers more with 503 and ``Retry-After``: the
    board should poll ``/arrivals`` meanwhile (with ``If-None-Match``, nearly free), and polls keep their threads."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    first_answer(app, stop_id)  # an unknown stop is a JSON 404 before the stream starts
    slots = _stream_slots(app)
    if not slots.acquire(blocking=False):
        busy = error_response(503, "streams_busy", "every stream slot of this server process is taken; poll "
                              f"/api/v1/stops/{stop_id}/arrivals and try the stream again later")
        busy.headers["Retry-After"] = str(STREAMS_BUSY_RETRY_S)
        return busy
    released = threading.Lock()

    def release() -> None:
        if released.acquire(blocking=False):  # once, however the response ends
            slots.release()

    events = board_events(app, stop_id, heartbeat_s=float(app.config["REALTIME_SSE_HEARTBEAT_S"]),
                          max_s=float(app.config["REALTIME_SSE_MAX_S"]))
    response = Response(events, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # proxies must pass events through at once
    response.call_on_close(release)
    return response
