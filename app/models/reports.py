"""Reporting: staff sessions, boarding facts from every tap source, and the rollups reports read.

Facts (``report_boardings``) hold one row per accepted boarding with its local service date, hour and
day type already worked out, so rollups are plain GROUP BYs. Rollups are rebuilt a service date at a
time (``app.reports.rollups``); their size depends on the network, not on the number of taps.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.ticketing import bigint_pk

__all__ = [
    "AccuracyDay",
    "OdDay",
    "OdZoneDay",
    "OdZoneTotalDay",
    "OnTimeHour",
    "PredictionLog",
    "ReportBoarding",
    "ReportState",
    "RouteHour",
    "StaffSession",
    "StopDay",
    "StopZone",
    "TopUpDay",
]

STAFF_ROLES = ("analyst", "support", "admin")


class StaffSession(Base):
    """A staff login: the cookie holds a random token, only its hash is stored; idle and absolute expiry."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = bigint_pk()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    rider_id: Mapped[int] = mapped_column(ForeignKey("riders.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class ReportBoarding(Base):
    """One accepted boarding: a live tap (``tap_id``) or an imported row (``dataset`` other than ``qala``
    for foreign data, whose money is in its own currency's minor unit)."""

    __tablename__ = "report_boardings"

    id: Mapped[int] = bigint_pk()
    dataset: Mapped[str] = mapped_column(String(32))
    tap_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    rider_key: Mapped[str] = mapped_column(String(64))
    boarded_s: Mapped[int] = mapped_column(BigInteger)  # UTC epoch seconds
    service_date: Mapped[dt.date] = mapped_column(Date)
    hour: Mapped[int] = mapped_column(SmallInteger)
    day_type: Mapped[str] = mapped_column(String(8))
    route_id: Mapped[str] = mapped_column(String(255))
    stop_id: Mapped[str | None] = mapped_column(String(255))
    vehicle_id: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    product: Mapped[str] = mapped_column(String(255))
    paid_by: Mapped[str] = mapped_column(String(16))  # stored_value | pass | free
    fare: Mapped[int] = mapped_column(BigInteger)
    exit_stop_id: Mapped[str | None] = mapped_column(String(255))  # observed destination (metro exit)
    source_transfer: Mapped[bool | None] = mapped_column(Boolean)  # the source's own transfer flag

    __table_args__ = (Index("ix_report_boardings_day_rider", "dataset", "service_date", "rider_key", "boarded_s"),)


class RouteHour(Base):
    """Boardings, transfers and fare revenue by route, local hour, rider category and product."""

    __tablename__ = "report_route_hour"

    dataset: Mapped[str] = mapped_column(String(32), primary_key=True)
    service_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    route_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    category: Mapped[str] = mapped_column(String(64), primary_key=True)
    product: Mapped[str] = mapped_column(String(255), primary_key=True)
    paid_by: Mapped[str] = mapped_column(String(16), primary_key=True)
    day_type: Mapped[str] = mapped_column(String(8))
    boardings: Mapped[int] = mapped_column(BigInteger)
    transfers: Mapped[int] = mapped_column(BigInteger)
    revenue: Mapped[int] = mapped_column(BigInteger)


class StopDay(Base):
    """Boardings and transfers by stop (``''`` when the source names no stop), route and rider category."""

    __tablename__ = "report_stop_day"

    dataset: Mapped[str] = mapped_column(String(32), primary_key=True)
    service_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    stop_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    route_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    category: Mapped[str] = mapped_column(String(64), primary_key=True)
    day_type: Mapped[str] = mapped_column(String(8))
    boardings: Mapped[int] = mapped_column(BigInteger)
    transfers: Mapped[int] = mapped_column(BigInteger)


class OdDay(Base):
    """Trips by origin and destination zone (a stop, or ``route:<id>`` without one); ``''`` = unchained."""

    __tablename__ = "report_od_day"

    dataset: Mapped[str] = mapped_column(String(32), primary_key=True)
    service_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    destination: Mapped[str] = mapped_column(String(255), primary_key=True)
    category: Mapped[str] = mapped_column(String(64), primary_key=True)
    day_type: Mapped[str] = mapped_column(String(8))
    trips: Mapped[int] = mapped_column(BigInteger)

    # the od-matrix filtered by a stop finds its flows from either end without reading every day's cells
    __table_args__ = (Index("ix_report_od_day_origin", "dataset", "origin", "service_date"),
                      Index("ix_report_od_day_destination", "dataset", "destination", "service_date"))


