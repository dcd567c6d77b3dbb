"""reports: staff sessions, boarding facts and the rollups staff reports read
(route-hour, stop-day, origin-destination, top-ups, on-time)

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-25 14:49:31.197787
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_boardings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('dataset', sa.String(length=32), nullable=False),
    sa.Column('tap_id', sa.BigInteger(), nullable=True),
    sa.Column('rider_key', sa.String(length=64), nullable=False),
    sa.Column('boarded_s', sa.BigInteger(), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('hour', sa.SmallInteger(), nullable=False),
    sa.Column('day_type', sa.String(length=8), nullable=False),
    sa.Column('route_id', sa.String(length=255), nullable=False),
    sa.Column('stop_id', sa.String(length=255), nullable=True),
    sa.Column('vehicle_id', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('product', sa.String(length=255), nullable=False),
    sa.Column('paid_by', sa.String(length=16), nullable=False),
    sa.Column('fare', sa.BigInteger(), nullable=False),
    sa.Column('exit_stop_id', sa.String(length=255), nullable=True),
    sa.Column('source_transfer', sa.Boolean(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_boardings')),
    sa.UniqueConstraint('tap_id', name=op.f('uq_report_boardings_tap_id'))
    )
    with op.batch_alter_table('report_boardings', schema=None) as batch_op:
        batch_op.create_index('ix_report_boardings_day_rider', ['dataset', 'service_date', 'rider_key', 'boarded_s'], unique=False)

    op.create_table('report_od_day',
    sa.Column('dataset', sa.String(length=32), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('origin', sa.String(length=255), nullable=False),
    sa.Column('destination', sa.String(length=255), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('day_type', sa.String(length=8), nullable=False),
    sa.Column('trips', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('dataset', 'service_date', 'origin', 'destination', 'category', name=op.f('pk_report_od_day'))
    )
    op.create_table('report_ontime_hour',
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('hour', sa.SmallInteger(), nullable=False),
    sa.Column('route_id', sa.String(length=255), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('day_type', sa.String(length=8), nullable=False),
    sa.Column('arrivals', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('service_date', 'hour', 'route_id', 'bucket', name=op.f('pk_report_ontime_hour'))
    )
    op.create_table('report_route_hour',
    sa.Column('dataset', sa.String(length=32), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('hour', sa.SmallInteger(), nullable=False),
    sa.Column('route_id', sa.String(length=255), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('product', sa.String(length=255), nullable=False),
    sa.Column('paid_by', sa.String(length=16), nullable=False),
    sa.Column('day_type', sa.String(length=8), nullable=False),
    sa.Column('boardings', sa.BigInteger(), nullable=False),
    sa.Column('transfers', sa.BigInteger(), nullable=False),
    sa.Column('revenue', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('dataset', 'service_date', 'hour', 'route_id', 'category', 'product', 'paid_by', name=op.f('pk_report_route_hour'))
    )
    op.create_table('report_state',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_report_state'))
    )
    op.create_table('report_stop_day',
    sa.Column('dataset', sa.String(length=32), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('stop_id', sa.String(length=255), nullable=False),
    sa.Column('route_id', sa.String(length=255), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('day_type', sa.String(length=8), nullable=False),
    sa.Column('boardings', sa.BigInteger(), nullable=False),
    sa.Column('transfers', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('dataset', 'service_date', 'stop_id', 'route_id', 'category', name=op.f('pk_report_stop_day'))
    )
    op.create_table('report_topup_day',
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('day_type', sa.String(length=8), nullable=False),
    sa.Column('top_ups', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('service_date', 'channel', name=op.f('pk_report_topup_day'))
    )
    op.create_table('staff_sessions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('rider_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['rider_id'], ['riders.id'], name=op.f('fk_staff_sessions_rider_id_riders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_sessions_token_hash'))
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sessions_rider_id'), ['rider_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_sessions_rider_id'))

    op.drop_table('staff_sessions')
    op.drop_table('report_topup_day')
    op.drop_table('report_stop_day')
    op.drop_table('report_state')
    op.drop_table('report_route_hour')
    op.drop_table('report_ontime_hour')
    op.drop_table('report_od_day')
    with op.batch_alter_table('report_boardings', schema=None) as batch_op:
        batch_op.drop_index('ix_report_boardings_day_rider')

    op.drop_table('report_boardings')
