"""prediction log: predictions the worker published, for accuracy reports

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 16:07:11.357513
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('prediction_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('made_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('trip_id', sa.String(length=255), nullable=False),
    sa.Column('route_id', sa.String(length=255), nullable=False),
    sa.Column('stop_id', sa.String(length=255), nullable=False),
    sa.Column('stop_sequence', sa.Integer(), nullable=False),
    sa.Column('vehicle_id', sa.String(length=64), nullable=True),
    sa.Column('predictor', sa.String(length=32), nullable=False),
    sa.Column('predicted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lower_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('upper_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prediction_log'))
    )
    op.create_index('ix_prediction_log_call', 'prediction_log', ['service_date', 'trip_id', 'stop_sequence'], unique=False)
    op.create_index('ix_prediction_log_day_route', 'prediction_log', ['service_date', 'route_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_prediction_log_day_route', table_name='prediction_log')
    op.drop_index('ix_prediction_log_call', table_name='prediction_log')
    op.drop_table('prediction_log')
