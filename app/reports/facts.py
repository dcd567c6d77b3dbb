"""Boarding facts: local service date, hour and day type worked out once, then bulk-inserted.

Live taps are copied from ``taps`` incrementally: every accepted tap not yet copied, looking back a
margin of ids below the watermark so a tap whose transaction committed late (ids are handed out at
insert, not at commit) is still picked up; the unique ``tap_id`` makes the copy idempotent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from app.models import Card, ReportBoarding, ReportState, Tap

__all__ = [
    "DAY_TYPES",
    "LIVE_DATASET",
    "copy_live_taps",
    "day_type",
    "forget_live_taps",
    "insert_boardings",
    "local_parts",
]

LIVE_DATASET = "qala"
DAY_TYPES = ("weekday", "saturday", "sunday")
LOOKBACK_IDS = 10_000
_CHUNK = 5_000
_WATERMARK = "live_tap_id"


def day_type(day: dt.date) -> str:
    return DAY_TYPES[max(0, day.weekday() - 4)]


def local_parts(epoch_s: int, tz: ZoneInfo) -> tuple[dt.date, int, str]:
    """The local calendar date, hour and day type of a UTC instant."""
    local = dt.datetime.fromtimestamp(epoch_s, tz)
    return local.date(), local.hour, day_type(local.date())


def insert_boardings(session: Session, rows: Iterable[Mapping[str, Any]]) -> set[dt.date]:
    """Insert fact rows (executemany batches); returns the service dates they touched."""
    dates: set[dt.date] = set()
    batch: list[Mapping[str, Any]] = []
    for row in rows:
        batch.append(row)
        dates.add(row["service_date"])
        if len(batch) >= _CHUNK:
            session.execute(insert(ReportBoarding), batch)
            batch = []
    if batch:
        session.execute(insert(ReportBoarding), batch)
    return dates


def _watermark(session: Session) -> int:
    state = session.get(ReportState, _WATERMARK, with_for_update=True)
    if state is None:
        state = ReportState(name=_WATERMARK, value=0)
        session.add(state)
        session.flush()
    return state.value


def _fact(tap: Any, category: str, tz: ZoneInfo, is_pass: Callable[[str], bool]) -> dict[str, Any]:
    at = tap.tapped_at if tap.tapped_at.tzinfo else tap.tapped_at.replace(tzinfo=dt.UTC)
    epoch = int(at.timestamp())
    date, hour, kind = local_parts(epoch, tz)
    product = tap.product_id or "none"
    paid_by = "pass" if is_pass(product) else ("stored_value" if tap.fare > 0 else "free")
    return {"dataset": LIVE_DATASET, "tap_id": tap.id, "rider_key": f"card:{tap.card_id}", "boarded_s": epoch,
            "service_date": date, "hour": hour, "day_type": kind, "route_id": tap.route_id or "",
            "stop_id": None, "vehicle_id": tap.vehicle_id, "category": category, "product": product,
            "paid_by": paid_by, "fare": tap.fare, "exit_stop_id": None, "source_transfer": None}


def copy_live_taps(session: Session, tz: ZoneInfo, is_pass: Callable[[str], bool]) -> set[dt.date]:
    """Copy accepted live taps not yet in the facts; returns the service dates touched."""
    start = max(0, _watermark(session) - LOOKBACK_IDS)
    copied = select(ReportBoarding.id).where(ReportBoarding.tap_id == Tap.id).exists()
    dates: set[dt.date] = set()
    highest = start
    while True:
        rows = session.execute(
            select(Tap.id, Tap.card_id, Tap.tapped_at, Tap.vehicle_id, Tap.route_id, Tap.fare, Tap.product_id,
                   Card.rider_category)
            .join(Card, Card.id == Tap.card_id)
            .where(Tap.id > highest, Tap.outcome == "accepted", ~copied)
            .order_by(Tap.id).limit(_CHUNK)).all()
        if not rows:
            break
        dates |= insert_boardings(session, [_fact(r, r.rider_category, tz, is_pass) for r in rows])
        highest = rows[-1].id
    top = session.scalar(select(func.max(Tap.id))) or 0
    state = session.get_one(ReportState, _WATERMARK)
    state.value = max(state.value, top)
    state.updated_at = dt.datetime.now(dt.UTC)
    return dates


def forget_live_taps(session: Session) -> None:
    """Drop every copied live tap and the watermark (before a full rebuild)."""
    session.execute(delete(ReportBoarding).where(ReportBoarding.tap_id.is_not(None)))
    session.execute(delete(ReportState).where(ReportState.name == _WATERMARK))
