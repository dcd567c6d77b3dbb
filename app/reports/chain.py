"""The boarding chain every boarding rollup groups: each boarding's transfer flag and destination, worked out
with window functions over its rider's boardings of the day (rules in ``app.reports.rollups``)."""

from __future__ import annotations

__all__ = ["CHAIN_TEMPLATE"]

# {table}: the temporary table; {sign}: +1, or -1 for a delta's "before" side; {only}: extra row conditions
CHAIN_TEMPLATE = """
CREATE TEMPORARY TABLE {table} AS
WITH w AS (
    SELECT b.*, COALESCE(b.stop_id, 'route:' || b.route_id) AS zone,
        LAG(b.boarded_s) OVER r AS prev_s, LAG(b.vehicle_id) OVER r AS prev_vehicle,
        LEAD(COALESCE(b.stop_id, 'route:' || b.route_id)) OVER r AS next_zone
    FROM report_boardings b WHERE b.dataset = :dataset AND b.service_date = :day {only}
    WINDOW r AS (PARTITION BY b.rider_key ORDER BY b.boarded_s, b.id)
)
SELECT {sign} AS sign, w.dataset, w.service_date, w.hour, w.day_type, w.route_id, w.stop_id, w.category, w.product,
    w.paid_by, w.fare, w.zone,
    CASE WHEN COALESCE(w.source_transfer, w.prev_s IS NOT NULL AND w.boarded_s - w.prev_s <= :window
                       AND w.prev_vehicle <> w.vehicle_id) THEN 1 ELSE 0 END AS transfer,
    CASE WHEN w.exit_stop_id IS NOT NULL THEN w.exit_stop_id
         WHEN w.next_zone IS NOT NULL AND w.next_zone <> w.zone THEN w.next_zone ELSE '' END AS destination
FROM w
"""
