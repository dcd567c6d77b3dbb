"""The API tests' small Almaty feed with a shape for every trip (the importer draws straight-line shapes for
trips without one; the worker's network needs them), plus helpers to build a worker over it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from flask import Flask
from sqlalchemy import select, update

from app import get_db, get_redis
from app.models import Shape, ShapePoint, Stop, StopTime, Trip
from app.worker.loop import Worker, WorkerSettings
from app.worker.predlog import PredictionLogSampler
from prediction.geo import cumulative_distance_m
from tests.api_feed import add_demo_feed

__all__ = ["ALMATY", "MORNING", "add_worker_feed", "event", "make_worker"]

ALMATY = ZoneInfo("Asia/Almaty")
MORNING = dt.datetime(2026, 3, 10, 8, 1, 30, tzinfo=ALMATY).timestamp()


def add_worker_feed(app: Flask) -> int:
    feed_id = add_demo_feed(app)
    shape_every_trip(app, feed_id)
    return feed_id


def shape_every_trip(app: Flask, feed_id: int) -> None:
    """Straight-line shapes through the stops of the trips without one, as the importer draws them."""
    with get_db(app).session() as session:
        stops = {s.stop_id: (s.stop_lat, s.stop_lon) for s in session.scalars(select(Stop))}
        shapeless = session.scalars(select(Trip.trip_id).where(Trip.shape_id.is_(None))).all()
        for trip_id in shapeless:
            calls = session.scalars(select(StopTime.stop_id).where(StopTime.trip_id == trip_id)
                                    .order_by(StopTime.stop_sequence)).all()
            shape_id = f"line-{'-'.join(calls)}"
            if session.get(Shape, (feed_id, shape_id)) is None:
                lats = np.array([stops[s][0] for s in calls])
                lons = np.array([stops[s][1] for s in calls])
                dist = cumulative_distance_m(lats, lons)
                session.add(Shape(feed_version_id=feed_id, shape_id=shape_id, generated=True,
                                  length_m=float(dist[-1])))
                session.add_all(ShapePoint(feed_version_id=feed_id, shape_id=shape_id, shape_pt_sequence=i + 1,
                                           shape_pt_lat=float(la), shape_pt_lon=float(lo), dist_m=float(d))
                                for i, (la, lo, d) in enumerate(zip(lats, lons, dist, strict=True)))
                session.flush()
            session.execute(update(Trip).where(Trip.trip_id == trip_id).values(shape_id=shape_id))
        session.commit()


def event(trip_id: str, seq: int, departure: float, vehicle: str = "BUS-1", dwell: float = 20.0) -> dict[str, Any]:
    return {"trip_id": trip_id, "start_date": "20260310", "stop_sequence": seq, "arrival": departure - dwell,
            "departure": departure, "vehicle_id": vehicle}


def events(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def make_worker(app: Flask, tmp_path: Path, settings: WorkerSettings | None = None, *,
                log: bool = False) -> Worker:
    sampler = PredictionLogSampler(get_db(app).session) if log else None
    with get_db(app).session() as session:
        return Worker.from_database(session, get_redis(app), tmp_path / "models", settings=settings, log=sampler)
