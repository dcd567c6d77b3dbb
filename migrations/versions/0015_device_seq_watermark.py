"""devices.seq_watermark: every sequence number up to it has arrived, so gap reports scan only what follows

A batch answers with the device's missing sequence numbers. Computing them over all of the device's taps made
each batch cost more as the device's history grew: 175 ms per batch at 250,000 taps, quadratic over a backlog.
Taps are never deleted, so once 1..N have all arrived they stay arrived: the watermark only moves up.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25 22:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("seq_watermark", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("devices", "seq_watermark")
