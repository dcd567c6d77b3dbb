"""Live data for the rider page tests: predictions and vehicle positions written by a worker cycle."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from flask import Flask

from app import get_db
from app.models import FeedVersion, Translation
from app.realtime.boards import PredictedArrival
from app.realtime.catalog import StaticCatalog
from app.realtime.gtfs_rt import VehicleState
from tests.fixtures.boards import write_live

__all__ = ["BETWEEN_S1_AND_S2", "publish_live", "translate_headsign"]

# a point on route 12's shape (tests/api_feed.py SH12) between its first two stops
BETWEEN_S1_AND_S2 = (43.2394, 76.9510)


def publish_live(app: Flask, stop: str, calls: list[tuple[str, int, float, str]],
                 vehicles: Sequence[tuple[str, str, float, float]] = ()) -> None:
    """Predictions at ``stop`` — (trip, stop_sequence, minutes from now, vehicle) — and vehicle positions
    — (vehicle, trip, lat, lon) — written by one worker cycle."""
    now = dt.datetime.now(dt.UTC)
    with get_db(app).session() as session:
        catalog = StaticCatalog.load(session)
    day = now.astimezone(catalog.timezone).date()
    predictions = [PredictedArrival(trip, stop, seq, day, now + dt.timedelta(minutes=m), vehicle_id=v,
                                    scheduled=now + dt.timedelta(minutes=m - 1)) for trip, seq, m, v in calls]
    states = [VehicleState(vehicle, lat, lon, now, trip_id=trip, service_date=day)
              for vehicle, trip, lat, lon in vehicles]
    write_live(app, predictions, states, now=now)


def translate_headsign(app: Flask, headsign: str, language: str, text: str) -> None:
    """A translations.txt row for a trip headsign, keyed by the headsign itself (as the Almaty demo feed does)."""
    with get_db(app).session() as session:
        feed = session.query(FeedVersion).filter(FeedVersion.is_active.is_(True)).one()
        session.add(Translation(feed_version_id=feed.id, table_name="trips", field_name="trip_headsign",
                                language=language, translation=text, field_value=headsign))
        session.commit()
