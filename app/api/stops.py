"""Stops: text and nearby search, a stop by id, its departures for a day, and the next arrivals."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from app.api.spec import Date, DateTime, Integer, LatLon, Param, String, endpoint
from app.errors import BadRequest
from app.extensions import get_db
from app.realtime.serving import MAX_LIMIT, arrivals_reply
from app.schedule import queries, timetable
from app.schedule.calendars import CalendarCache
from app.schedule.search import stop_search_cache

__all__ = ["bp", "calendar_cache"]

bp = Blueprint("stops", __name__, url_prefix="/api/v1/stops")

STOP_ID = Param("stop_id", String(), "GTFS stop_id", location="path", required=True, example="S1")
ROUTE = Param("route", String(max_length=64), "only this route (route_id or short name)", example="12")


def calendar_cache() -> CalendarCache:
    cache: CalendarCache = current_app.extensions["service_calendars"]
    return cache


@bp.get("")
@endpoint(
    "Search stops by name or position",
    response="StopList",
    description="Give `q` and/or `near`. `q` is matched against every name of a stop (the feed's, each "
                "translation, the code) in Cyrillic or Latin letters alike — Kazakh and Russian Cyrillic, the "
                "Kazakh Latin alphabets and everyday transliteration (Abai, Abay, Абай and Абая find the same "
                "stops), ё as е, word endings and small typos forgiven. Stops come best match first (`match`: "
                "exact, prefix, word, substring, then fuzzy; fuzzy matches only when nothing matches better, "
                "and then `suggestions` holds the query respelled as the stops write it). With `near`, stops are "
                "nearest first and carry `distance_m`.",
    params=[
        Param("q", String(max_length=100), "text to find in stop names, codes and translations, any script",
              example="abai"),
        Param("near", LatLon(), "'lat,lon' to search around", example="43.2389,76.9570"),
        Param("radius", Integer(1, 5000), "search radius in metres around `near`", default=500),
        Param("limit", Integer(1, 100), "at most this many stops", default=20),
    ],
    errors=[503],
)
def search(q: str | None, near: tuple[float, float] | None, radius: int, limit: int) -> ResponseReturnValue:
    if q is None and near is None:
        raise BadRequest("give q (text) or near (lat,lon)", field="q")
    with get_db(current_app).session() as session:
        return jsonify(queries.search_stops(session, stop_search_cache(current_app.extensions), q=q, near=near,
                                            radius_m=radius, limit=limit))


@bp.get("/<stop_id>")
@endpoint("A stop by id", response="Stop", params=[STOP_ID], errors=[404, 503])
def detail(stop_id: str) -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        return jsonify(queries.stop_detail(session, stop_id))


@bp.get("/<stop_id>/departures")
@endpoint(
    "Scheduled departures for one service day",
    response="Departures",
    description="Every trip that picks up at the stop on the GTFS service day `date`, in time order; times past "
                "midnight keep their service day (a 24:30:00 trip leaves at 00:30 the next calendar day).",
    params=[STOP_ID, Param("date", Date(), "service day (default: today in the agency's time zone)",
                           example="2026-03-10"), ROUTE],
    errors=[404, 503],
)
def departures(stop_id: str, date: dt.date | None, route: str | None) -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        return jsonify(timetable.departures(session, calendar_cache(), stop_id, day=date, route=route))


@bp.get("/<stop_id>/arrivals")
@endpoint(
    "Next buses at a stop",
    response="Arrivals",
    description="Trips due within `window` minutes, soonest first, across midnight and service days. Without "
                "`at`, the answer is the stop's live board (`source: board`; `realtime: true` on predicted rows, "
                "with `predicted_time`, `interval` and `vehicle_id`) when the prediction worker has published "
                "one; otherwise, or when the real-time store is unreachable, it comes from the timetable "
                "(`source: schedule`, `realtime: false`). Answers carry a weak `ETag`: send it back in "
                "`If-None-Match` to get `304 Not Modified` while nothing has changed.",
    params=[
        STOP_ID,
        Param("at", DateTime(), "the instant to look from, ISO-8601 with offset (default: now)",
              example="2026-03-10T07:58:00+05:00"),
        Param("window", Integer(1, 1440), "minutes to look ahead", config_default="ARRIVALS_WINDOW_MIN"),
        ROUTE,
        Param("limit", Integer(1, MAX_LIMIT), "at most this many arrivals", default=20),
    ],
    errors=[404, 503],
)
def arrivals(stop_id: str, at: dt.datetime | None, window: int, route: str | None, limit: int) -> ResponseReturnValue:
    # the displays' plain poll of a stop with a board is answered before Flask (app.fastpaths) with the same reply
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    reply = arrivals_reply(app, stop_id, at=at, window=window, route=route, limit=limit,
                           if_none_match=request.headers.get("If-None-Match"))
    return Response(reply.body, status=reply.status, headers=reply.headers)
