"""Validators (devices and their keys), taps, the deny list and stored idempotent responses."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.ticketing import bigint_pk

__all__ = ["DenyListEntry", "Device", "DeviceKey", "IdempotencyRecord", "Tap"]


class Device(Base):
    """A validator on a bus."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # validator (taps, batches, deny list) or a top-up channel device: kiosk or bank
    kind: Mapped[str] = mapped_column(String(16), default="validator", server_default="validator")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # every sequence number up to this one has arrived (taps are never deleted, so it only rises); see
    # app.ticketing.batches.sequence_gaps
    seq_watermark: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class DeviceKey(Base):
    """A signing key, sealed at rest (``app.ticketing.keycrypt``); during rotation the old key stays valid until
    ``expires_at`` (the overlap)."""

    __tablename__ = "device_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    secret_sealed: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Tap(Base):
    """One card tap as the validator reported it; never edited after its outcome is recorded.

    ``outcome`` is accepted, double_tap or denied (with ``reason``); ``fare`` is what the first rating
    charged, ``uncollected`` what an offline tap could not charge beyond the debt limit. Later
    corrections are ledger adjustments linked by ``tap_id``.
    """

    __tablename__ = "taps"

    id: Mapped[int] = bigint_pk()
    tap_key: Mapped[str] = mapped_column(String(200), unique=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    device_seq: Mapped[int] = mapped_column(BigInteger)
    body_hash: Mapped[str] = mapped_column(String(64))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
    card_masked: Mapped[str | None] = mapped_column(String(23))
    vehicle_id: Mapped[str] = mapped_column(String(64))
    route_id: Mapped[str | None] = mapped_column(String(255))
    tapped_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    fare: Mapped[int] = mapped_column(BigInteger, default=0)
    uncollected: Mapped[int] = mapped_column(BigInteger, default=0)
    product_id: Mapped[str | None] = mapped_column(String(255))
    balance_after: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("device_id", "device_seq"),
        Index("ix_taps_card_time", "card_id", "tapped_at"),
    )


class DenyListEntry(Base):
    """A change to the deny list; ``version`` increases with every change so validators sync by delta."""

    __tablename__ = "deny_list"

    version: Mapped[int] = bigint_pk()
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    card_hash: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IdempotencyRecord(Base):
    """The stored response of a mutating request, keyed by who sent it and its ``Idempotency-Key``."""

    __tablename__ = "idempotency_records"

    id: Mapped[int] = bigint_pk()
    scope: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 index=True)  # pruned by age

    __table_args__ = (UniqueConstraint("scope", "key"),)
