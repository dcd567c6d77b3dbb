"""GTFS Fares v2 files (read from the feed ourselves: gtfs-kit does not), with amounts in minor units."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation

import pandas as pd

from prediction.gtfs.feedcheck import IssueList, check_required_columns
from prediction.gtfs.gtfstime import parse_gtfs_times

__all__ = ["FARES_V2_TABLES", "currency_exponent", "parse_fares_v2"]

# table -> required columns
FARES_V2_TABLES: dict[str, list[str]] = {
    "fare_media": ["fare_media_id", "fare_media_type"],
    "rider_categories": ["rider_category_id", "rider_category_name"],
    "fare_products": ["fare_product_id", "amount", "currency"],
    "fare_leg_rules": ["fare_product_id"],
    "fare_transfer_rules": ["fare_transfer_type"],
    "timeframes": ["timeframe_group_id", "service_id"],
    "networks": ["network_id"],
    "route_networks": ["network_id", "route_id"],
    "areas": ["area_id"],
    "stop_areas": ["area_id", "stop_id"],
}

# ISO 4217 minor-unit exponents that differ from 2
_EXPONENTS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "XOF": 0, "XAF": 0, "PYG": 0, "UGX": 0,
              "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "IQD": 3, "LYD": 3}


def currency_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def _minor_units(issues: IssueList, products: pd.DataFrame) -> pd.Series:
    amounts: list[int | None] = []
    for pos, (amount, currency) in enumerate(zip(products["amount"], products["currency"], strict=True)):
        try:
            value = Decimal(str(amount).strip()) * (10 ** currency_exponent(str(currency)))
            if value != value.to_integral_value():
                raise InvalidOperation
            amounts.append(int(value))
        except (InvalidOperation, ValueError):
            issues.add("error", "invalid_amount", f"amount {amount!r} is not a valid {currency} amount",
                       "fare_products.txt", pos + 2, "amount")
            amounts.append(None)
    return pd.Series(amounts, index=products.index, dtype="Int64")


def _timeframes(issues: IssueList, frame: pd.DataFrame) -> pd.DataFrame:
    start_text = frame["start_time"] if "start_time" in frame else pd.Series("0:00:00", frame.index)
    end_text = frame["end_time"] if "end_time" in frame else pd.Series("24:00:00", frame.index)
    start, bad_start = parse_gtfs_times(start_text.fillna("0:00:00"))
    end, bad_end = parse_gtfs_times(end_text.fillna("24:00:00"))
    issues.rows("error", "bad_time", "timeframes.txt", "start_time", bad_start, frame, "start_time {value!r} is bad")
    issues.rows("error", "bad_time", "timeframes.txt", "end_time", bad_end, frame, "end_time {value!r} is bad")
    return frame.assign(start_s=start, end_s=end)


def parse_fares_v2(issues: IssueList, read: Callable[[str], pd.DataFrame | None]) -> dict[str, pd.DataFrame]:
    """Read every Fares v2 file present, check required columns, and convert amounts and times."""
    tables: dict[str, pd.DataFrame] = {}
    for table, required in FARES_V2_TABLES.items():
        frame = read(table)
        if frame is None or frame.empty:
            continue
        if not check_required_columns(issues, f"{table}.txt", frame, required):
            continue
        if table == "fare_products":
            frame = frame.assign(amount_minor=_minor_units(issues, frame),
                                 currency=frame["currency"].str.upper())
        elif table == "timeframes":
            frame = _timeframes(issues, frame)
        tables[table] = frame
    return tables
