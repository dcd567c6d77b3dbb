"""Rollups rebuilt one service date at a time from the facts, ledger and stop events.

Rebuilding a date deletes its rollup rows and re-aggregates them in the database, so a rebuild and an
incremental refresh (the dates new taps touched) are the same code. Transfers and the origin-destination
chain come from window functions over each rider's boardings of that date:

* a boarding is a **transfer** when the source says so, else when the same rider boarded a different
  vehicle at most ``transfer_window_s`` earlier that day;
* a boarding's **destination** is its observed exit (metro) when known, else the origin of the rider's
  next boarding that day; the day's last boarding, and one whose next origin is the same place, are
  **unchained** (``''``). Origins are stops, or ``route:<id>`` when the source names none.

The zone-level OD rollup is summed from a day's stop-level OD rows through the stop → zone mapping
(``app.reports.zones``), right after them, so the two never disagree.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import delete, distinct, func, select, text
from sqlalchemy.orm import Session

from app.models import (
    AccuracyDay,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    OdDay,
    OdZoneDay,
    OdZoneTotalDay,
    OnTimeHour,
    PredictionLog,
    ReportBoarding,
    ReportState,
    RouteHour,
    StopDay,
    StopEvent,
    TopUpDay,
    Trip,
)
from app.reports.accuracy import rebuild_accuracy
from app.reports.chain import CHAIN_TEMPLATE
from app.reports.delta import apply_new_boardings
from app.reports.facts import LIVE_DATASET, LOOKBACK_IDS, copy_live_taps, day_type, forget_live_taps
from app.reports.zones import GRID_M, assign_zones, feed_stops, rebuild_zone_days, sync_stop_zones

__all__ = ["Refreshed", "RollupSettings", "rebuild", "rebuild_dates", "rebuild_on_time", "rebuild_top_ups", "refresh"]

ONTIME_BUCKET_S = 30
ONTIME_CLAMP = 60  # buckets either side: ±30 min


@dataclass(frozen=True)
class RollupSettings:
    tz: ZoneInfo
    transfer_window_s: int = 3600
    is_pass: Callable[[str], bool] = lambda product: False
    grid_m: int = GRID_M  # OD zone cell size for stops without a GTFS zone_id


_CHAIN = CHAIN_TEMPLATE.format(table="report_chain", sign=1, only="")

_ROUTE_HOUR = """
INSERT INTO report_route_hour (dataset, service_date, hour, route_id, category, product, paid_by, day_type,
                               boardings, transfers, revenue)
SELECT dataset, service_date, hour, route_id, category, product, paid_by, MIN(day_type), COUNT(*), SUM(transfer),
       SUM(fare)
FROM report_chain GROUP BY dataset, service_date, hour, route_id, category, product, paid_by
"""

_STOP_DAY = """
INSERT INTO report_stop_day (dataset, service_date, stop_id, route_id, category, day_type, boardings, transfers)
SELECT dataset, service_date, COALESCE(stop_id, ''), route_id, category, MIN(day_type), COUNT(*), SUM(transfer)
FROM report_chain GROUP BY dataset, service_date, COALESCE(stop_id, ''), route_id, category
"""

_OD_DAY = """
INSERT INTO report_od_day (dataset, service_date, origin, destination, category, day_type, trips)
SELECT dataset, service_date, zone, destination, category, MIN(day_type), COUNT(*)
FROM report_chain GROUP BY dataset, service_date, zone, destination, category
"""


def rebuild_dates(session: Session, dataset: str, dates: Iterable[dt.date], settings: RollupSettings) -> int:
    """Re-aggregate the boarding rollups of ``dataset`` for ``dates``; returns how many dates.

    Each date's chain (transfer flag and destination of every boarding) is worked out once into a
    temporary table that the three rollups then group; the zone OD rollup then sums the day's OD rows."""
    count = 0
    if session.get_bind().dialect.name == "postgresql":  # a day's chain sorts ~1.5 M rows: in memory, not on disk
        session.execute(text("SET LOCAL work_mem = '128MB'"))
    for day in sorted(set(dates)):
        for model in (RouteHour, StopDay, OdDay):
            session.execute(delete(model).where(model.dataset == dataset, model.service_date == day))
        session.execute(text(_CHAIN), {"dataset": dataset, "day": day, "window": settings.transfer_window_s})
        for statement in (_ROUTE_HOUR, _STOP_DAY, _OD_DAY):
            session.execute(text(statement))
        session.execute(text("DROP TABLE report_chain"))
        rebuild_zone_days(session, dataset, day)
        count += 1
    return count


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def rebuild_top_ups(session: Session, tz: ZoneInfo, dates: Iterable[dt.date] | None = None) -> int:
    """Top-ups per local day and channel, from the channel accounts' ledger postings (all dates, or ``dates``)."""
    stmt = (select(LedgerAccount.code, LedgerTransaction.created_at, LedgerEntry.amount)
            .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerTransaction.kind == "top_up", LedgerAccount.kind == "channel"))
    wanted = None if dates is None else sorted(set(dates))
    if wanted is not None:  # the local days' UTC bounds, a day of margin either side for the zone's offset
        stmt = stmt.where(LedgerTransaction.created_at >= _midnight(wanted[0], tz),
                          LedgerTransaction.created_at < _midnight(wanted[-1] + dt.timedelta(days=1), tz))
    counts: Counter[tuple[dt.date, str]] = Counter()
    amounts: Counter[tuple[dt.date, str]] = Counter()
    for code, at, amount in session.execute(stmt):
        key = (_utc(at).astimezone(tz).date(), code.split(":", 1)[1])
        if wanted is None or key[0] in wanted:
            counts[key] += 1
            amounts[key] -= int(amount)  # the channel account is debited
    old = delete(TopUpDay)
    session.execute(old if wanted is None else old.where(TopUpDay.service_date.in_(wanted)))
    if counts:
        session.add_all(TopUpDay(service_date=d, channel=c, day_type=day_type(d), top_ups=n, amount=amounts[d, c])
                        for (d, c), n in counts.items())
    return len(counts)


