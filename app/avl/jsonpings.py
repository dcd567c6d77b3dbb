"""Pings POSTed by on-board units as JSON: structure and types are checked strictly (a 400 names the field,
e.g. ``pings[3].latitude``), values (range, age, vehicle) are left to the ingest service to count."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd

from app.avl.ingest import FRAME_COLUMNS
from app.errors import BadRequest

__all__ = ["MAX_PINGS", "parse_pings"]

MAX_PINGS = 5000
_TEXT = {"vehicle_id": 64, "trip_id": 255, "route_id": 255}


def parse_pings(body: Any) -> pd.DataFrame:
    """``{"pings": [{vehicle_id, timestamp, latitude, longitude[, trip_id, route_id, start_date, bearing,
    speed]}, …]}`` as an ingest frame; raises ``BadRequest`` naming the first bad field."""
    pings = body.get("pings") if isinstance(body, dict) else None
    if not isinstance(pings, list) or not 1 <= len(pings) <= MAX_PINGS:
        raise BadRequest(f"pings must be a list of 1 to {MAX_PINGS} pings", field="pings")
    rows = [_ping(item, f"pings[{i}]") for i, item in enumerate(pings)]
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))


def _ping(item: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(item, dict):
        raise BadRequest("a ping must be a JSON object", field=where)
    texts = {name: _text(item, name, where, required=name == "vehicle_id") for name in _TEXT}
    start_date = _text(item, "start_date", where, required=False)
    if start_date is not None:
        start_date = start_date.replace("-", "")
        if len(start_date) != 8 or not start_date.isdigit():
            raise BadRequest("start_date must be YYYYMMDD", field=f"{where}.start_date")
    return (texts["vehicle_id"], _timestamp(item.get("timestamp"), f"{where}.timestamp"),
            _number(item, "latitude", where, True), _number(item, "longitude", where, True), texts["trip_id"],
            texts["route_id"], start_date, _number(item, "bearing", where, False),
            _number(item, "speed", where, False))


def _text(item: dict[str, Any], name: str, where: str, required: bool) -> str | None:
    value = item.get(name)
    if value is None and not required:
        return None
    limit = _TEXT.get(name, 8 if name == "start_date" else 255)
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= limit:
        raise BadRequest(f"{name} must be a string of 1 to {limit} characters", field=f"{where}.{name}")
    return value.strip()


def _number(item: dict[str, Any], name: str, where: str, required: bool) -> float:
    value = item.get(name)
    if value is None and not required:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{name} must be a finite number", field=f"{where}.{name}")
    return float(value)


def _timestamp(value: Any, field: str) -> float:
    """Epoch seconds, or ISO-8601 text with a UTC offset."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str) and len(value) <= 40:
        try:
            at = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            at = None
        if at is not None and at.utcoffset() is not None:
            return at.timestamp()
    raise BadRequest("timestamp must be epoch seconds or ISO-8601 with a UTC offset", field=field)
