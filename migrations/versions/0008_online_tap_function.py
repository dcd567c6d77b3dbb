"""online tap function: one round trip for the common online tap (PostgreSQL only)

``qala_online_tap`` locks the card's account, and — for an active card whose category's fare the caller
priced as flat, with no pass active, no other ride of the card within ``double_tap_s`` before it and none
after it in the rating window, and a new tap key — records the tap and (when the balance covers it) the
fare charge with both ledger entries. Otherwise it returns NULLs having written nothing, and the
application rates the tap with the fare engine (``app.ticketing.taps.process_tap``). SQLite has no
functions; the application's general path serves it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 16:30:00
"""

from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION qala_online_tap(
    p_tap_key text, p_device_id text, p_device_seq bigint, p_body_hash text, p_card_hash text,
    p_vehicle_id text, p_route_id text, p_tapped_at timestamptz, p_window_start timestamptz,
    p_window_end timestamptz, p_double_tap_s integer, p_categories text[], p_products text[], p_prices bigint[],
    OUT r_outcome text, OUT r_reason text, OUT r_fare bigint, OUT r_balance bigint, OUT r_product text)
LANGUAGE plpgsql AS $$
DECLARE
    v_card bigint;
    v_status text;
    v_category text;
    v_masked text;
    v_account bigint;
    v_balance bigint;
    v_revenue bigint;
    v_i integer;
    v_tap bigint;
    v_tx bigint;
BEGIN
    SELECT c.id, c.status, c.rider_category, c.masked, a.id, a.balance
      INTO v_card, v_status, v_category, v_masked, v_account, v_balance
      FROM cards c JOIN ledger_accounts a ON a.card_id = c.id
     WHERE c.number_hash = p_card_hash
       FOR UPDATE OF a;
    IF NOT FOUND OR v_status <> 'active' THEN
        RETURN;
    END IF;
    v_i := array_position(p_categories, v_category);
    IF v_i IS NULL THEN
        RETURN;
    END IF;
    SELECT id INTO v_revenue FROM ledger_accounts WHERE code = 'revenue';
    IF v_revenue IS NULL
       OR EXISTS (SELECT 1 FROM taps WHERE tap_key = p_tap_key)
       OR EXISTS (SELECT 1 FROM taps
                   WHERE card_id = v_card AND (offline OR outcome IN ('accepted', 'double_tap'))
                     AND tapped_at >= greatest(p_window_start, p_tapped_at - make_interval(secs => p_double_tap_s))
                     AND tapped_at < p_window_end)
       OR EXISTS (SELECT 1 FROM card_passes
                   WHERE card_id = v_card AND valid_from <= p_tapped_at AND valid_to > p_tapped_at) THEN
        RETURN;
    END IF;
    r_product := p_products[v_i];
    IF v_balance < p_prices[v_i] THEN
        INSERT INTO taps (tap_key, device_id, device_seq, body_hash, card_id, card_masked, vehicle_id, route_id,
                          tapped_at, offline, outcome, reason, fare, uncollected, product_id, balance_after)
        VALUES (p_tap_key, p_device_id, p_device_seq, p_body_hash, v_card, v_masked, p_vehicle_id, p_route_id,
                p_tapped_at, false, 'denied', 'insufficient_balance', 0, 0, r_product, v_balance);
        r_outcome := 'denied';
        r_reason := 'insufficient_balance';
        r_fare := 0;
        r_balance := v_balance;
        RETURN;
    END IF;
    r_outcome := 'accepted';
    r_fare := p_prices[v_i];
    r_balance := v_balance - r_fare;
    INSERT INTO taps (tap_key, device_id, device_seq, body_hash, card_id, card_masked, vehicle_id, route_id,
                      tapped_at, offline, outcome, reason, fare, uncollected, product_id, balance_after)
    VALUES (p_tap_key, p_device_id, p_device_seq, p_body_hash, v_card, v_masked, p_vehicle_id, p_route_id,
            p_tapped_at, false, 'accepted', NULL, r_fare, 0, r_product, r_balance)
    RETURNING id INTO v_tap;
    IF r_fare > 0 THEN
        UPDATE ledger_accounts SET balance = r_balance WHERE id = v_account;
        INSERT INTO ledger_transactions (kind, charge_key, tap_id) VALUES ('fare', 'fare:' || p_tap_key, v_tap)
        RETURNING id INTO v_tx;
        INSERT INTO ledger_entries (transaction_id, account_id, amount)
        VALUES (v_tx, v_account, -r_fare), (v_tx, v_revenue, r_fare);
    END IF;
END
$$
"""
DROP = ("DROP FUNCTION IF EXISTS qala_online_tap(text, text, bigint, text, text, text, text, timestamptz, "
        "timestamptz, timestamptz, integer, text[], text[], bigint[])")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DROP)
