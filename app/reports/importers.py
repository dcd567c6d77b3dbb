"""Import external tap exports as boarding facts for analysis: our simulator's tap CSV and the real
Shenzhen Tong card data. An import replaces earlier imported rows of the same dataset and dates, so
re-importing a file does not double count; live taps are never touched.

Shenzhen rows: metro entries are boardings at a station (``company_name`` is the line); a metro exit
gives the fare and the observed destination of the same card's latest earlier entry; bus rows name a
vehicle plate and a line (``station``), not a stop, so they become boardings on route
``<company>:<line>`` without a stop. Money stays in fen (dataset ``shenzhen``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.models import ReportBoarding
from app.reports.facts import insert_boardings, local_parts
from app.ticketing.cardnumbers import number_hash
from app.ticketing.fares import FareProfile, TapIn, rate

__all__ = ["ImportResult", "import_qala", "import_shenzhen"]

SHENZHEN_TZ = ZoneInfo("Asia/Shanghai")
_METRO_IN, _METRO_OUT, _BUS = "地铁入站", "地铁出站", "巴士"


@dataclass(frozen=True)
class ImportResult:
    dataset: str
    boardings: int
    skipped: int
    dates: tuple[dt.date, ...]


def _replace(session: Session, dataset: str, rows: list[dict[str, Any]]) -> set[dt.date]:
    dates = {r["service_date"] for r in rows}
    if dates:
        session.execute(delete(ReportBoarding).where(ReportBoarding.dataset == dataset,
                                                     ReportBoarding.tap_id.is_(None),
                                                     ReportBoarding.service_date.in_(sorted(dates))))
    insert_boardings(session, rows)
    return dates


def _fact(dataset: str, rider: str, epoch: int, tz: ZoneInfo, **values: Any) -> dict[str, Any]:
    date, hour, kind = local_parts(epoch, tz)
    base = {"dataset": dataset, "tap_id": None, "rider_key": rider, "boarded_s": epoch, "service_date": date,
            "hour": hour, "day_type": kind, "stop_id": None, "exit_stop_id": None, "source_transfer": None}
    return base | values


def _shenzhen_rows(frame: pd.DataFrame, dataset: str) -> tuple[list[dict[str, Any]], int]:
    frame = frame.sort_values(["card_no", "deal_date"], kind="stable")
    rows: list[dict[str, Any]] = []
    open_entry: dict[str, dict[str, Any]] = {}
    skipped = 0
    r: Any  # an itertuples row: its fields are the frame's columns, whose types mypy cannot know
    for r in frame.itertuples(index=False):
        epoch = int(dt.datetime.fromisoformat(str(r.deal_date)).replace(tzinfo=SHENZHEN_TZ).timestamp())
        card = "sz:" + str(r.card_no)
        common = {"vehicle_id": str(r.car_no), "category": "unknown", "product": "shenzhen_tong",
                  "paid_by": "stored_value", "source_transfer": bool(int(r.conn_mark))}
        if r.deal_type == _METRO_OUT:
            entry = open_entry.pop(card, None)
            if entry is None:
                skipped += 1  # its entry is outside the export
                continue
            entry.update(fare=int(r.deal_money), exit_stop_id=str(r.station))
        elif r.deal_type == _METRO_IN:
            row = _fact(dataset, card, epoch, SHENZHEN_TZ, route_id=str(r.company_name), stop_id=str(r.station),
                        fare=0, **common)
            open_entry[card] = row
            rows.append(row)
        elif r.deal_type == _BUS:
            open_entry.pop(card, None)
            rows.append(_fact(dataset, card, epoch, SHENZHEN_TZ, route_id=f"{r.company_name}:{r.station}",
                              fare=int(r.deal_money), **common))
        else:
            skipped += 1
    return rows, skipped


def import_shenzhen(session: Session, path: Path, dataset: str = "shenzhen") -> ImportResult:
    frame = pd.read_csv(path, dtype={"card_no": str, "car_no": str, "station": str, "company_name": str})
    missing = {"deal_date", "card_no", "deal_type", "company_name", "car_no", "station", "conn_mark",
               "deal_money"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: not a Shenzhen Tong export (missing {', '.join(sorted(missing))})")
    rows, skipped = _shenzhen_rows(frame, dataset)
    dates = _replace(session, dataset, rows)
    return ImportResult(dataset, len(rows), skipped, tuple(sorted(dates)))


def _rider_key(hash_key: str, number: str) -> str:
    """Card numbers are never stored: the keyed hash (as for issued cards), shortened."""
    return "ext:" + number_hash(hash_key, number)[:40]


def _rated(profile: FareProfile, taps: pd.DataFrame) -> Iterable[tuple[Any, int, str, str]]:
    """(row, fare, product, paid_by) for one card's taps, priced by the fare engine."""
    category = str(taps["category"].iloc[0])
    if bool(taps["has_pass"].iloc[0]):
        for row in taps.itertuples(index=False):
            yield row, 0, "pass_month", "pass"
        return
    # pandas-stubs types itertuples fields as any pandas scalar; ``at`` is the datetime column
    ins = [TapIn(str(i), row.at, str(row.vehicle_id), str(row.route_id)) for i, row in  # type: ignore[arg-type]
           zip(taps.index, taps.itertuples(index=False), strict=True)]
    by_id = {r.tap_id: r for r in rate(profile, category, ins)}
    for i, row in zip(taps.index, taps.itertuples(index=False), strict=True):
        priced = by_id[str(i)]
        yield row, priced.fare, priced.product_id or "none", "stored_value" if priced.fare else "free"


def import_qala(session: Session, path: Path, profile: FareProfile, hash_key: str, tz: ZoneInfo,
                dataset: str = "qala", progress: Callable[[int], None] | None = None) -> ImportResult:
    """The simulator's tap CSV (``prediction/sim/taps.py``), priced by the fare engine per card."""
    frame = pd.read_csv(path, dtype={"card_id": str, "route_id": str, "stop_id": str, "vehicle_id": str})
    missing = {"tap_time", "card_id", "category", "has_pass", "vehicle_id", "route_id", "stop_id",
               "is_transfer"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: not a Qala tap CSV (missing {', '.join(sorted(missing))})")
    frame["at"] = pd.to_datetime(frame["tap_time"], utc=True).dt.to_pydatetime()
    rows: list[dict[str, Any]] = []
    for number, taps in frame.groupby("card_id", sort=False):
        rider = _rider_key(hash_key, str(number))
        for row, fare, product, paid_by in _rated(profile, taps):
            rows.append(_fact(dataset, rider, int(row.at.timestamp()), tz, route_id=str(row.route_id),
                              stop_id=str(row.stop_id), vehicle_id=str(row.vehicle_id), category=str(row.category),
                              product=product, paid_by=paid_by, fare=int(fare),
                              source_transfer=bool(row.is_transfer)))
        if progress is not None:
            progress(len(taps))
    dates = _replace(session, dataset, rows)
    return ImportResult(dataset, len(rows), 0, tuple(sorted(dates)))

