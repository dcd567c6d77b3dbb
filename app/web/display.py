"""The smart-stop display: ``/display/<stop_id>``, a full-screen board that polls the arrivals API.

The page itself is static; this view only renders the settings the board's script reads. Fixed installations
tune a board through its URL (``?rows=``, ``?lang=``, timing knobs), and a bad value falls back to the default
rather than breaking a screen nobody is watching.
"""

from __future__ import annotations

import math
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue

from app.extensions import get_db
from app.realtime.build import BOARD_LIMIT
from app.schedule.queries import active_feed, get_stop

__all__ = ["LANGUAGES", "bp"]

bp = Blueprint("display", __name__)

LANGUAGES = ("kk", "ru", "en")  # the board rotates through them unless ?lang= fixes one


def _seconds(name: str, default: float, low: float, high: float) -> float:
    """A timing knob from the query string (tests and odd screens), kept within sane bounds; ``nan`` and
    ``inf`` parse as floats but are no timing (and ``NaN`` is no JSON for the page's settings)."""
    try:
        value = float(request.args.get(name, default))
    except ValueError:
        return default
    return min(max(value, low), high) if math.isfinite(value) else default


def _rows() -> int | None:
    """``?rows=N`` (1 to the stored board's length) fixes the row count; anything else sizes rows from the screen."""
    raw = request.args.get("rows", "")
    return int(raw) if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= BOARD_LIMIT else None


def _language() -> str | None:
    """``?lang=kk|ru|en`` fixes the board's language; anything else keeps the rotation."""
    lang = request.args.get("lang")
    return lang if lang in LANGUAGES else None


def _zone(name: str) -> str:
    """The clock's IANA zone (the stop's GTFS ``stop_timezone``, else its feed's agency zone); a zone this Python
    cannot resolve would stop the page's clock, so UTC."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


@bp.get("/display/<stop_id>")
def board(stop_id: str) -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        feed = active_feed(session)
        stop = get_stop(session, feed.id, stop_id)  # an unknown stop is a 404
        name = stop.stop_name or stop_id
        zone = _zone(stop.stop_timezone or feed.agency_timezone)
    settings: dict[str, Any] = {
        "stopId": stop_id,
        "timezone": zone,
        "rows": _rows(),
        "lang": _language(),
        "pollS": _seconds("poll", 5, 1, 60),
        "staleS": _seconds("stale", 90, 5, 3600),
        "rotateS": _seconds("rotate", 8, 1, 120),
        "idleS": _seconds("idle", 1200, 0, 86400),
        "driftS": _seconds("drift", 40, 1, 600),
        "limit": BOARD_LIMIT,
    }
    return render_template("display.html", stop_name=name, settings=settings, lang=settings["lang"] or "kk")
