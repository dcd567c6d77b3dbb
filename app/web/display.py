"""The smart-stop display: ``/display/<stop_id>``, a full-screen board that polls the arrivals API."""

from __future__ import annotations

import math

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue

from app.extensions import get_db
from app.schedule.queries import active_feed, get_stop

__all__ = ["bp"]

bp = Blueprint("display", __name__)


def _seconds(name: str, default: float, low: float, high: float) -> float:
    """A timing knob from the query string (tests and odd screens), kept within sane bounds; ``nan`` and
    ``inf`` parse as floats but are no timing (and ``NaN`` is no JSON for the page's settings)."""
    try:
        value = float(request.args.get(name, default))
    except ValueError:
        return default
    return min(max(value, low), high) if math.isfinite(value) else default


@bp.get("/display/<stop_id>")
def board(stop_id: str) -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        stop = get_stop(session, active_feed(session).id, stop_id)  # an unknown stop is a 404
        name = stop.stop_name or stop_id
    settings = {
        "stopId": stop_id,
        "pollS": _seconds("poll", 5, 1, 60),
        "staleS": _seconds("stale", 90, 5, 3600),
        "rotateS": _seconds("rotate", 8, 1, 120),
        "limit": 8,
    }
    return render_template("display.html", stop_name=name, settings=settings)
