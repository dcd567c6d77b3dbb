"""od rollup: indexes to find a stop's flows by origin or destination

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 17:00:00
"""

from __future__ import annotations

from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_report_od_day_origin', 'report_od_day', ['dataset', 'origin', 'service_date'], unique=False)
    op.create_index('ix_report_od_day_destination', 'report_od_day', ['dataset', 'destination', 'service_date'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_report_od_day_destination', table_name='report_od_day')
    op.drop_index('ix_report_od_day_origin', table_name='report_od_day')
