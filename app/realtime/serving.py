"""Answering "next buses at this stop": the stop's Redis board when it is there, else the timetable.

Redis being down, slow or the board expired never turns into an error: the answer then comes from the
schedule with ``realtime: false`` and ``source: "schedule"``. A ``RedisBreaker`` keeps a dead Redis from
costing a timeout on every request; the first request after its cool-down tries again, so service returns
to the live boards by itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request
from werkzeug.http import unquote_etag

from app import get_db, get_redis
from app.realtime.boards import content_etag
from app.realtime.build import BOARD_LIMIT
from app.realtime.store import REDIS_ERRORS, RedisBreaker, StoredBoard, read_board
from app.schedule import timetable

__all__ = [
    "CACHE_CONTROL",
    "Answer",
    "arrivals_answer",
    "board_response",
    "breaker",
    "conditional_response",
    "fetch_board",
]

# Displays poll every few seconds; shared caches may hold an answer that long and must then revalidate.
CACHE_CONTROL = "public, max-age=5, must-revalidate"


@dataclass(frozen=True)
class Answer:
    body: bytes
    etag: str
    source: str


def breaker(app: Flask) -> RedisBreaker:
    found: RedisBreaker = app.extensions.setdefault("realtime_breaker", RedisBreaker())
    return found


def fetch_board(app: Flask, stop_id: str) -> StoredBoard | None:
    """The stop's board, or ``None`` when there is none or Redis cannot be reached right now."""
    guard = breaker(app)
    if guard.is_open:
        return None
    try:
        stored = read_board(get_redis(app), stop_id)
    except REDIS_ERRORS:
        app.logger.warning("Redis unavailable; answering stop %s from the schedule", stop_id)
        guard.failed()
        return None
    guard.succeeded()
    return stored


def arrivals_answer(app: Flask, stop_id: str, *, at: dt.datetime | None, window: int, route: str | None,
                    limit: int) -> Answer:
    stored = fetch_board(app, stop_id) if at is None else None
    if stored is None:
        return _schedule_answer(app, stop_id, at=at, window=window, route=route, limit=limit)
    if route is None and limit >= BOARD_LIMIT and window >= app.config["ARRIVALS_WINDOW_MIN"]:
        return Answer(stored.body, stored.etag, "board")  # the stored bytes as they are: the fast path
    payload = json.loads(stored.body)
    payload["arrivals"] = [
        a for a in payload["arrivals"]
        if (route is None or route in (a["route_id"], a["route_short_name"])) and a["minutes_away"] <= window
    ][:limit]
    params = hashlib.blake2b(f"{route}|{limit}|{window}".encode(), digest_size=4).hexdigest()
    tag, _ = unquote_etag(stored.etag)
    return Answer(_dumps(payload), f'W/"{tag}-{params}"', "board")


def _schedule_answer(app: Flask, stop_id: str, *, at: dt.datetime | None, window: int, route: str | None,
                     limit: int) -> Answer:
    with get_db(app).session() as session:
        payload: dict[str, Any] = timetable.arrivals(session, app.extensions["service_calendars"], stop_id, at=at,
                                                     window_min=window, route=route, limit=limit)
    # rows keep the timetable's shape: no predicted_time, interval or vehicle_id
    payload.update(source="schedule", version=None, realtime=False)
    return Answer(_dumps(payload), content_etag(payload), "schedule")


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def board_response(app: Flask, stop_id: str) -> Response | None:
    """The displays' poll (no filters): the stored board's bytes as they are, or 304; ``None`` without a board.

    This is the hot path of the API: one Redis round trip, no JSON parsing, no database session.
    """
    stored = fetch_board(app, stop_id)
    if stored is None:
        return None
    return conditional_response(Answer(stored.body, stored.etag, "board"))


def conditional_response(answer: Answer) -> Response:
    """200 with the body, or 304 when the client's ``If-None-Match`` already names this ETag."""
    headers = {"ETag": answer.etag, "Cache-Control": CACHE_CONTROL, "X-Qala-Source": answer.source}
    if _not_modified(answer.etag):
        return Response(status=304, headers=headers)
    return Response(answer.body, mimetype="application/json", headers=headers)


def _not_modified(etag: str) -> bool:
    sent = request.environ.get("HTTP_IF_NONE_MATCH")
    if not sent:
        return False
    if sent == etag:  # a display sends back exactly the tag it was given: no header parsing needed
        return True
    tag, _ = unquote_etag(etag)  # lists of tags, "*", strong/weak spellings: weak comparison (RFC 9110)
    return tag is not None and request.if_none_match.contains_weak(tag)
