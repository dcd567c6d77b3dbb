"""stops.stop_timezone: GTFS's per-stop time zone

A stop board shows the stop's own time; a feed whose stops lie in more than one zone names the exceptions in
``stops.txt``'s ``stop_timezone``, which the importer now keeps. Stops imported before this revision keep it empty
and read their agency's zone, as GTFS says an empty value means.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 20:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("stops", sa.Column("stop_timezone", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("stops", "stop_timezone")
