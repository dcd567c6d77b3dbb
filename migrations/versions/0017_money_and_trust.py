"""money and trust: payment intents, attempt throttles, revocable tokens, channel devices, idempotency expiry

Riders no longer credit a card directly: a top-up is a payment intent that a provider's signed confirmation
completes. Card codes and passwords get attempt counters that survive Redis (``auth_throttles``). Bearer tokens
carry ``riders.token_version``, bumped on logout and deactivation. Devices have a kind (validator, kiosk, bank):
kiosks and banks top up through signed requests. Idempotency records are pruned by age (index on created_at).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 12:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("riders", sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("riders", sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.add_column("devices", sa.Column("kind", sa.String(16), nullable=False, server_default="validator"))
    op.create_index("ix_idempotency_records_created_at", "idempotency_records", ["created_at"])
    op.create_table(
        "payment_intents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("card_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.ForeignKey("cards.id"),
                  nullable=False),
        sa.Column("rider_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  sa.ForeignKey("riders.id", ondelete="SET NULL")),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="KZT"),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("provider_ref", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("ledger_transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  sa.ForeignKey("ledger_transactions.id")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("provider", "provider_ref", name="uq_payment_intents_provider_ref"),
    )
    op.create_index("ix_payment_intents_card_id", "payment_intents", ["card_id"])
    op.create_index("ix_payment_intents_rider_id", "payment_intents", ["rider_id"])
    op.create_table(
        "auth_throttles",
        sa.Column("scope", sa.String(32), primary_key=True),
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("auth_throttles")
    op.drop_index("ix_payment_intents_rider_id", table_name="payment_intents")
    op.drop_index("ix_payment_intents_card_id", table_name="payment_intents")
    op.drop_table("payment_intents")
    op.drop_index("ix_idempotency_records_created_at", table_name="idempotency_records")
    op.drop_column("devices", "kind")
    op.drop_column("riders", "active")
    op.drop_column("riders", "token_version")
