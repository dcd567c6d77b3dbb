"""Cards and riders: card tokens (hash + masked form only), passes, rider accounts and the staff audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

__all__ = ["AuditLog", "Card", "CardPass", "Rider", "bigint_pk"]

CARD_STATUSES = ("active", "blocked", "replaced")
RIDER_ROLES = ("rider", "support", "admin")


def bigint_pk() -> Mapped[int]:
    """A 64-bit surrogate key (plain INTEGER on SQLite so it autoincrements)."""
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)


class Rider(Base):
    """A person with a login (email or phone); staff are riders with the ``support`` or ``admin`` role."""

    __tablename__ = "riders"

    id: Mapped[int] = bigint_pk()
    login: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), default="rider")
    # bumped on logout and on staff deactivation: bearer tokens carry the version they were issued under
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Card(Base):
    """An Onay-style card. The 19-digit number is never stored: only its keyed hash and a masked form."""

    __tablename__ = "cards"

    id: Mapped[int] = bigint_pk()
    number_hash: Mapped[str] = mapped_column(String(64), unique=True)
    masked: Mapped[str] = mapped_column(String(23))
    code_hash: Mapped[str] = mapped_column(String(64))
    rider_category: Mapped[str] = mapped_column(String(64), default="standard")
    status: Mapped[str] = mapped_column(String(16), default="active")
    rider_id: Mapped[int | None] = mapped_column(ForeignKey("riders.id", ondelete="SET NULL"), index=True)
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    status_reason: Mapped[str | None] = mapped_column(Text)


class CardPass(Base):
    """A period pass (e.g. a monthly pass) bought onto a card; valid on ``[valid_from, valid_to)``."""

    __tablename__ = "card_passes"

    id: Mapped[int] = bigint_pk()
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"))
    fare_product_id: Mapped[str] = mapped_column(String(255))
    price: Mapped[int] = mapped_column(BigInteger)
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_card_passes_card_valid", "card_id", "valid_to"),)


class AuditLog(Base):
    """One staff (or system) action on a card or account, with its reason."""

    __tablename__ = "audit_log"

    id: Mapped[int] = bigint_pk()
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("riders.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id", ondelete="SET NULL"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
