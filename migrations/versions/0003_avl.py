"""avl: vehicles, pings (range-partitioned by day on PostgreSQL; partitions are created on demand by
ingest), ingest rejections by reason, observed stop events with their deviation from schedule

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:33:02.852751
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('avl_pings',
    sa.Column('vehicle_id', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lat_e6', sa.Integer(), nullable=False),
    sa.Column('lon_e6', sa.Integer(), nullable=False),
    sa.Column('trip_id', sa.String(length=255), nullable=True),
    sa.Column('route_id', sa.String(length=255), nullable=True),
    sa.Column('service_date', sa.Date(), nullable=True),
    sa.Column('bearing', sa.SmallInteger(), nullable=True),
    sa.Column('speed', sa.REAL(), nullable=True),
    sa.Column('source', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('vehicle_id', 'recorded_at', name=op.f('pk_avl_pings')),
    postgresql_partition_by='RANGE (recorded_at)'
    )
    op.create_table('avl_rejections',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'source', 'reason', name=op.f('pk_avl_rejections'))
    )
    op.create_table('avl_stop_events',
    sa.Column('feed_version_id', sa.Integer(), nullable=False),
    sa.Column('trip_id', sa.String(length=255), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('stop_sequence', sa.Integer(), nullable=False),
    sa.Column('stop_id', sa.String(length=255), nullable=False),
    sa.Column('vehicle_id', sa.String(length=64), nullable=False),
    sa.Column('arrival_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('departure_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('scheduled_arrival_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('scheduled_departure_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deviation_s', sa.Integer(), nullable=False),
    sa.Column('passed_between_pings', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('feed_version_id', 'trip_id', 'service_date', 'stop_sequence', name=op.f('pk_avl_stop_events'))
    )
    with op.batch_alter_table('avl_stop_events', schema=None) as batch_op:
        batch_op.create_index('ix_avl_stop_events_stop_arrival', ['feed_version_id', 'stop_id', 'arrival_at'], unique=False)

    op.create_table('avl_vehicles',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('device_id', sa.String(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_avl_vehicles_device_id_devices'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_avl_vehicles'))
    )


def downgrade() -> None:
    op.drop_table('avl_vehicles')
    with op.batch_alter_table('avl_stop_events', schema=None) as batch_op:
        batch_op.drop_index('ix_avl_stop_events_stop_arrival')

    op.drop_table('avl_stop_events')
    op.drop_table('avl_rejections')
    op.drop_table('avl_pings')
