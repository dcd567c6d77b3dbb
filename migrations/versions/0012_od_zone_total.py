"""od zone rollup over all rider categories: the month's matrix for all riders reads a quarter of the cells

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_od_zone_total_day',
    sa.Column('dataset', sa.String(length=32), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('origin_zone', sa.String(length=255), nullable=False),
    sa.Column('destination_zone', sa.String(length=255), nullable=False),
    sa.Column('day_type', sa.String(length=8), nullable=False),
    sa.Column('trips', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('dataset', 'service_date', 'origin_zone', 'destination_zone',
                            name=op.f('pk_report_od_zone_total_day'))
    )
    # the totals are derived from the per-category zone cells already there
    op.execute("INSERT INTO report_od_zone_total_day (dataset, service_date, origin_zone, destination_zone, day_type, "
               "trips) SELECT dataset, service_date, origin_zone, destination_zone, MIN(day_type), SUM(trips) "
               "FROM report_od_zone_day GROUP BY dataset, service_date, origin_zone, destination_zone")


def downgrade() -> None:
    op.drop_table('report_od_zone_total_day')
