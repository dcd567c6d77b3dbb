"""Rollups rebuilt one service date at a time from the facts, ledger and stop events.

Rebuilding a date deletes its rollup rows and re-aggregates them in the database, so a rebuild and an
incremental refresh (the dates new taps touched) are the same code. Transfers and the origin-destination
chain come from window functions over each rider's boardings of that date:

* a boarding is a **transfer** when the source says so, else when the same rider boarded a different
  vehicle at most ``transfer_window_s`` earlier that day;
* a boarding's **destination** is its observed exit (metro) when known, else the origin of the rider's
  next boarding that day; the day's last boarding, and one whose next origin is the same place, are
  **unchained** (``''``). Origins are stops, or ``route:<id>`` when the source names none.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import delete, distinct, select, text
from sqlalchemy.orm import Session

from app.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    OdDay,
    OnTimeHour,
    ReportBoarding,
    RouteHour,
    StopDay,
    StopEvent,
    TopUpDay,
    Trip,
)
from app.reports.facts import LIVE_DATASET, copy_live_taps, day_type, forget_live_taps

__all__ = ["RollupSettings", "rebuild", "rebuild_dates", "refresh"]

ONTIME_BUCKET_S = 30
ONTIME_CLAMP = 60  # buckets either side: ±30 min


@dataclass(frozen=True)
class RollupSettings:
    tz: ZoneInfo
    transfer_window_s: int = 3600
    is_pass: Callable[[str], bool] = lambda product: False


_CHAIN = """
WITH w AS (
    SELECT b.*, COALESCE(b.stop_id, 'route:' || b.route_id) AS zone,
        LAG(b.boarded_s) OVER r AS prev_s, LAG(b.vehicle_id) OVER r AS prev_vehicle,
        LEAD(COALESCE(b.stop_id, 'route:' || b.route_id)) OVER r AS next_zone
    FROM report_boardings b WHERE b.dataset = :dataset AND b.service_date = :day
    WINDOW r AS (PARTITION BY b.rider_key ORDER BY b.boarded_s, b.id)
), t AS (
    SELECT w.*,
        CASE WHEN COALESCE(w.source_transfer, w.prev_s IS NOT NULL AND w.boarded_s - w.prev_s <= :window
                           AND w.prev_vehicle <> w.vehicle_id) THEN 1 ELSE 0 END AS transfer,
        CASE WHEN w.exit_stop_id IS NOT NULL THEN w.exit_stop_id
             WHEN w.next_zone IS NOT NULL AND w.next_zone <> w.zone THEN w.next_zone ELSE '' END AS destination
    FROM w
)
"""

_ROUTE_HOUR = _CHAIN + """
INSERT INTO report_route_hour (dataset, service_date, hour, route_id, category, product, paid_by, day_type,
                               boardings, transfers, revenue)
SELECT dataset, service_date, hour, route_id, category, product, paid_by, MIN(day_type), COUNT(*), SUM(transfer),
       SUM(fare)
