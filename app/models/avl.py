"""AVL history: registered vehicles, stored GPS pings, ingest rejections by reason, observed stop events.

Pings are the bulk table (Almaty: ~2,500 buses every 10 s ≈ 21 M rows a day), so each row is kept small —
coordinates as integer microdegrees (0.11 m, 4 bytes each), bearing as a small integer, speed as a 4-byte
float, the service date as a date — and its key ``(vehicle_id, recorded_at)`` is also the duplicate check.

On PostgreSQL ``avl_pings`` is **range-partitioned by ``recorded_at``, one partition per UTC day**, created on
demand by the ingest service (``app.avl.store.ensure_partitions``). Daily rather than monthly partitions:
a month of Almaty pings is ~650 M rows, and a day (~21 M) keeps each partition's primary-key index in memory
while queries over a time range touch only the days they name (partition pruning); old days are dropped
whole instead of deleted row by row. SQLite (development and tests) has no partitioning: the same table is
a plain table whose primary key index answers the same per-vehicle, per-time-range queries.

Stop events carry the feed version they were matched against but no foreign key to it: pruning old feed
versions must not delete observed history, which is the truth every prediction is scored against.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

__all__ = ["PING_SOURCES", "AvlRejection", "Ping", "StopEvent", "Vehicle"]

PING_SOURCES = {"api": 1, "gtfsrt": 2, "csv": 3}


class Vehicle(Base):
    """A bus known to the service; once any is registered, pings from unknown vehicles are rejected."""

    __tablename__ = "avl_vehicles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str | None] = mapped_column(String(200))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Ping(Base):
    """One accepted GPS fix; ``trip_id``/``service_date`` as given by the source or assigned by matching."""

    __tablename__ = "avl_pings"

    vehicle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    lat_e6: Mapped[int] = mapped_column(Integer)
    lon_e6: Mapped[int] = mapped_column(Integer)
    trip_id: Mapped[str | None] = mapped_column(String(255))
    route_id: Mapped[str | None] = mapped_column(String(255))
    service_date: Mapped[dt.date | None] = mapped_column(Date)
    bearing: Mapped[int | None] = mapped_column(SmallInteger)
    speed: Mapped[float | None] = mapped_column(REAL)
    source: Mapped[int] = mapped_column(SmallInteger)

    __table_args__ = ({"postgresql_partition_by": "RANGE (recorded_at)"},)


class AvlRejection(Base):
    """How many pings each source had rejected for each reason, per UTC day of receipt."""

    __tablename__ = "avl_rejections"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class StopEvent(Base):
    """An observed arrival and departure at one stop of one trip run, with its deviation from the schedule.

    ``deviation_s`` is observed minus scheduled arrival (positive = late). ``passed_between_pings`` marks
    events interpolated between two pings rather than seen at the stop. ``known_at`` is when the live service
    emitted the event (the arrival of the ping that released it; see ``prediction.avl.events``); empty in rows
    stored before it was kept.
    """

    __tablename__ = "avl_stop_events"

    feed_version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trip_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    service_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    stop_sequence: Mapped[int] = mapped_column(Integer, primary_key=True)
    stop_id: Mapped[str] = mapped_column(String(255))
    vehicle_id: Mapped[str] = mapped_column(String(64))
    arrival_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    departure_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    scheduled_arrival_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    scheduled_departure_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    deviation_s: Mapped[int] = mapped_column(Integer)
    passed_between_pings: Mapped[bool] = mapped_column(Boolean)
    known_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_avl_stop_events_stop_arrival", "feed_version_id", "stop_id", "arrival_at"),
                      Index("ix_avl_stop_events_known_at", "feed_version_id", "known_at"))
