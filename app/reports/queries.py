"""Report queries over the rollups: one declaration per report (its rollup, grouping, measures and the
filters it honours), one function that runs it. Every report answers a list of flat rows, so the JSON
and the CSV are the same table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.orm import Session

from app.errors import BadRequest
from app.models import AccuracyDay, OdDay, OdZoneDay, OdZoneTotalDay, OnTimeHour, RouteHour, StopDay, StopZone, TopUpDay
from app.reports.accuracy import benchmark
from app.reports.rollups import ONTIME_BUCKET_S
from prediction.eta.metrics import ETA_BUCKETS

__all__ = ["FILTERS", "REPORTS", "SPECIAL", "Filters", "Report", "report_names", "run_report"]

FILTERS = ("route", "stop", "category", "day_type", "predictor")


@dataclass(frozen=True)
class Filters:
    dataset: str = "qala"
    start: dt.date | None = None
    end: dt.date | None = None  # inclusive
    route: str | None = None
    stop: str | None = None
    category: str | None = None
    day_type: str | None = None
    early_s: int = 60
    late_s: int = 300
    predictor: str | None = None
    limit: int | None = None  # od-matrix: the top flows only

    def given(self) -> set[str]:
        return {name for name in (*FILTERS, "limit") if getattr(self, name) is not None}


@dataclass(frozen=True)
class Report:
    title: str
    model: Any
    group: tuple[str, ...]
    measures: tuple[str, ...]
    filters: tuple[str, ...]
    where: Callable[[Any], Sequence[ColumnElement[bool]]] = lambda model: ()
    finish: Callable[[list[dict[str, Any]], Filters], list[dict[str, Any]]] = lambda rows, f: rows
    columns: tuple[str, ...] = field(default=())

    def all_columns(self) -> tuple[str, ...]:
        return self.columns or (*self.group, *self.measures)


def _shares(rows: list[dict[str, Any]], _f: Filters) -> list[dict[str, Any]]:
    total = sum(r["boardings"] for r in rows) or 1
    return [{**r, "share": round(r["boardings"] / total, 4)} for r in rows]


def _concession(rows: list[dict[str, Any]], f: Filters) -> list[dict[str, Any]]:
    return [{**r, "concession": r["category"] != "standard"} for r in _shares(rows, f)]


def _transfer_rate(rows: list[dict[str, Any]], _f: Filters) -> list[dict[str, Any]]:
    return [{**r, "transfer_rate": round(r["transfers"] / r["boardings"], 4) if r["boardings"] else 0.0}
            for r in rows]


def _stop_or_unknown(rows: list[dict[str, Any]], _f: Filters) -> list[dict[str, Any]]:
    return [{**r, "stop_id": r["stop_id"] or None} for r in rows]


_ROUTE_FILTERS = ("route", "category", "day_type")
REPORTS: dict[str, Report] = {
    "boardings-by-route": Report("Boardings by route", RouteHour, ("route_id",), ("boardings", "transfers", "revenue"),
                                 _ROUTE_FILTERS),
    "boardings-by-stop": Report("Boardings by stop", StopDay, ("stop_id",), ("boardings", "transfers"),
                                ("route", "stop", "category", "day_type"), finish=_stop_or_unknown),
    "boardings-by-hour": Report("Boardings by hour", RouteHour, ("hour",), ("boardings", "transfers", "revenue"),
                                _ROUTE_FILTERS),
    "boardings-by-day-type": Report("Boardings by day type", RouteHour, ("day_type",),
                                    ("boardings", "transfers", "revenue"), _ROUTE_FILTERS),
    "boardings-by-day": Report("Boardings by day", RouteHour, ("service_date",),
                               ("boardings", "transfers", "revenue"), _ROUTE_FILTERS),
    "revenue-by-category": Report("Fare revenue by rider category", RouteHour, ("category",),
                                  ("boardings", "revenue"), _ROUTE_FILTERS),
    "revenue-by-product": Report("Fare revenue by product", RouteHour, ("product", "paid_by"),
                                 ("boardings", "revenue"), _ROUTE_FILTERS),
    "revenue-by-channel": Report("Top-ups by channel", TopUpDay, ("channel",), ("top_ups", "amount"),
                                 ("day_type",)),
    "concession-share": Report("Concession share", RouteHour, ("category",), ("boardings",), _ROUTE_FILTERS,
                               finish=_concession, columns=("category", "boardings", "share", "concession")),
    "transfers": Report("Transfers by route", RouteHour, ("route_id",), ("boardings", "transfers"), _ROUTE_FILTERS,
                        finish=_transfer_rate, columns=("route_id", "boardings", "transfers", "transfer_rate")),
    "pass-use": Report("Boardings by how they were paid", RouteHour, ("paid_by",), ("boardings",), _ROUTE_FILTERS,
                       finish=_shares, columns=("paid_by", "boardings", "share")),
}


def _on_time_rows(session: Session, f: Filters) -> list[dict[str, Any]]:
    if f.early_s % ONTIME_BUCKET_S or f.late_s % ONTIME_BUCKET_S:
        raise BadRequest(f"early_s and late_s must be multiples of {ONTIME_BUCKET_S} s", field="late_s")
    m = OnTimeHour

    def count(cond: ColumnElement[bool]) -> Any:
        return func.sum(case((cond, m.arrivals), else_=0))

    stmt = select(m.route_id, m.hour, count(m.bucket < -(f.early_s // ONTIME_BUCKET_S)),
                  count((m.bucket >= -(f.early_s // ONTIME_BUCKET_S)) & (m.bucket < f.late_s // ONTIME_BUCKET_S)),
                  count(m.bucket >= f.late_s // ONTIME_BUCKET_S)).group_by(m.route_id, m.hour)
    stmt = _dated(stmt, m, f).order_by(m.route_id, m.hour)
    if f.route is not None:
        stmt = stmt.where(m.route_id == f.route)
    if f.day_type is not None:
        stmt = stmt.where(m.day_type == f.day_type)
    rows = []
    for route_id, hour, early_n, on_time_n, late_n in session.execute(stmt):
        total = int(early_n) + int(on_time_n) + int(late_n)
        rows.append({"route_id": route_id, "hour": hour, "early": int(early_n), "on_time": int(on_time_n),
                     "late": int(late_n), "on_time_share": round(int(on_time_n) / total, 4) if total else 0.0})
    return rows


ON_TIME_COLUMNS = ("route_id", "hour", "early", "on_time", "late", "on_time_share")
_BUCKET_COLUMNS = tuple(f"accuracy_{label.replace('-', '_')}" for label, *_ in ETA_BUCKETS)
ACCURACY_MEASURES = ("predictions", "eta_benchmark", *_BUCKET_COLUMNS, "mae_s", "early_rate", "interval_coverage")


def _accuracy_rows(session: Session, group: str, f: Filters) -> list[dict[str, Any]]:
    """The ETA benchmark per ``group`` (day or route) and predictor, summed exactly from the bucket cells."""
    m = AccuracyDay
    key = getattr(m, group)
    stmt = (select(key, m.predictor, m.bucket, func.sum(m.predictions), func.sum(m.accurate), func.sum(m.early),
                   func.sum(m.abs_error_s), func.sum(m.with_interval), func.sum(m.in_interval))
            .group_by(key, m.predictor, m.bucket))
    stmt = _dated(stmt, m, f)
    for name, column in (("route", m.route_id), ("day_type", m.day_type), ("predictor", m.predictor)):
        if getattr(f, name) is not None:
            stmt = stmt.where(column == getattr(f, name))
    cells: dict[tuple[Any, str], list[tuple[int, ...]]] = {}
    for value, predictor, bucket, *sums in session.execute(stmt):
        cells.setdefault((value, predictor), []).append((int(bucket), *(int(x or 0) for x in sums)))
    rows = []
    for (value, predictor), found in sorted(cells.items()):
        n, early, abs_error, with_interval, in_interval = (sum(c[i] for c in found) for i in (1, 3, 4, 5, 6))
        shares, overall = benchmark({c[0]: (c[2], c[1]) for c in found})
        rows.append({group: value.isoformat() if isinstance(value, dt.date) else value, "predictor": predictor,
                     "predictions": n, "eta_benchmark": overall,
                     **dict(zip(_BUCKET_COLUMNS, shares.values(), strict=True)),
                     "mae_s": round(abs_error / n, 1) if n else None,
                     "early_rate": round(early / n, 4) if n else None,
                     "interval_coverage": round(in_interval / with_interval, 4) if with_interval else None})
    return rows


OD_COLUMNS = ("origin", "destination", "chained", "trips", "level", "origin_lat", "origin_lon", "destination_lat",
              "destination_lon")


def _places(session: Session, level: str) -> dict[str, tuple[float, float]]:
    """Where each stop is, or each zone's centroid (the mean of its stops), for the map and the table."""
    m = StopZone
    if level == "stop":
        stmt = select(m.stop_id, m.lat, m.lon)
    else:
        stmt = select(m.zone, func.avg(m.lat), func.avg(m.lon)).group_by(m.zone)
    return {key: (round(float(lat), 5), round(float(lon), 5)) for key, lat, lon in session.execute(stmt)}