class StopZone(Base):
    """The zone each stop of the active feed falls in, for the zone-level OD rollup: ``zone:<GTFS zone_id>``
    when the feed gives one, else ``grid<m>:<row>:<col>``, a square cell of ``m`` metres (``app.reports.zones``)."""

    __tablename__ = "report_stop_zone"

    stop_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    zone: Mapped[str] = mapped_column(String(255))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)


class OdZoneDay(Base):
    """``report_od_day`` summed over the zones of its stops (an origin without a zone stays itself; ``''`` =
    unchained), so a month's matrix reads zones × zones cells instead of every stop pair."""

    __tablename__ = "report_od_zone_day"

    dataset: Mapped[str] = mapped_column(String(32), primary_key=True)
    service_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    origin_zone: Mapped[str] = mapped_column(String(255), primary_key=True)
    destination_zone: Mapped[str] = mapped_column(String(255), primary_key=True)
    category: Mapped[str] = mapped_column(String(64), primary_key=True)
    day_type: Mapped[str] = mapped_column(String(8))
    trips: Mapped[int] = mapped_column(BigInteger)


class OdZoneTotalDay(Base):
    """``report_od_zone_day`` summed over rider categories: the month's matrix for all riders, the one planners
    open first, reads ≈ 14,000 cells a day instead of ≈ 51,000 (bench figures in docs/reports.md)."""

    __tablename__ = "report_od_zone_total_day"

    dataset: Mapped[str] = mapped_column(String(32), primary_key=True)
    service_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    origin_zone: Mapped[str] = mapped_column(String(255), primary_key=True)
    destination_zone: Mapped[str] = mapped_column(String(255), primary_key=True)
    day_type: Mapped[str] = mapped_column(String(8))
    trips: Mapped[int] = mapped_column(BigInteger)


class TopUpDay(Base):
    """Top-ups received per local day and channel (tiyn)."""

    __tablename__ = "report_topup_day"

    service_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    day_type: Mapped[str] = mapped_column(String(8))
    top_ups: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)


class OnTimeHour(Base):
    """Stop arrivals by route, scheduled local hour and deviation bucket (``bucket_s`` wide, clamped),
    so any early/late window that is a multiple of the bucket is answered without the events."""

    __tablename__ = "report_ontime_hour"

    service_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    route_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)  # floor(deviation / bucket_s)
    day_type: Mapped[str] = mapped_column(String(8))
    arrivals: Mapped[int] = mapped_column(BigInteger)


class AccuracyDay(Base):
    """Scored predictions by service date, route, predictor and ETA-benchmark bucket of time to the actual
    arrival (``bucket`` indexes ``prediction.eta.metrics.ETA_BUCKETS``; ``len(ETA_BUCKETS)`` = beyond them), with
    enough sums for the benchmark, mean absolute error, early rate and interval coverage of any grouping."""

    __tablename__ = "report_accuracy_day"

    service_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    route_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    predictor: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    day_type: Mapped[str] = mapped_column(String(8))
    predictions: Mapped[int] = mapped_column(BigInteger)
    accurate: Mapped[int] = mapped_column(BigInteger)  # error inside the bucket's window
    early: Mapped[int] = mapped_column(BigInteger)  # bus more than 60 s before the prediction
    abs_error_s: Mapped[int] = mapped_column(BigInteger)  # sum of |actual - predicted|
    with_interval: Mapped[int] = mapped_column(BigInteger)
    in_interval: Mapped[int] = mapped_column(BigInteger)


class ReportState(Base):
    """Progress of the incremental refresh: the highest tap id copied into the facts, and when."""

    __tablename__ = "report_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PredictionLog(Base):
    """A prediction the worker published, kept so accuracy can be scored later against observed stop events.

    The worker logs a sample (each trip's downstream stops at most once a minute), not every cycle; scoring
    joins on (``service_date``, ``trip_id``, ``stop_sequence``) with ``avl_stop_events``.
    """

    __tablename__ = "prediction_log"

    id: Mapped[int] = bigint_pk()
    made_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    service_date: Mapped[dt.date] = mapped_column(Date)
    trip_id: Mapped[str] = mapped_column(String(255))
    route_id: Mapped[str] = mapped_column(String(255))
    stop_id: Mapped[str] = mapped_column(String(255))
    stop_sequence: Mapped[int] = mapped_column(Integer)
    vehicle_id: Mapped[str | None] = mapped_column(String(64))
    predictor: Mapped[str] = mapped_column(String(32))  # model name/version or a baseline's name
    predicted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    lower_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    upper_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_prediction_log_day_route", "service_date", "route_id"),
        Index("ix_prediction_log_call", "service_date", "trip_id", "stop_sequence"),
    )
