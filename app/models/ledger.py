"""Double-entry ledger in integer tiyn: accounts, transactions and immutable entries.

Every transaction's entries sum to zero, so the sum of all entries is zero; an account's ``balance``
is a running total kept by conditional UPDATEs and always equals the sum of its entries.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.ticketing import bigint_pk

__all__ = ["LedgerAccount", "LedgerEntry", "LedgerTransaction"]

ACCOUNT_KINDS = ("card", "channel", "revenue", "adjustment")


class LedgerAccount(Base):
    """A card's stored value, a top-up channel (kiosk, app, bank), fare revenue or staff adjustments."""

    __tablename__ = "ledger_accounts"

    id: Mapped[int] = bigint_pk()
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"), unique=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LedgerTransaction(Base):
    """One business event; ``charge_key`` is unique, so a tap can be charged at most once."""

    __tablename__ = "ledger_transactions"
    # the taps that have fare adjustments (few): what re-rating a card's day looks up (migration 0016)
    __table_args__ = (Index("ix_ledger_transactions_adjusted_tap", "tap_id",
                            postgresql_where=text("kind = 'fare_adjustment'"),
                            sqlite_where=text("kind = 'fare_adjustment'")),)

    id: Mapped[int] = bigint_pk()
    kind: Mapped[str] = mapped_column(String(32))
    charge_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    tap_id: Mapped[int | None] = mapped_column(ForeignKey("taps.id"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LedgerEntry(Base):
    """An immutable posting (PostgreSQL refuses UPDATE and DELETE with a trigger; SQLite refuses UPDATE)."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = bigint_pk()
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_ledger_entries_account", "account_id", "id"),)