def _midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)


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


@dataclass(frozen=True)
class Refreshed:
    """What one incremental refresh rebuilt: boarding dates, top-up dates and operations (on-time and
    accuracy) dates."""

    boarding_dates: frozenset[dt.date]
    top_up_dates: frozenset[dt.date]
    operations_dates: frozenset[dt.date]

    def describe(self) -> str:
        def days(dates: frozenset[dt.date]) -> str:
            return ",".join(d.isoformat() for d in sorted(dates)) or "-"
        return (f"boardings={days(self.boarding_dates)} top_ups={days(self.top_up_dates)} "
                f"on_time_accuracy={days(self.operations_dates)}")


def _advance(session: Session, name: str, top: int) -> int:
    """Move watermark ``name`` to ``top`` (locking it, so two refreshers take turns); returns the old value."""
    state = session.get(ReportState, name, with_for_update=True)
    if state is None:
        state = ReportState(name=name, value=0)
        session.add(state)
    old = state.value
    state.value, state.updated_at = max(old, top), dt.datetime.now(dt.UTC)
    return old


def _new_top_up_dates(session: Session, tz: ZoneInfo) -> set[dt.date]:
    top = session.scalar(select(func.max(LedgerTransaction.id))) or 0
    old = _advance(session, "top_up_txn_id", top)
    if top <= old:
        return set()
    since = max(0, old - LOOKBACK_IDS)  # a margin for transactions that committed after a later id
    stamps = session.scalars(select(LedgerTransaction.created_at)
                             .where(LedgerTransaction.id > since, LedgerTransaction.kind == "top_up"))
    return {_utc(at).astimezone(tz).date() for at in stamps}


def _new_prediction_dates(session: Session) -> set[dt.date]:
    top = session.scalar(select(func.max(PredictionLog.id))) or 0
    old = _advance(session, "prediction_log_id", top)
    if top <= old:
        return set()
    since = max(0, old - LOOKBACK_IDS)
    return set(session.scalars(select(PredictionLog.service_date).where(PredictionLog.id > since).distinct()))


def refresh(session: Session, settings: RollupSettings, open_days: int = 2) -> Refreshed:
    """Bring the rollups up to date with what arrived since the last refresh, touching only the dates it
    changed: taps past the tap watermark, top-ups past the ledger watermark, predictions past the log
    watermark, and the ``open_days`` latest local service dates, whose stop events are still arriving
    (stop events carry no id to hold a watermark on). New boardings are added as deltas of their riders'
    chains (``app.reports.delta``), not by re-aggregating their day. Repeating it changes nothing."""
    sync_stop_zones(session, settings.grid_m)  # a new feed or grid size re-derives the zone rollup first
    before = session.scalar(select(func.max(ReportBoarding.id))) or 0  # the rollups hold every fact up to here
    boarding_dates = copy_live_taps(session, settings.tz, settings.is_pass)
    for day in sorted(boarding_dates):
        apply_new_boardings(session, LIVE_DATASET, day, before, settings.transfer_window_s)
    top_up_dates = _new_top_up_dates(session, settings.tz)
    if top_up_dates:
        rebuild_top_ups(session, settings.tz, top_up_dates)
    today = dt.datetime.now(settings.tz).date()
    operations = {today - dt.timedelta(days=i) for i in range(open_days)} | _new_prediction_dates(session)
    rebuild_on_time(session, settings.tz, operations)
    rebuild_accuracy(session, operations)
    return Refreshed(frozenset(boarding_dates), frozenset(top_up_dates), frozenset(operations))


def rebuild(session: Session, settings: RollupSettings) -> dict[str, int]:
    """Recopy every live tap and rebuild every rollup of every dataset."""
    forget_live_taps(session)
    copy_live_taps(session, settings.tz, settings.is_pass)
    pairs = session.execute(select(distinct(ReportBoarding.dataset), ReportBoarding.service_date)
                            .group_by(ReportBoarding.dataset, ReportBoarding.service_date)).all()
    assign_zones(session, feed_stops(session), settings.grid_m)
    for model in (RouteHour, StopDay, OdDay, OdZoneDay, OdZoneTotalDay):
        session.execute(delete(model))
    days = sum(rebuild_dates(session, dataset, [day], settings) for dataset, day in pairs)
    prediction_days = set(session.scalars(select(PredictionLog.service_date).distinct()))
    session.execute(delete(AccuracyDay))
    return {"dataset_days": days, "top_up_cells": rebuild_top_ups(session, settings.tz),
            "on_time_cells": rebuild_on_time(session, settings.tz),
            "accuracy_cells": rebuild_accuracy(session, prediction_days)}
