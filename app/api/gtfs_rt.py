"""GTFS-realtime feeds: ``/gtfs-rt/trip-updates`` and ``/gtfs-rt/vehicle-positions`` (protobuf; ``?format=json``).

Each answer is the publisher's latest full-dataset snapshot from Redis; without one (no worker running,
snapshot expired, Redis unreachable) it is an empty full dataset stamped now, which tells consumers
"no live data" without breaking them.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from app.extensions import get_redis
from app.realtime.gtfs_rt import TRIP_UPDATES, VEHICLE_POSITIONS, empty_feed, feed_json
from app.realtime.serving import breaker
from app.realtime.store import REDIS_ERRORS, read_snapshot

__all__ = ["bp"]

bp = Blueprint("gtfs_rt", __name__, url_prefix="/gtfs-rt")
PROTOBUF = "application/x-protobuf"


def _snapshot_body(app: Flask, feed: str) -> bytes:
    guard = breaker(app)
    if not guard.is_open:
        try:
            snapshot = read_snapshot(get_redis(app), feed)
            guard.succeeded()
            if snapshot is not None:
                return snapshot.body
        except REDIS_ERRORS:
            guard.failed()
    empty: bytes = empty_feed(dt.datetime.now(dt.UTC)).SerializeToString()
    return empty


def _answer(feed: str) -> ResponseReturnValue:
    body = _snapshot_body(current_app._get_current_object(), feed)  # type: ignore[attr-defined]
    if request.args.get("format") == "json":
        return jsonify(feed_json(body))
    response = Response(body, mimetype=PROTOBUF)
    response.headers["Cache-Control"] = "public, max-age=5"
    return response


@bp.get("/trip-updates")
def trip_updates() -> ResponseReturnValue:
    return _answer(TRIP_UPDATES)


@bp.get("/vehicle-positions")
def vehicle_positions() -> ResponseReturnValue:
    return _answer(VEHICLE_POSITIONS)
