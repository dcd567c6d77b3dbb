"""Static schedule (GTFS) tables; every row belongs to one feed version.

Times of day are integer seconds since "noon minus 12 h" of the service day, so
``25:10:00`` is stored as 90600 and survives daylight-saving days unchanged.
Money (fare product amounts) is an integer in the currency's minor unit (tiyn).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
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
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

__all__ = [
    "Agency",
    "Area",
    "Calendar",
    "CalendarDate",
    "FareLegRule",
    "FareMedia",
    "FareProduct",
    "FareTransferRule",
    "FeedVersion",
    "Frequency",
    "Network",
    "RiderCategory",
    "Route",
    "RouteNetwork",
    "Shape",
    "ShapePoint",
    "Stop",
    "StopArea",
    "StopTime",
    "Timeframe",
    "Translation",
    "Trip",
]

_FV = "feed_versions.id"


def _feed_fk() -> Mapped[int]:
    return mapped_column(Integer, ForeignKey(_FV, ondelete="CASCADE"), primary_key=True)


def _feed_key_unchecked() -> Mapped[int]:
    """The feed version key of the two bulk tables (stop_times, shape_points), without a foreign key:
    PostgreSQL checks a foreign key row by row, which doubled the time of a 2 M-row COPY. The importer
    writes these rows only inside the transaction that creates their version, and
    ``prune_feed_versions`` deletes them explicitly."""
    return mapped_column(Integer, primary_key=True)


class FeedVersion(Base):
    """One imported feed; exactly one is active at a time."""

    __tablename__ = "feed_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="loading")
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    activated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    agency_timezone: Mapped[str] = mapped_column(String(64))
    publisher_name: Mapped[str | None] = mapped_column(Text)
    feed_lang: Mapped[str | None] = mapped_column(String(35))
    feed_version: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)

    __table_args__ = (Index("ix_feed_versions_is_active", "is_active"),)


class Agency(Base):
    __tablename__ = "agencies"

    feed_version_id: Mapped[int] = _feed_fk()
    agency_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    agency_name: Mapped[str] = mapped_column(Text)
    agency_url: Mapped[str | None] = mapped_column(Text)
    agency_timezone: Mapped[str] = mapped_column(String(64))
    agency_lang: Mapped[str | None] = mapped_column(String(35))
    agency_phone: Mapped[str | None] = mapped_column(String(64))


class Stop(Base):
    __tablename__ = "stops"

    feed_version_id: Mapped[int] = _feed_fk()
    stop_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    stop_code: Mapped[str | None] = mapped_column(String(64))
    stop_name: Mapped[str | None] = mapped_column(Text)
    stop_desc: Mapped[str | None] = mapped_column(Text)
    stop_lat: Mapped[float | None] = mapped_column(Float)
    stop_lon: Mapped[float | None] = mapped_column(Float)
    zone_id: Mapped[str | None] = mapped_column(String(255))
    location_type: Mapped[int] = mapped_column(SmallInteger, default=0)
    parent_station: Mapped[str | None] = mapped_column(String(255))
    platform_code: Mapped[str | None] = mapped_column(String(64))
    wheelchair_boarding: Mapped[int | None] = mapped_column(SmallInteger)
    # GTFS stop_timezone: a stop in another zone than its agency (a board's clock shows the stop's own time)
    stop_timezone: Mapped[str | None] = mapped_column(String(64))
    # casefolded name, code and every translated name: lets text search work the same on SQLite
    # (whose LIKE folds ASCII only) and PostgreSQL for Kazakh and Russian names
    search_text: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_stops_feed_lat_lon", "feed_version_id", "stop_lat", "stop_lon"),)


class Route(Base):
    __tablename__ = "routes"

    feed_version_id: Mapped[int] = _feed_fk()
    route_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    agency_id: Mapped[str | None] = mapped_column(String(255))
    route_short_name: Mapped[str | None] = mapped_column(String(64))
    route_long_name: Mapped[str | None] = mapped_column(Text)
    route_desc: Mapped[str | None] = mapped_column(Text)
    route_type: Mapped[int] = mapped_column(Integer)
    route_color: Mapped[str | None] = mapped_column(String(6))
    route_text_color: Mapped[str | None] = mapped_column(String(6))
    route_sort_order: Mapped[int | None] = mapped_column(Integer)
    network_id: Mapped[str | None] = mapped_column(String(255))


class Calendar(Base):
    __tablename__ = "calendars"

    feed_version_id: Mapped[int] = _feed_fk()
    service_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    monday: Mapped[bool] = mapped_column(Boolean)
    tuesday: Mapped[bool] = mapped_column(Boolean)
    wednesday: Mapped[bool] = mapped_column(Boolean)
    thursday: Mapped[bool] = mapped_column(Boolean)
    friday: Mapped[bool] = mapped_column(Boolean)
    saturday: Mapped[bool] = mapped_column(Boolean)
    sunday: Mapped[bool] = mapped_column(Boolean)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)


class CalendarDate(Base):
    __tablename__ = "calendar_dates"

    feed_version_id: Mapped[int] = _feed_fk()
    service_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    exception_type: Mapped[int] = mapped_column(SmallInteger)


class Shape(Base):
    """A shape; ``generated`` marks straight-line shapes built from a trip's stops."""

    __tablename__ = "shapes"

    feed_version_id: Mapped[int] = _feed_fk()
    shape_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    generated: Mapped[bool] = mapped_column(Boolean, default=False)
    length_m: Mapped[float] = mapped_column(Float)


