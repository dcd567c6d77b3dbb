"""A small Almaty feed written straight into the database as ORM rows, for the API tests.

Service ``WD`` runs Monday–Friday in 2026 except Thursday 2026-03-12 (removed in calendar_dates),
when service ``EXTRA`` runs instead; ``WE`` runs at weekends. Route 12 has a 24:30:00 trip and an
00:05:00 trip so arrivals around midnight can be checked.

    S1 Абая — Достык ──── S2 Абай даңғылы — Фурманов (platform of station ST) ──── S3 Сейфуллина
                           └── route 92 ──► S4 Толе би — Сейфуллина
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from flask import Flask
from sqlalchemy.orm import Session

from app import get_db
from app.models import (
    Calendar,
    CalendarDate,
    FeedVersion,
    Route,
    Shape,
    ShapePoint,
    Stop,
    StopTime,
    Translation,
    Trip,
)
from prediction.geo import cumulative_distance_m
from prediction.gtfs.gtfstime import parse_gtfs_time

__all__ = ["ALMATY_OFFSET", "TUESDAY", "add_demo_feed", "add_feed_version", "search_text"]

TUESDAY = dt.date(2026, 3, 10)
THURSDAY = dt.date(2026, 3, 12)
ALMATY_OFFSET = "+05:00"


@dataclass(frozen=True)
class StopRow:
    stop_id: str
    code: str | None
    name: str
    lat: float
    lon: float
    location_type: int = 0
    parent: str | None = None


STOPS = [
    StopRow("S1", "1001", "Абая — Достык", 43.2389, 76.9570),
    StopRow("S2", "1002", "Абай даңғылы — Фурманов", 43.2398, 76.9455, parent="ST"),
    StopRow("S3", "1003", "Сейфуллина", 43.2405, 76.9330),
    StopRow("S4", "1004", "Толе би — Сейфуллина", 43.2560, 76.9290),
    StopRow("S5", "1005", "Аль-Фараби — Навои", 43.2180, 76.9270),
    StopRow("ST", None, "Абай даңғылы", 43.2399, 76.9456, location_type=1),
]
# (record_id, field_value, language, translation)
TRANSLATIONS = [
    ("S1", None, "kk", "Абай — Достық"),
    ("S1", None, "en", "Abay — Dostyk"),
    (None, "Сейфуллина", "kk", "Сейфуллин"),
    (None, "Сейфуллина", "en", "Seifullin"),
    ("S3", None, "en", "Seifullin St"),  # by record_id: wins over the by-name English
]
# trip_id: (route, service, direction, headsign, shape, [(stop, time, pickup_type)])
TRIPS: dict[str, tuple[str, str, int, str, str | None, list[tuple[str, str, int]]]] = {
    "T12-a": ("R12", "WD", 0, "Сейфуллина", "SH12", [("S1", "08:00:00", 0), ("S2", "08:05:00", 0),
                                                      ("S3", "08:10:00", 0)]),
    "T12-b": ("R12", "WD", 0, "Сейфуллина", "SH12", [("S1", "08:15:00", 0), ("S2", "08:20:00", 0),
                                                      ("S3", "08:25:00", 0)]),
    "T12-late": ("R12", "WD", 0, "Сейфуллина", "SH12", [("S1", "23:50:00", 0), ("S2", "24:30:00", 0),
                                                         ("S3", "24:45:00", 0)]),
    "T12-early": ("R12", "WD", 0, "Фурманова", None, [("S1", "00:05:00", 0), ("S2", "00:10:00", 0)]),
    "T12-back": ("R12", "WD", 1, "Достык", None, [("S3", "09:00:00", 0), ("S2", "09:05:00", 0),
                                                 ("S1", "09:10:00", 0)]),
    "T12-extra": ("R12", "EXTRA", 0, "Сейфуллина", "SH12", [("S1", "08:30:00", 0), ("S2", "08:35:00", 0),
                                                             ("S3", "08:40:00", 0)]),
    "T92-a": ("R92", "WD", 0, "Толе би", None, [("S2", "08:07:00", 0), ("S4", "08:20:00", 0)]),
    "T92-nopick": ("R92", "WD", 0, "Толе би", None, [("S2", "08:12:00", 1), ("S4", "08:25:00", 0)]),
    "T92-we": ("R92", "WE", 0, "Толе би", None, [("S2", "10:00:00", 0), ("S4", "10:10:00", 0)]),
}
SHAPE_SH12 = [(43.2389, 76.9570), (43.2394, 76.9510), (43.2398, 76.9455), (43.2405, 76.9330)]


def search_text(name: str, code: str | None, translations: list[str]) -> str:
    """What the importer stores: casefolded name, code and translated names, whitespace normalised."""
    return " ".join(" ".join([name, code or "", *translations]).casefold().split())


def add_feed_version(session: Session, *, active: bool, label: str = "test feed") -> FeedVersion:
    feed = FeedVersion(label=label, source="tests", sha256="0" * 64, status="ready", is_active=active,
                       agency_timezone="Asia/Almaty", counts={}, warnings=[],
                       activated_at=dt.datetime.now(dt.UTC) if active else None)
    session.add(feed)
    session.flush()
    return feed


def add_demo_feed(app: Flask, *, active: bool = True, label: str = "demo") -> int:
    """Insert the demo feed; returns its feed_version id."""
    with get_db(app).session() as session:
        feed = add_feed_version(session, active=active, label=label)
        session.add_all(_stops(feed.id) + _routes(feed.id) + _calendars(feed.id) + _shapes(feed.id))
        session.add_all(_trips(feed.id))
        session.commit()
        return feed.id


def _stops(feed_id: int) -> list[Any]:
    rows: list[Any] = []
    for stop in STOPS:
        names = [t for rid, value, _, t in TRANSLATIONS if rid == stop.stop_id or value == stop.name]
        rows.append(Stop(feed_version_id=feed_id, stop_id=stop.stop_id, stop_code=stop.code, stop_name=stop.name,
                         stop_lat=stop.lat, stop_lon=stop.lon, location_type=stop.location_type,
                         parent_station=stop.parent, search_text=search_text(stop.name, stop.code, names)))
    rows += [Translation(feed_version_id=feed_id, table_name="stops", field_name="stop_name", language=lang,
                         translation=text, record_id=rid, field_value=value)
             for rid, value, lang, text in TRANSLATIONS]
    return rows


def _routes(feed_id: int) -> list[Any]:
    return [
        Route(feed_version_id=feed_id, route_id="R92", agency_id="onay", route_short_name="92",
              route_long_name="Фурманов — Толе би", route_type=3, route_color="0057B8", route_text_color="FFFFFF"),
        Route(feed_version_id=feed_id, route_id="R12", agency_id="onay", route_short_name="12",
              route_long_name="Достык — Сейфуллина", route_type=3, route_color="E4002B", route_text_color="FFFFFF"),
    ]


def _calendars(feed_id: int) -> list[Any]:
    year = (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    weekdays = {"monday": True, "tuesday": True, "wednesday": True, "thursday": True, "friday": True}
    weekend = {"saturday": True, "sunday": True}
    return [
        Calendar(feed_version_id=feed_id, service_id="WD", start_date=year[0], end_date=year[1],
                 saturday=False, sunday=False, **weekdays),
        Calendar(feed_version_id=feed_id, service_id="WE", start_date=year[0], end_date=year[1],
                 **dict.fromkeys(weekdays, False), **weekend),
        CalendarDate(feed_version_id=feed_id, service_id="WD", date=THURSDAY, exception_type=2),
        CalendarDate(feed_version_id=feed_id, service_id="EXTRA", date=THURSDAY, exception_type=1),
    ]


def _shapes(feed_id: int) -> list[Any]:
    lats = np.array([p[0] for p in SHAPE_SH12])
    lons = np.array([p[1] for p in SHAPE_SH12])
    dist = cumulative_distance_m(lats, lons)
    points: list[Any] = [
        ShapePoint(feed_version_id=feed_id, shape_id="SH12", shape_pt_sequence=i + 1, shape_pt_lat=lat,
                   shape_pt_lon=lon, dist_m=float(d))
        for i, ((lat, lon), d) in enumerate(zip(SHAPE_SH12, dist, strict=True))
    ]
    return [Shape(feed_version_id=feed_id, shape_id="SH12", generated=False, length_m=float(dist[-1])), *points]


def _trips(feed_id: int) -> list[Any]:
    rows: list[Any] = []
    for trip_id, (route_id, service_id, direction, headsign, shape_id, calls) in TRIPS.items():
        times = [parse_gtfs_time(t) for _, t, _ in calls]
        rows.append(Trip(feed_version_id=feed_id, trip_id=trip_id, route_id=route_id, service_id=service_id,
                         trip_headsign=headsign, direction_id=direction, shape_id=shape_id,
                         start_s=times[0], end_s=times[-1]))
        rows += [StopTime(feed_version_id=feed_id, trip_id=trip_id, stop_sequence=(i + 1) * 10, stop_id=stop_id,
                          arrival_s=seconds, departure_s=seconds, pickup_type=pickup)
                 for i, ((stop_id, _, pickup), seconds) in enumerate(zip(calls, times, strict=True))]
    return rows