def _od_rows(session: Session, f: Filters) -> list[dict[str, Any]]:
    """Trips between origins and destinations: zones × zones over the zone rollup (a month reads a few hundred
    thousand cells), or stop pairs touching the filtered stop. ``limit`` keeps the busiest flows."""
    if f.limit is not None and f.limit < 1:
        raise BadRequest("limit must be at least 1", field="limit")
    level = "zone" if f.stop is None else "stop"
    if level == "zone":
        m: Any = OdZoneDay if f.category is not None else OdZoneTotalDay
        origin, destination = m.origin_zone, m.destination_zone
    else:
        m = OdDay
        origin, destination = m.origin, m.destination
    trips = func.sum(m.trips)
    stmt = _dated(select(origin, destination, trips).where(m.dataset == f.dataset).group_by(origin, destination),
                  m, f)
    if f.stop is not None:
        stmt = stmt.where(or_(origin == f.stop, destination == f.stop))
    if f.category is not None:
        stmt = stmt.where(m.category == f.category)
    if f.day_type is not None:
        stmt = stmt.where(m.day_type == f.day_type)
    stmt = (stmt.order_by(origin, destination) if f.limit is None
            else stmt.order_by(trips.desc(), origin, destination).limit(f.limit))
    places = _places(session, level)
    rows = []
    for o, d, n in session.execute(stmt):
        o_at, d_at = places.get(o, (None, None)), places.get(d, (None, None))
        rows.append({"origin": o, "destination": d or None, "chained": bool(d), "trips": int(n), "level": level,
                     "origin_lat": o_at[0], "origin_lon": o_at[1], "destination_lat": d_at[0],
                     "destination_lon": d_at[1]})
    return rows