class ShapePoint(Base):
    __tablename__ = "shape_points"

    feed_version_id: Mapped[int] = _feed_key_unchecked()
    shape_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    shape_pt_sequence: Mapped[int] = mapped_column(Integer, primary_key=True)
    shape_pt_lat: Mapped[float] = mapped_column(Float)
    shape_pt_lon: Mapped[float] = mapped_column(Float)
    dist_m: Mapped[float] = mapped_column(Float)


class Trip(Base):
    """A trip; trips expanded from ``frequencies.txt`` keep their template's id."""

    __tablename__ = "trips"

    feed_version_id: Mapped[int] = _feed_fk()
    trip_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    route_id: Mapped[str] = mapped_column(String(255))
    service_id: Mapped[str] = mapped_column(String(255))
    trip_headsign: Mapped[str | None] = mapped_column(Text)
    trip_short_name: Mapped[str | None] = mapped_column(String(64))
    direction_id: Mapped[int | None] = mapped_column(SmallInteger)
    block_id: Mapped[str | None] = mapped_column(String(255))
    shape_id: Mapped[str | None] = mapped_column(String(255))
    wheelchair_accessible: Mapped[int | None] = mapped_column(SmallInteger)
    bikes_allowed: Mapped[int | None] = mapped_column(SmallInteger)
    frequency_template_id: Mapped[str | None] = mapped_column(String(255))
    start_s: Mapped[int] = mapped_column(Integer)
    end_s: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_trips_feed_route", "feed_version_id", "route_id"),
        Index("ix_trips_feed_service", "feed_version_id", "service_id"),
    )


class StopTime(Base):
    __tablename__ = "stop_times"

    feed_version_id: Mapped[int] = _feed_key_unchecked()
    trip_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    stop_sequence: Mapped[int] = mapped_column(Integer, primary_key=True)
    stop_id: Mapped[str] = mapped_column(String(255))
    arrival_s: Mapped[int] = mapped_column(Integer)
    departure_s: Mapped[int] = mapped_column(Integer)
    stop_headsign: Mapped[str | None] = mapped_column(Text)
    pickup_type: Mapped[int] = mapped_column(SmallInteger, default=0)
    drop_off_type: Mapped[int] = mapped_column(SmallInteger, default=0)
    shape_dist_traveled: Mapped[float | None] = mapped_column(Float)
    timepoint: Mapped[int] = mapped_column(SmallInteger, default=1)

    __table_args__ = (Index("ix_stop_times_feed_stop_dep", "feed_version_id", "stop_id", "departure_s"),)


class Frequency(Base):
    """The original headway definitions (the trips they describe are expanded on import)."""

    __tablename__ = "frequencies"

    feed_version_id: Mapped[int] = _feed_fk()
    trip_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    start_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    end_s: Mapped[int] = mapped_column(Integer)
    headway_secs: Mapped[int] = mapped_column(Integer)
    exact_times: Mapped[int] = mapped_column(SmallInteger, default=0)


class Translation(Base):
    __tablename__ = "translations"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    feed_version_id: Mapped[int] = mapped_column(Integer, ForeignKey(_FV, ondelete="CASCADE"))
    table_name: Mapped[str] = mapped_column(String(64))
    field_name: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(35))
    translation: Mapped[str] = mapped_column(Text)
    record_id: Mapped[str | None] = mapped_column(String(255))
    record_sub_id: Mapped[str | None] = mapped_column(String(255))
    field_value: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_translations_lookup", "feed_version_id", "table_name", "record_id"),)


