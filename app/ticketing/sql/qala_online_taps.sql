-- qala_online_taps: a group of online taps in one round trip (app.ticketing.fastpath); the current source.
-- Changing it needs a new migration that runs the new text: tests/test_ledger_sql.py compares the migrated
-- database's function with this file. Migration 0013 keeps the frozen copy it created (0008's single-tap
-- qala_online_tap, dropped by 0014, was its predecessor).
CREATE OR REPLACE FUNCTION qala_online_taps(p_taps jsonb, p_prices jsonb)
RETURNS TABLE (r_i integer, r_outcome text, r_reason text, r_fare bigint, r_balance bigint, r_product text)
LANGUAGE plpgsql AS $$
DECLARE
    v_e jsonb;
    v_n bigint;
    v_at timestamptz;
    v_card bigint;
    v_status text;
    v_category text;
    v_masked text;
    v_account bigint;
    v_balance bigint;
    v_revenue bigint;
    v_price jsonb;
    v_fare bigint;
    v_tap bigint;
    v_tx bigint;
    v_locked bigint[];
BEGIN
    SELECT coalesce(array_agg(l.card_id), '{}') INTO v_locked FROM (
        SELECT a.card_id FROM cards c JOIN ledger_accounts a ON a.card_id = c.id
         WHERE c.number_hash IN (SELECT e ->> 'c' FROM jsonb_array_elements(p_taps) AS e)
         ORDER BY a.card_id
           FOR UPDATE OF a SKIP LOCKED) AS l;
    SELECT id INTO v_revenue FROM ledger_accounts WHERE code = 'revenue';
    FOR v_e, v_n IN SELECT x.e, x.n FROM jsonb_array_elements(p_taps) WITH ORDINALITY AS x (e, n) LOOP
        r_i := v_n;
        r_outcome := NULL;
        r_reason := NULL;
        r_fare := NULL;
        r_balance := NULL;
        r_product := NULL;
        v_at := (v_e ->> 't')::timestamptz;
        SELECT c.id, c.status, c.rider_category, c.masked, a.id, a.balance
          INTO v_card, v_status, v_category, v_masked, v_account, v_balance
          FROM cards c JOIN ledger_accounts a ON a.card_id = c.id
         WHERE c.number_hash = v_e ->> 'c';
        IF NOT FOUND OR v_status <> 'active' OR v_revenue IS NULL OR NOT v_card = ANY (v_locked) THEN
            RETURN NEXT;
            CONTINUE;
        END IF;
        v_price := p_prices -> (v_e ->> 'p') -> v_category;
        IF v_price IS NULL
           OR EXISTS (SELECT 1 FROM taps WHERE tap_key = v_e ->> 'k')
           OR EXISTS (SELECT 1 FROM taps
                       WHERE card_id = v_card AND (offline OR outcome IN ('accepted', 'double_tap'))
                         AND tapped_at >= greatest((v_e ->> 'ws')::timestamptz,
                                                   v_at - make_interval(secs => (v_e ->> 'dt')::integer))
                         AND tapped_at < (v_e ->> 'we')::timestamptz)
           OR EXISTS (SELECT 1 FROM card_passes
                       WHERE card_id = v_card AND valid_from <= v_at AND valid_to > v_at) THEN
            RETURN NEXT;
            CONTINUE;
        END IF;
        v_fare := (v_price ->> 1)::bigint;
        IF v_balance < v_fare THEN
            INSERT INTO taps (tap_key, device_id, device_seq, body_hash, card_id, card_masked, vehicle_id, route_id,
                              tapped_at, offline, outcome, reason, fare, uncollected, product_id, balance_after)
            VALUES (v_e ->> 'k', v_e ->> 'd', (v_e ->> 's')::bigint, v_e ->> 'b', v_card, v_masked, v_e ->> 'v',
                    v_e ->> 'r', v_at, false, 'denied', 'insufficient_balance', 0, 0, v_price ->> 0, v_balance)
            ON CONFLICT DO NOTHING
            RETURNING id INTO v_tap;
            IF v_tap IS NOT NULL THEN
                r_outcome := 'denied';
                r_reason := 'insufficient_balance';
                r_fare := 0;
                r_balance := v_balance;
                r_product := v_price ->> 0;
            END IF;
            RETURN NEXT;
            CONTINUE;
        END IF;
        INSERT INTO taps (tap_key, device_id, device_seq, body_hash, card_id, card_masked, vehicle_id, route_id,
                          tapped_at, offline, outcome, reason, fare, uncollected, product_id, balance_after)
        VALUES (v_e ->> 'k', v_e ->> 'd', (v_e ->> 's')::bigint, v_e ->> 'b', v_card, v_masked, v_e ->> 'v',
                v_e ->> 'r', v_at, false, 'accepted', NULL, v_fare, 0, v_price ->> 0, v_balance - v_fare)
        ON CONFLICT DO NOTHING
        RETURNING id INTO v_tap;
        IF v_tap IS NULL THEN  -- the key was inserted meanwhile by another transaction: nothing written
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF v_fare > 0 THEN
            UPDATE ledger_accounts SET balance = v_balance - v_fare WHERE id = v_account;
            INSERT INTO ledger_transactions (kind, charge_key, tap_id)
            VALUES ('fare', 'fare:' || (v_e ->> 'k'), v_tap)
            RETURNING id INTO v_tx;
            INSERT INTO ledger_entries (transaction_id, account_id, amount)
            VALUES (v_tx, v_account, -v_fare), (v_tx, v_revenue, v_fare);
        END IF;
        r_outcome := 'accepted';
        r_fare := v_fare;
        r_balance := v_balance - v_fare;
        r_product := v_price ->> 0;
        RETURN NEXT;
    END LOOP;
END
$$
