"""accuracy rollup: scored predictions by day, route, predictor and ETA-benchmark bucket

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_accuracy_day',
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('route_id', sa.String(length=255), nullable=False),
    sa.Column('predictor', sa.String(length=32), nullable=False),
    sa.Column('bucket', sa.SmallInteger(), nullable=False),
    sa.Column('day_type', sa.String(length=8), nullable=False),
    sa.Column('predictions', sa.BigInteger(), nullable=False),
    sa.Column('accurate', sa.BigInteger(), nullable=False),
    sa.Column('early', sa.BigInteger(), nullable=False),
    sa.Column('abs_error_s', sa.BigInteger(), nullable=False),
    sa.Column('with_interval', sa.BigInteger(), nullable=False),
    sa.Column('in_interval', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('service_date', 'route_id', 'predictor', 'bucket', name=op.f('pk_report_accuracy_day'))
    )


def downgrade() -> None:
    op.drop_table('report_accuracy_day')
