"""od zone rollup: the stop -> zone mapping and trips by origin and destination zone per day

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 17:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_stop_zone',
    sa.Column('stop_id', sa.String(length=255), nullable=False),
    sa.Column('zone', sa.String(length=255), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('stop_id', name=op.f('pk_report_stop_zone'))
    )
    op.create_table('report_od_zone_day',
    sa.Column('dataset', sa.String(length=32), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('origin_zone', sa.String(length=255), nullable=False),
    sa.Column('destination_zone', sa.String(length=255), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('day_type', sa.String(length=8), nullable=False),
    sa.Column('trips', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('dataset', 'service_date', 'origin_zone', 'destination_zone', 'category',
                            name=op.f('pk_report_od_zone_day'))
    )


def downgrade() -> None:
    op.drop_table('report_od_zone_day')
    op.drop_table('report_stop_zone')
