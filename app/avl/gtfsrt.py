"""GTFS-realtime VehiclePositions as pings: decode a FeedMessage (file bytes or a polled URL) into an ingest
frame, counting entities that cannot be pings; a payload that is not a FeedMessage raises ``GtfsRtError``."""

from __future__ import annotations

import math
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2

from app.avl.ingest import FRAME_COLUMNS

__all__ = ["MAX_BYTES", "GtfsRtError", "VehiclePositions", "decode_vehicle_positions", "fetch", "poll"]

MAX_BYTES = 64 * 1024 * 1024


class GtfsRtError(ValueError):
    """The payload is not a usable GTFS-realtime FeedMessage (names the source)."""


@dataclass
class VehiclePositions:
    """Pings from one FeedMessage, the header's timestamp, and entities that were not usable, by reason."""

    pings: pd.DataFrame
    header_timestamp: float | None
    rejected: Counter[str] = field(default_factory=Counter)


def decode_vehicle_positions(payload: bytes, source: str) -> VehiclePositions:
    message = gtfs_realtime_pb2.FeedMessage()
    try:
        message.ParseFromString(payload)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise GtfsRtError(f"{source}: not a GTFS-realtime FeedMessage ({exc})") from exc
    if not message.HasField("header") or not message.header.gtfs_realtime_version:
        raise GtfsRtError(f"{source}: not a GTFS-realtime FeedMessage (no header with gtfs_realtime_version)")
    header_t = float(message.header.timestamp) if message.header.timestamp else None
    rows, rejected = [], Counter[str]()
    for entity in message.entity:
        if not entity.HasField("vehicle") or entity.is_deleted:
            continue
        row = _ping(entity, header_t)
        if isinstance(row, str):
            rejected[row] += 1
        else:
            rows.append(row)
    return VehiclePositions(pd.DataFrame(rows, columns=list(FRAME_COLUMNS)), header_t, rejected)


def _ping(entity: gtfs_realtime_pb2.FeedEntity, header_t: float | None) -> tuple[object, ...] | str:
    vp = entity.vehicle
    vehicle = (vp.vehicle.id or vp.vehicle.label or entity.id).strip()[:64]
    if not vehicle:
        return "missing_vehicle"
    if not vp.HasField("position"):
        return "no_position"
    t = float(vp.timestamp) if vp.timestamp else header_t
    if t is None:
        return "bad_timestamp"
    trip = vp.trip
    pos = vp.position
    return (vehicle, t, float(pos.latitude), float(pos.longitude), trip.trip_id or None, trip.route_id or None,
            trip.start_date or None, float(pos.bearing) if pos.HasField("bearing") else math.nan,
            float(pos.speed) if pos.HasField("speed") else math.nan)


def fetch(source: str, timeout_s: float = 20.0) -> bytes:
    """The bytes of a file path or an http(s) URL (at most ``MAX_BYTES``)."""
    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(source, headers={"Accept": "application/x-protobuf"})
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            payload: bytes = response.read(MAX_BYTES + 1)
    else:
        payload = Path(source).read_bytes()
    if len(payload) > MAX_BYTES:
        raise GtfsRtError(f"{source}: larger than {MAX_BYTES} bytes")
    return payload


def poll(source: str, interval_s: float, handle: Callable[[VehiclePositions], None],
         on_error: Callable[[Exception], None], *, polls: int | None = None,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Fetch and decode ``source`` every ``interval_s`` (``polls`` times, or forever); a failed fetch or a bad
    payload is reported through ``on_error`` and polling goes on. Returns the number of successful polls."""
    done = ok = 0
    while polls is None or done < polls:
        started = time.monotonic()
        try:
            handle(decode_vehicle_positions(fetch(source), source))
            ok += 1
        except (OSError, GtfsRtError) as exc:
            on_error(exc)
        done += 1
        if polls is None or done < polls:
            sleep(max(0.0, interval_s - (time.monotonic() - started)))
    return ok
