"""JSON Schemas (OpenAPI 3.1 / JSON Schema 2020-12) of every response body, with one example each.

Endpoints name their response by key (``@endpoint(..., response="Stop")``); the OpenAPI builder
publishes ``SCHEMAS`` under ``components/schemas`` and ``EXAMPLES`` beside each response.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EXAMPLES", "SCHEMAS", "ref"]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


def _object(properties: dict[str, Any], *, optional: tuple[str, ...] = (), description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
    }
    if description:
        schema["description"] = description
    return schema


_COLOR = _nullable("string", pattern="^[0-9A-Fa-f]{6}$", description="GTFS colour, hex RRGGBB without '#'")
_ISO_TIME = {"type": "string", "format": "date-time", "description": "ISO-8601 with the agency's UTC offset"}

_ROUTE_REF = _object({
    "route_id": {"type": "string"},
    "route_short_name": _nullable("string"),
    "route_color": _COLOR,
})

_STOP = _object(
    {
        "stop_id": {"type": "string"},
        "code": _nullable("string", description="the code printed at the stop"),
        "name": _nullable("string"),
        "lat": _nullable("number"),
        "lon": _nullable("number"),
        "location_type": {"type": "integer", "description": "0 stop, 1 station"},
        "parent_station": _nullable("string"),
        "translations": {"type": "object", "additionalProperties": {"type": "string"},
                         "description": "the stop name by language code (kk, ru, en, …)"},
        "routes": {"type": "array", "items": ref("RouteRef"), "description": "routes calling here"},
        "distance_m": {"type": "number", "description": "distance from `near`, when given"},
        "match": {"enum": ["exact", "prefix", "word", "substring", "fuzzy"],
                  "description": "how the stop matched `q`, when given (search only)"},
    },
    optional=("routes", "distance_m", "match"),
)

_ROUTE = _object({
    "route_id": {"type": "string"},
    "agency_id": _nullable("string"),
    "route_short_name": _nullable("string"),
    "route_long_name": _nullable("string"),
    "route_desc": _nullable("string"),
    "route_type": {"type": "integer", "description": "GTFS route_type (3 = bus)"},
    "route_color": _COLOR,
    "route_text_color": _COLOR,
    "route_sort_order": _nullable("integer"),
})

_GEOJSON_LINE = _object({
    "type": {"const": "Feature"},
    "geometry": _object({
        "type": {"const": "LineString"},
        "coordinates": {"type": "array", "items": {"type": "array", "items": {"type": "number"},
                                                   "minItems": 2, "maxItems": 2},
                        "description": "[lon, lat] pairs"},
    }),
    "properties": _object({
        "shape_id": {"type": "string"},
        "length_m": _nullable("number"),
        "generated": {"type": "boolean", "description": "straight lines between stops (the feed had no shape)"},
    }),
}, description="GeoJSON Feature")

_DIRECTION = _object(
    {
        "direction_id": _nullable("integer"),
        "headsign": _nullable("string"),
        "trip_count": {"type": "integer", "description": "trips that follow this stop pattern"},
        "stops": {"type": "array", "items": ref("Stop")},
        "shape": {"oneOf": [ref("GeoJSONLineString"), {"type": "null"}], "description": "absent with shape=false"},
    },
    optional=("shape",),
)

_DEPARTURE_FIELDS: dict[str, Any] = {
    "route_id": {"type": "string"},
    "route_short_name": _nullable("string"),
    "route_color": _COLOR,
    "headsign": _nullable("string"),
    "trip_id": {"type": "string"},
    "stop_sequence": {"type": "integer"},
    "service_date": {"type": "string", "format": "date", "description": "the GTFS service day of the trip"},
    "scheduled_time": _ISO_TIME,
}

SCHEDULED_NOTE = "scheduled departure from this stop"

_NAMES = {"type": "object", "additionalProperties": {"type": "string"}}
_TIME_PAIR = _object({
    "scheduled": {**_nullable("string"), "format": "date-time"},
    "predicted": {**_nullable("string"), "format": "date-time", "description": "live rows only, else null"},
})
_ARRIVAL_FIELDS: dict[str, Any] = {
    **_DEPARTURE_FIELDS,
    "route_text_color": _COLOR,
    "headsign_translations": {**_NAMES, "description": "the headsign in every language the feed's translations.txt "
                              "translates into (kk, ru, en, …; the feed's own text where it lacks one); "
                              "empty without a headsign"},
    "route_long_name": _nullable("string"),
    "route_long_name_translations": {**_NAMES, "description": "the route's long name, as headsign_translations"},
    "wheelchair_accessible": {"type": ["boolean", "null"],
                              "description": "trips.txt wheelchair_accessible: 1 true, 2 false, else null (unknown)"},
    "predicted_time": {**_ISO_TIME, "description": "predicted arrival on live rows; the scheduled time otherwise"},
    "interval": {"oneOf": [_object({"early": _ISO_TIME, "late": _ISO_TIME}), {"type": "null"}],
                 "description": "the prediction's 10-90 % interval, live rows with a model"},
    "vehicle_id": _nullable("string"),
    "minutes_away": {"type": "integer", "minimum": 0, "description": "whole minutes from `at`, rounded down"},
    "realtime": {"type": "boolean", "description": "false: from the timetable, not a live prediction"},
    "stalled_s": {"type": ["integer", "null"], "minimum": 0,
                  "description": "seconds the bus has been overdue at its next stop (standing still or silent: "
                                 "its prediction grows with it); null on timetable rows"},
    "last_update": {**_nullable("string"), "format": "date-time",
                    "description": "when the position behind a live row was taken"},
    "arrival_time": {**_TIME_PAIR, "description": "arrival at this stop (OneBusAway's scheduled/predictedArrivalTime)"},
    "departure_time": {**_TIME_PAIR, "description": "departure from this stop; the predicted one keeps the "
                       "scheduled dwell"},
    "schedule_deviation_s": {"type": ["integer", "null"],
                             "description": "predicted − scheduled arrival in seconds (negative: early); live rows"},
    "stops_away": {"type": ["integer", "null"], "minimum": 0,
                   "description": "stops between the bus's last stop seen and this one; live rows"},
    "distance_m": {"type": ["integer", "null"], "minimum": 0,
                   "description": "metres along the shape from the bus's last stop seen; live rows"},
    "status": {"enum": ["scheduled", "live", "cancelled", "skipped"],
               "description": "scheduled: timetable only; live: predicted; cancelled: the run is called off; "
                              "skipped: the bus passes this stop without stopping"},
    "occupancy": {"type": ["string", "null"],
                  "description": "GTFS-rt OccupancyStatus name (e.g. FEW_SEATS_AVAILABLE); null when unknown"},
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": _object({"error": _object({
        "code": {"type": "string", "description": "machine-readable, e.g. bad_request, not_found"},
        "message": {"type": "string"},
        "field": _nullable("string", description="the parameter at fault"),
    })}),
    "RouteRef": _ROUTE_REF,
    "Stop": _STOP,
    "StopList": _object({
        "stops": {"type": "array", "items": ref("Stop")},
        "suggestions": {"type": "array", "items": {"type": "string"}, "maxItems": 3,
                        "description": "when nothing matched `q` better than with a typo: `q` respelled as the "
                                       "nearest stop names write it (\"did you mean\"), best first; else empty"},
    }),
    "Route": _ROUTE,
    "RouteList": _object({"routes": {"type": "array", "items": ref("Route")}}),
    "GeoJSONLineString": _GEOJSON_LINE,
    "RouteDirection": _DIRECTION,
    "RouteDetail": {"allOf": [
        ref("Route"), _object({"directions": {"type": "array", "items": ref("RouteDirection")}})]},
    "Departure": _object(_DEPARTURE_FIELDS, description=SCHEDULED_NOTE),
    "Departures": _object({
        "stop": ref("Stop"),
        "date": {"type": "string", "format": "date"},
        "timezone": {"type": "string", "description": "the agency's IANA time zone"},
        "departures": {"type": "array", "items": ref("Departure")},
    }),
    "Arrival": _object(_ARRIVAL_FIELDS, description="one bus due at the stop, live or from the timetable; "
                       "`scheduled_time` is the arrival on board rows and the departure on schedule answers"),
    "Arrivals": _object({
        "stop": ref("Stop"),
        "timezone": {"type": "string"},
        "generated_at": _ISO_TIME,
        "at": _ISO_TIME,
        "window_min": {"type": "integer"},
        "source": {"enum": ["board", "schedule"], "description": "a live board, or the timetable"},
        "version": _nullable("integer", description="the board's publish counter; null from the schedule"),
        "realtime": {"type": "boolean", "description": "some row is live"},
        "arrivals": {"type": "array", "items": ref("Arrival")},
    }),
    "Health": _object({"status": {"type": "string"}}),
    "Readiness": _object({"status": {"enum": ["ready", "not_ready"]},
                          "checks": {"type": "object", "additionalProperties": {"type": "string"}}}),
    "OpenAPI": {"type": "object", "description": "this document"},
    "HTML": {"type": "string", "description": "an HTML page"},
    # one event of a text/event-stream (OpenAPI 3.1 has a stream's schema describe each event, as 3.2's itemSchema)
    "EventStream": _object({
        "event": {"const": "board"},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": ref("Arrivals"),
                 "description": "the same JSON document as `/arrivals` answers"},
        "id": {"type": "string", "description": "the board's ETag"},
    }, optional=("id",), description="One server-sent event; the stream also sends `retry` and heartbeat comments"),
}

_EXAMPLE_STOP: dict[str, Any] = {
    "stop_id": "S1", "code": "1001", "name": "Абая — Достык", "lat": 43.2389, "lon": 76.957,
    "location_type": 0, "parent_station": None,
    "translations": {"kk": "Абай — Достық", "en": "Abay — Dostyk"},
}
_EXAMPLE_ROUTE: dict[str, Any] = {
    "route_id": "R12", "agency_id": "onay", "route_short_name": "12", "route_long_name": "Достык — Сейфуллина",
    "route_desc": None, "route_type": 3, "route_color": "E4002B", "route_text_color": "FFFFFF",
    "route_sort_order": None,
}
_EXAMPLE_DEPARTURE: dict[str, Any] = {
    "route_id": "R12", "route_short_name": "12", "route_color": "E4002B", "headsign": "Сейфуллина",
    "trip_id": "T12-late", "stop_sequence": 2, "service_date": "2026-03-10",
    "scheduled_time": "2026-03-11T00:30:00+05:00",
}

_EXAMPLE_NAMES: dict[str, Any] = {
    "route_text_color": "FFFFFF", "headsign_translations": {"en": "Seifullin", "kk": "Сейфуллин", "ru": "Сейфуллина"},
    "route_long_name": "Достык — Сейфуллина",
    "route_long_name_translations": {"en": "Dostyk — Seifullin", "kk": "Достық — Сейфуллин",
                                     "ru": "Достык — Сейфуллина"},
    "wheelchair_accessible": True,
}
_EXAMPLE_LIVE: dict[str, Any] = {
    **_EXAMPLE_DEPARTURE, "trip_id": "T12-late", **_EXAMPLE_NAMES, "scheduled_time": "2026-03-11T00:30:00+05:00",
    "predicted_time": "2026-03-11T00:31:40+05:00",
    "interval": {"early": "2026-03-11T00:30:50+05:00", "late": "2026-03-11T00:33:10+05:00"},
    "vehicle_id": "bus-0142", "minutes_away": 11, "realtime": True, "stalled_s": 0,
    "last_update": "2026-03-11T00:19:52+05:00",
    "arrival_time": {"scheduled": "2026-03-11T00:30:00+05:00", "predicted": "2026-03-11T00:31:40+05:00"},
    "departure_time": {"scheduled": "2026-03-11T00:30:20+05:00", "predicted": "2026-03-11T00:32:00+05:00"},
    "schedule_deviation_s": 100, "stops_away": 3, "distance_m": 1840, "status": "live",
    "occupancy": "MANY_SEATS_AVAILABLE",
}
_EXAMPLE_TIMETABLE: dict[str, Any] = {
    **_EXAMPLE_DEPARTURE, "trip_id": "T12-b", **_EXAMPLE_NAMES, "scheduled_time": "2026-03-11T00:45:00+05:00",
    "predicted_time": "2026-03-11T00:45:00+05:00", "interval": None, "vehicle_id": None, "minutes_away": 25,
    "realtime": False, "stalled_s": None, "last_update": None,
    "arrival_time": {"scheduled": "2026-03-11T00:45:00+05:00", "predicted": None},
    "departure_time": {"scheduled": "2026-03-11T00:45:20+05:00", "predicted": None},
    "schedule_deviation_s": None, "stops_away": None, "distance_m": None, "status": "scheduled", "occupancy": None,
}

EXAMPLES: dict[str, Any] = {
    "Stop": {**_EXAMPLE_STOP, "routes": [{"route_id": "R12", "route_short_name": "12", "route_color": "E4002B"}]},
    "StopList": {"stops": [{**_EXAMPLE_STOP, "distance_m": 12.5, "match": "fuzzy",
                            "routes": [{"route_id": "R12", "route_short_name": "12", "route_color": "E4002B"}]}],
                 "suggestions": ["Abay"]},
    "RouteList": {"routes": [_EXAMPLE_ROUTE]},
    "RouteDetail": {**_EXAMPLE_ROUTE, "directions": [{
        "direction_id": 0, "headsign": "Сейфуллина", "trip_count": 42, "stops": [_EXAMPLE_STOP],
        "shape": {"type": "Feature", "geometry": {"type": "LineString",
                                                  "coordinates": [[76.957, 43.2389], [76.9455, 43.2398]]},
                  "properties": {"shape_id": "SH12", "length_m": 935.2, "generated": False}},
    }]},
    "Departures": {"stop": _EXAMPLE_STOP, "date": "2026-03-10", "timezone": "Asia/Almaty",
                   "departures": [_EXAMPLE_DEPARTURE]},
    "Arrivals": {"stop": _EXAMPLE_STOP, "timezone": "Asia/Almaty", "generated_at": "2026-03-11T00:20:00+05:00",
                 "at": "2026-03-11T00:20:00+05:00", "window_min": 90, "source": "board", "version": 8123,
                 "realtime": True, "arrivals": [_EXAMPLE_LIVE, _EXAMPLE_TIMETABLE]},
    "Error": {"error": {"code": "bad_request", "message": "near must be 'lat,lon' in decimal degrees, got 'x'",
                        "field": "near"}},
    "Health": {"status": "ok"},
    "Readiness": {"status": "ready", "checks": {"database": "ok", "redis": "ok"}},
}
