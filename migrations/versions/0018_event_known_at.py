"""event known_at: when the live service emitted each stop event

``avl_stop_events.known_at`` is the arrival of the ping whose coming made the live follower emit the event (or
the feed's first ping after the vehicle fell silent), so the worker, the reports and the backtest read the same
moment instead of each working it out. Rows stored before this revision keep it empty. The index serves a
worker polling for the events stored since its last poll.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("avl_stop_events", sa.Column("known_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_avl_stop_events_known_at", "avl_stop_events", ["feed_version_id", "known_at"])


def downgrade() -> None:
    op.drop_index("ix_avl_stop_events_known_at", table_name="avl_stop_events")
    op.drop_column("avl_stop_events", "known_at")