FROM t GROUP BY dataset, service_date, hour, route_id, category, product, paid_by
"""

_STOP_DAY = _CHAIN + """
INSERT INTO report_stop_day (dataset, service_date, stop_id, route_id, category, day_type, boardings, transfers)
SELECT dataset, service_date, COALESCE(stop_id, ''), route_id, category, MIN(day_type), COUNT(*), SUM(transfer)
FROM t GROUP BY dataset, service_date, COALESCE(stop_id, ''), route_id, category
"""

_OD_DAY = _CHAIN + """
INSERT INTO report_od_day (dataset, service_date, origin, destination, category, day_type, trips)
SELECT dataset, service_date, zone, destination, category, MIN(day_type), COUNT(*)
FROM t GROUP BY dataset, service_date, zone, destination, category
"""


def rebuild_dates(session: Session, dataset: str, dates: Iterable[dt.date], settings: RollupSettings) -> int:
    """Re-aggregate the boarding rollups of ``dataset`` for ``dates``; returns how many dates."""
    count = 0
    for day in sorted(set(dates)):
        for model in (RouteHour, StopDay, OdDay):
            session.execute(delete(model).where(model.dataset == dataset, model.service_date == day))
        params = {"dataset": dataset, "day": day, "window": settings.transfer_window_s}
        for statement in (_ROUTE_HOUR, _STOP_DAY, _OD_DAY):
            session.execute(text(statement), params)
        count += 1
    return count


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def rebuild_top_ups(session: Session, tz: ZoneInfo) -> int:
    """Top-ups per local day and channel, from the channel accounts' ledger postings (all dates)."""
    rows = session.execute(
        select(LedgerAccount.code, LedgerTransaction.created_at, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerTransaction.kind == "top_up", LedgerAccount.kind == "channel")).all()
    counts: Counter[tuple[dt.date, str]] = Counter()
    amounts: Counter[tuple[dt.date, str]] = Counter()
    for code, at, amount in rows:
        key = (_utc(at).astimezone(tz).date(), code.split(":", 1)[1])
        counts[key] += 1
        amounts[key] -= int(amount)  # the channel account is debited
    session.execute(delete(TopUpDay))
    if counts:
        session.add_all(TopUpDay(service_date=d, channel=c, day_type=day_type(d), top_ups=n, amount=amounts[d, c])
                        for (d, c), n in counts.items())
    return len(counts)


def rebuild_on_time(session: Session, tz: ZoneInfo, dates: Iterable[dt.date] | None = None) -> int:
    """Arrivals by route, scheduled local hour and deviation bucket, from the observed stop events."""
    stmt = (select(StopEvent.service_date, StopEvent.scheduled_arrival_at, StopEvent.deviation_s, Trip.route_id)
            .join(Trip, (Trip.feed_version_id == StopEvent.feed_version_id) & (Trip.trip_id == StopEvent.trip_id)))
    wanted = None if dates is None else sorted(set(dates))
    if wanted is not None:
        stmt = stmt.where(StopEvent.service_date.in_(wanted))
    cells: Counter[tuple[dt.date, int, str, int]] = Counter()
    for service_date, scheduled, deviation, route_id in session.execute(stmt):
        bucket = max(-ONTIME_CLAMP, min(ONTIME_CLAMP, deviation // ONTIME_BUCKET_S))
        cells[service_date, _utc(scheduled).astimezone(tz).hour, route_id, bucket] += 1
    old = delete(OnTimeHour)
    session.execute(old if wanted is None else old.where(OnTimeHour.service_date.in_(wanted)))
    session.add_all(OnTimeHour(service_date=d, hour=h, route_id=r, bucket=b, day_type=day_type(d), arrivals=n)
                    for (d, h, r, b), n in cells.items())
    return len(cells)


def refresh(session: Session, settings: RollupSettings) -> set[dt.date]:
    """Bring the rollups up to date with taps received since the last refresh; returns the dates rebuilt."""
    dates = copy_live_taps(session, settings.tz, settings.is_pass)
    rebuild_dates(session, LIVE_DATASET, dates, settings)
    rebuild_top_ups(session, settings.tz)
    today = dt.datetime.now(settings.tz).date()
    rebuild_on_time(session, settings.tz, {today, today - dt.timedelta(days=1)})
    return dates


def rebuild(session: Session, settings: RollupSettings) -> dict[str, int]:
    """Recopy every live tap and rebuild every rollup of every dataset."""
    forget_live_taps(session)
    copy_live_taps(session, settings.tz, settings.is_pass)
    pairs = session.execute(select(distinct(ReportBoarding.dataset), ReportBoarding.service_date)
                            .group_by(ReportBoarding.dataset, ReportBoarding.service_date)).all()
    for model in (RouteHour, StopDay, OdDay):
        session.execute(delete(model))
    days = sum(rebuild_dates(session, dataset, [day], settings) for dataset, day in pairs)
    return {"dataset_days": days, "top_up_cells": rebuild_top_ups(session, settings.tz),
            "on_time_cells": rebuild_on_time(session, settings.tz)}
