"""AVL API: on-board units POST batches of GPS pings, signed like validators (per-device HMAC keys); anyone may
read the observed stop events (``GET /api/v1/avl/events``), by trip run or by stop and time window."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app.api.device_auth import require_device
from app.api.schemas import EXAMPLES, SCHEMAS, ref
from app.api.spec import Date, DateTime, Integer, Param, String, endpoint
from app.avl.context import get_avl
from app.avl.ingest import IngestSettings
from app.avl.jsonpings import MAX_PINGS, parse_pings
from app.errors import BadRequest
from app.extensions import get_db
from app.instants import as_utc, rfc3339
from app.models import FeedVersion, StopEvent

__all__ = ["bp", "history_bp", "register_avl_api"]

bp = Blueprint("avl", __name__, url_prefix="/api/v1/avl")
history_bp = Blueprint("avl_history", __name__, url_prefix="/api/v1/avl")

bp.before_request(require_device())  # on-board units are registered as validators

_TEXT64 = {"type": "string", "minLength": 1, "maxLength": 64}
_TEXT255 = {"type": ["string", "null"], "minLength": 1, "maxLength": 255}
_ISO = {"type": "string", "format": "date-time", "description": "ISO-8601 with the agency's UTC offset"}
_SCHEMAS: dict[str, Any] = {
    "Ping": {"type": "object", "required": ["vehicle_id", "timestamp", "latitude", "longitude"], "properties": {
        "vehicle_id": {**_TEXT64, "description": "a registered vehicle (`qala avl vehicles register`)"},
        "timestamp": {"oneOf": [{"type": "number", "description": "epoch seconds"},
                                {"type": "string", "format": "date-time",
                                 "description": "ISO-8601 with a UTC offset"}]},
        "latitude": {"type": "number", "description": "WGS 84 degrees; out of range is counted, not stored"},
        "longitude": {"type": "number", "description": "WGS 84 degrees"},
        "trip_id": {**_TEXT255, "description": "GTFS trip_id; omitted: matched from position and time"},
        "route_id": _TEXT255,
        "start_date": {"type": ["string", "null"], "pattern": r"^\d{4}-?\d{2}-?\d{2}$",
                       "description": "service day of the trip, YYYYMMDD"},
        "bearing": {"type": ["number", "null"], "description": "degrees clockwise from north"},
        "speed": {"type": ["number", "null"], "description": "metres per second"},
    }},
    "PingBatch": {"type": "object", "required": ["pings"], "properties": {
        "pings": {"type": "array", "items": ref("Ping"), "minItems": 1, "maxItems": MAX_PINGS}}},
    "IngestReport": {"type": "object", "required": ["received", "stored", "rejected", "stop_events"], "properties": {
        "received": {"type": "integer"}, "stored": {"type": "integer"},
        "rejected": {"type": "object", "description": "pings not stored, by reason (bad_coordinates, "
                     "far_from_routes, future_timestamp, stale_timestamp, unknown_vehicle, duplicate, …)"},
        "stop_events": {"type": "integer", "description": "stop events this batch made known"}}},
    "StopEvent": {"type": "object", "required": [
        "trip_id", "service_date", "stop_sequence", "stop_id", "vehicle_id", "arrival_time", "departure_time",
        "scheduled_arrival_time", "scheduled_departure_time", "deviation_s", "passed_between_pings"], "properties": {
        "trip_id": {"type": "string"}, "service_date": {"type": "string", "format": "date"},
        "stop_sequence": {"type": "integer"}, "stop_id": {"type": "string"}, "vehicle_id": {"type": "string"},
        "arrival_time": _ISO, "departure_time": _ISO, "scheduled_arrival_time": _ISO,
        "scheduled_departure_time": _ISO,
        "deviation_s": {"type": "integer", "description": "observed minus scheduled arrival (positive: late)"},
        "passed_between_pings": {"type": "boolean",
                                 "description": "interpolated between two pings, not seen at the stop"}}},
    "StopEventList": {"type": "object", "required": ["events"], "properties": {
        "events": {"type": "array", "items": ref("StopEvent")}}},
}
_EXAMPLES: dict[str, Any] = {
    "PingBatch": {"pings": [{"vehicle_id": "bus-0042", "timestamp": "2026-03-10T08:00:20+05:00",
                             "latitude": 43.2381, "longitude": 76.9452, "trip_id": "R12-0-001",
                             "start_date": "20260310", "bearing": 90, "speed": 7.5}]},
    "IngestReport": {"received": 3, "stored": 2, "rejected": {"duplicate": 1}, "stop_events": 1},
    "StopEventList": {"events": [{
        "trip_id": "R12-0-001", "service_date": "2026-03-10", "stop_sequence": 4, "stop_id": "S3",
        "vehicle_id": "bus-0042", "arrival_time": "2026-03-10T08:06:41+05:00",
        "departure_time": "2026-03-10T08:07:02+05:00", "scheduled_arrival_time": "2026-03-10T08:05:00+05:00",
        "scheduled_departure_time": "2026-03-10T08:05:00+05:00", "deviation_s": 101,
        "passed_between_pings": False}]},
}


def register_avl_api(app: Flask) -> None:
    """Publish the AVL schemas and register the signed ping intake and the public event queries."""
    for name, schema in _SCHEMAS.items():
        SCHEMAS.setdefault(name, schema)
    for name, example in _EXAMPLES.items():
        EXAMPLES.setdefault(name, example)
    app.register_blueprint(bp)
    app.register_blueprint(history_bp)


@bp.post("/pings")
@endpoint("A batch of GPS pings from an on-board unit", request="PingBatch", response="IngestReport", tag="avl",
          errors=[401], description="Signed like validator requests (per-device HMAC). The batch is stored whole "
          "(minus rejected pings, counted by reason) or, when the JSON is malformed, not at all.")
def pings() -> ResponseReturnValue:
    """A batch of pings: stored whole (minus rejected pings, counted by reason) or, on bad JSON, not at all."""
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequest("the body must be JSON", field="body")
    frame = parse_pings(body)
    settings = IngestSettings(max_age_s=float(current_app.config["AVL_MAX_PING_AGE_S"]))
    with get_db(current_app).session() as session:
        report = get_avl(current_app).ingest(session, frame, "api", settings=settings)
    return jsonify(report.as_json())


_MAX_WINDOW = dt.timedelta(days=2)


@history_bp.get("/events")
@endpoint(
    "Observed stop events: one trip run, or one stop in a time window",
    response="StopEventList", tag="avl",
    params=[Param("trip_id", String(), "GTFS trip_id (with service_date)"),
            Param("service_date", Date(), "service day of the trip run, YYYY-MM-DD"),
            Param("stop_id", String(), "GTFS stop_id (with from and to)"),
            Param("from", DateTime(), "arrivals at or after this instant"),
            Param("to", DateTime(), "arrivals before this instant (at most 2 days after from)"),
            Param("limit", Integer(1, 5000), "most events returned", default=1000)],
    description="Events derived from AVL pings as they arrive, with their deviation from the schedule. Give "
                "`trip_id` and `service_date` for a trip run (in stop order), or `stop_id`, `from` and `to` for "
                "a stop's arrivals in a window (in time order).")
def events(trip_id: str | None, service_date: dt.date | None, stop_id: str | None, limit: int,
           **window: dt.datetime | None) -> ResponseReturnValue:
    start, end = window.get("from"), window.get("to")
    query = select(StopEvent, FeedVersion.agency_timezone).join(
        FeedVersion, FeedVersion.id == StopEvent.feed_version_id)
    if trip_id is not None:
        if service_date is None:
            raise BadRequest("service_date is required with trip_id", field="service_date")
        query = query.where(StopEvent.trip_id == trip_id, StopEvent.service_date == service_date).order_by(
            StopEvent.feed_version_id, StopEvent.stop_sequence)
    elif stop_id is not None:
        if start is None or end is None:
            raise BadRequest("from and to are required with stop_id", field="from" if start is None else "to")
        if not start < end <= start + _MAX_WINDOW:
            raise BadRequest("to must be after from, by at most 2 days", field="to")
        query = query.where(StopEvent.stop_id == stop_id, StopEvent.arrival_at >= start,
                            StopEvent.arrival_at < end).order_by(StopEvent.arrival_at)
    else:
        raise BadRequest("give trip_id and service_date, or stop_id, from and to", field="trip_id")
    with get_db(current_app).session() as session:
        rows = session.execute(query.limit(limit)).all()
        return jsonify({"events": [_event_json(event, tz) for event, tz in rows]})


def _event_json(event: StopEvent, tz_name: str) -> dict[str, Any]:
    tz = ZoneInfo(tz_name)

    def local(at: dt.datetime) -> str:
        return rfc3339(as_utc(at).astimezone(tz))

    return {"trip_id": event.trip_id, "service_date": event.service_date.isoformat(),
            "stop_sequence": event.stop_sequence, "stop_id": event.stop_id, "vehicle_id": event.vehicle_id,
            "arrival_time": local(event.arrival_at), "departure_time": local(event.departure_at),
            "scheduled_arrival_time": local(event.scheduled_arrival_at),
            "scheduled_departure_time": local(event.scheduled_departure_at), "deviation_s": event.deviation_s,
            "passed_between_pings": event.passed_between_pings}