# Reports not declared in REPORTS: (title, columns, filters, rows)
SPECIAL: dict[str, tuple[str, tuple[str, ...], tuple[str, ...],
                         Callable[[Session, Filters], list[dict[str, Any]]]]] = {
    "od-matrix": ("Origin-destination by trip chaining (zones; stops with a stop filter)", OD_COLUMNS,
                  ("stop", "category", "day_type", "limit"), lambda s, f: _od_rows(s, f)),
    "on-time": ("On-time performance by route and hour", ON_TIME_COLUMNS, ("route", "day_type"),
                lambda s, f: _on_time_rows(s, f)),
    "prediction-accuracy": ("Prediction accuracy (ETA benchmark) by day", ("service_date", "predictor",
                            *ACCURACY_MEASURES), ("route", "day_type", "predictor"),
                            lambda s, f: _accuracy_rows(s, "service_date", f)),
    "prediction-accuracy-by-route": ("Prediction accuracy (ETA benchmark) by route", ("route_id", "predictor",
                                     *ACCURACY_MEASURES), ("route", "day_type", "predictor"),
                                     lambda s, f: _accuracy_rows(s, "route_id", f)),
}


def report_names() -> list[str]:
    return [*REPORTS, *SPECIAL]


def _dated(stmt: Select[Any], model: Any, f: Filters) -> Select[Any]:
    if f.start is not None:
        stmt = stmt.where(model.service_date >= f.start)
    if f.end is not None:
        stmt = stmt.where(model.service_date <= f.end)
    return stmt


def _filtered(stmt: Select[Any], report: Report, f: Filters) -> Select[Any]:
    m = report.model
    if hasattr(m, "dataset"):
        stmt = stmt.where(m.dataset == f.dataset)
    stmt = _dated(stmt, m, f)
    if f.route is not None:
        stmt = stmt.where(m.route_id == f.route)
    if f.stop is not None:
        stmt = stmt.where(m.stop_id == f.stop)
    if f.category is not None:
        stmt = stmt.where(m.category == f.category)
    if f.day_type is not None:
        stmt = stmt.where(m.day_type == f.day_type)
    return stmt


def run_report(session: Session, name: str, f: Filters) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """The report's columns and rows; a filter the report cannot honour is a 400, never silently ignored."""
    if name in SPECIAL:
        _title, columns, honoured, rows_of = SPECIAL[name]
        unsupported = f.given() - set(honoured)
        if unsupported:
            raise BadRequest(f"{name} cannot be filtered by {', '.join(sorted(unsupported))}",
                             field=sorted(unsupported)[0])
        return columns, rows_of(session, f)
    report = REPORTS.get(name)
    if report is None:
        raise BadRequest(f"no report called {name!r}")
    unsupported = f.given() - set(report.filters)
    if unsupported:
        raise BadRequest(f"{name} cannot be filtered by {', '.join(sorted(unsupported))}",
                         field=sorted(unsupported)[0])
    m = report.model
    groups = [getattr(m, g) for g in report.group]
    stmt = select(*groups, *(func.sum(getattr(m, x)) for x in report.measures)).group_by(*groups)
    stmt = _filtered(stmt, report, f).order_by(*groups)
    rows = [dict(zip(report.group, r[:len(groups)], strict=True))
            | {x: int(v or 0) for x, v in zip(report.measures, r[len(groups):], strict=True)}
            for r in session.execute(stmt)]
    rows = [{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in r.items()} for r in rows]
    rows = report.finish(rows, f)
    return report.all_columns(), [{c: r[c] for c in report.all_columns()} for r in rows]