# --- GTFS Fares v2 -------------------------------------------------------------------------------


class RiderCategory(Base):
    __tablename__ = "rider_categories"

    feed_version_id: Mapped[int] = _feed_fk()
    rider_category_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    rider_category_name: Mapped[str] = mapped_column(Text)
    is_default_fare_category: Mapped[int] = mapped_column(SmallInteger, default=0)
    eligibility_url: Mapped[str | None] = mapped_column(Text)


class FareMedia(Base):
    __tablename__ = "fare_media"

    feed_version_id: Mapped[int] = _feed_fk()
    fare_media_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    fare_media_name: Mapped[str | None] = mapped_column(Text)
    fare_media_type: Mapped[int] = mapped_column(SmallInteger)


class FareProduct(Base):
    """A fare product; ``amount_minor`` is integer minor units (tiyn for KZT)."""

    __tablename__ = "fare_products"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    feed_version_id: Mapped[int] = mapped_column(Integer, ForeignKey(_FV, ondelete="CASCADE"))
    fare_product_id: Mapped[str] = mapped_column(String(255))
    fare_product_name: Mapped[str | None] = mapped_column(Text)
    rider_category_id: Mapped[str | None] = mapped_column(String(255))
    fare_media_id: Mapped[str | None] = mapped_column(String(255))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))

    __table_args__ = (Index("ix_fare_products_lookup", "feed_version_id", "fare_product_id"),)


class FareLegRule(Base):
    __tablename__ = "fare_leg_rules"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    feed_version_id: Mapped[int] = mapped_column(Integer, ForeignKey(_FV, ondelete="CASCADE"), index=True)
    leg_group_id: Mapped[str | None] = mapped_column(String(255))
    network_id: Mapped[str | None] = mapped_column(String(255))
    from_area_id: Mapped[str | None] = mapped_column(String(255))
    to_area_id: Mapped[str | None] = mapped_column(String(255))
    from_timeframe_group_id: Mapped[str | None] = mapped_column(String(255))
    to_timeframe_group_id: Mapped[str | None] = mapped_column(String(255))
    fare_product_id: Mapped[str] = mapped_column(String(255))
    rule_priority: Mapped[int | None] = mapped_column(Integer)


class FareTransferRule(Base):
    __tablename__ = "fare_transfer_rules"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    feed_version_id: Mapped[int] = mapped_column(Integer, ForeignKey(_FV, ondelete="CASCADE"), index=True)
    from_leg_group_id: Mapped[str | None] = mapped_column(String(255))
    to_leg_group_id: Mapped[str | None] = mapped_column(String(255))
    transfer_count: Mapped[int | None] = mapped_column(Integer)
    duration_limit: Mapped[int | None] = mapped_column(Integer)
    duration_limit_type: Mapped[int | None] = mapped_column(SmallInteger)
    fare_transfer_type: Mapped[int] = mapped_column(SmallInteger)
    fare_product_id: Mapped[str | None] = mapped_column(String(255))


class Timeframe(Base):
    __tablename__ = "timeframes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    feed_version_id: Mapped[int] = mapped_column(Integer, ForeignKey(_FV, ondelete="CASCADE"), index=True)
    timeframe_group_id: Mapped[str] = mapped_column(String(255))
    start_s: Mapped[int] = mapped_column(Integer)
    end_s: Mapped[int] = mapped_column(Integer)
    service_id: Mapped[str] = mapped_column(String(255))


class Network(Base):
    __tablename__ = "networks"

    feed_version_id: Mapped[int] = _feed_fk()
    network_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    network_name: Mapped[str | None] = mapped_column(Text)


class RouteNetwork(Base):
    __tablename__ = "route_networks"

    feed_version_id: Mapped[int] = _feed_fk()
    route_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    network_id: Mapped[str] = mapped_column(String(255))


class Area(Base):
    __tablename__ = "areas"

    feed_version_id: Mapped[int] = _feed_fk()
    area_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    area_name: Mapped[str | None] = mapped_column(Text)


class StopArea(Base):
    __tablename__ = "stop_areas"

    feed_version_id: Mapped[int] = _feed_fk()
    area_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    stop_id: Mapped[str] = mapped_column(String(255), primary_key=True)
