"""Money in and attempts counted: rider payment intents (a top-up only once a provider confirms the payment) and
the database side of the attempt limits on card codes and passwords."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

__all__ = ["AuthThrottle", "PaymentIntent"]

PAYMENT_STATUSES = ("pending", "succeeded", "failed", "canceled")


class PaymentIntent(Base):
    """A rider's request to top up a card, paid through a provider; the card is credited when (and only when)
    the provider's signed confirmation arrives, exactly once (``ledger_transaction_id`` is set then)."""

    __tablename__ = "payment_intents"
    __table_args__ = (UniqueConstraint("provider", "provider_ref", name="uq_payment_intents_provider_ref"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    rider_id: Mapped[int | None] = mapped_column(ForeignKey("riders.id", ondelete="SET NULL"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # tiyn
    currency: Mapped[str] = mapped_column(String(3), default="KZT", server_default="KZT")
    provider: Mapped[str] = mapped_column(String(32))
    provider_ref: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    ledger_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuthThrottle(Base):
    """Failed attempts against one subject (a card, a login, a client address) within a scope, and the lockout
    they earned: the fallback when Redis is away, and the record that outlives a Redis restart."""

    __tablename__ = "auth_throttles"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
