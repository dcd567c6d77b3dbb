"""Staff report API: ``GET /api/v1/reports`` lists them, ``GET /api/v1/reports/<name>`` answers one as JSON,
or as CSV with ``?format=csv`` (the same rows, so the two always agree). Staff authenticate with a bearer
token or the staff pages' session cookie; every role from ``analyst`` up may read reports."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from app.api.schemas import EXAMPLES, SCHEMAS
from app.api.spec import Date, Integer, Param, String, endpoint
from app.errors import BadRequest
from app.extensions import get_db
from app.models import Rider
from app.reports import access
from app.reports.facts import DAY_TYPES
from app.reports.queries import REPORTS, SPECIAL, Filters, run_report
from app.ticketing import riders

__all__ = ["COOKIE", "bp", "current_staff", "register_reports_api"]

COOKIE = "qala_staff"
bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")


def current_staff(session: Session, role: str = "analyst") -> Rider:
    """The staff member behind a bearer token or a session cookie, holding at least ``role``."""
    policy = access.policy_from_config(current_app.config)  # STAFF_IDLE_S holds for tokens and cookies alike
    if request.headers.get("Authorization"):
        rider = riders.rider_from_token(session, current_app.config["SECRET_KEY"],
                                        request.headers.get("Authorization"), staff_policy=policy)
    else:
        rider = access.resume_session(session, request.cookies.get(COOKIE), dt.datetime.now(dt.UTC), policy).rider
    access.require_role(rider, role)
    return rider


@bp.get("")
@endpoint("The reports there are, with the filters each honours", response="ReportList", tag="reports",
          errors=[401, 403])
def index() -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        current_staff(session)
        session.commit()
    listed = [{"name": n, "title": r.title, "columns": list(r.all_columns()), "filters": list(r.filters)}
              for n, r in REPORTS.items()]
    listed += [{"name": n, "title": title, "columns": list(columns), "filters": list(honoured)}
               for n, (title, columns, honoured, _rows) in SPECIAL.items()]
    return jsonify(reports=listed)


_PARAMS = [
    Param("name", String(), "report name (see GET /api/v1/reports)", location="path"),
    Param("start", Date(), "first service date (inclusive)"),
    Param("end", Date(), "last service date (inclusive)"),
    Param("route", String(), "route_id (or company, for imported data without routes)"),
    Param("stop", String(), "stop_id"),
    Param("category", String(max_length=64), "rider category, e.g. standard, student, pensioner"),
    Param("day_type", String(max_length=8), "weekday, saturday or sunday"),
    Param("dataset", String(max_length=32), "qala (our taps) or an imported dataset, e.g. shenzhen",
          default="qala"),
    Param("predictor", String(max_length=32), "prediction accuracy: one predictor (model or baseline name)"),
    Param("early_s", Integer(0, 3600), "on-time: earlier than this many seconds is early", default=60),
    Param("late_s", Integer(0, 3600), "on-time: this many seconds late or more is late", default=300),
    Param("limit", Integer(1, 1_000_000), "od-matrix: only the busiest flows, most trips first"),
    Param("format", String(max_length=4), "json or csv", default="json"),
]


@bp.get("/<name>")
@endpoint("One report as JSON rows, or CSV with format=csv", response="ReportTable", tag="reports",
          params=_PARAMS, errors=[401, 403])
def report(name: str, start: dt.date | None, end: dt.date | None, route: str | None, stop: str | None,
           category: str | None, day_type: str | None, dataset: str, predictor: str | None, early_s: int,
           late_s: int, limit: int | None, format: str) -> ResponseReturnValue:
    if day_type is not None and day_type not in DAY_TYPES:
        raise BadRequest(f"day_type must be one of {', '.join(DAY_TYPES)}", field="day_type")
    if format not in ("json", "csv"):
        raise BadRequest("format must be json or csv", field="format")
    filters = Filters(dataset, start, end, route, stop, category, day_type, early_s, late_s, predictor, limit)
    with get_db(current_app).session() as session:
        current_staff(session)
        columns, rows = run_report(session, name, filters)
        session.commit()  # the session cookie's idle clock
    if format == "csv":
        return Response(to_csv(columns, rows), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return jsonify(report=name, columns=list(columns), rows=rows)


def to_csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    """The rows as CSV: ``null`` is an empty field, booleans are ``true``/``false`` as in the JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row[c] is None else str(row[c]).lower() if isinstance(row[c], bool) else row[c]
                         for c in columns])
    return out.getvalue()


_SCHEMAS: dict[str, Any] = {
    "ReportList": {"type": "object", "required": ["reports"], "properties": {"reports": {
        "type": "array", "items": {"type": "object", "required": ["name", "title", "columns", "filters"],
                                   "properties": {"name": {"type": "string"}, "title": {"type": "string"},
                                                  "columns": {"type": "array", "items": {"type": "string"}},
                                                  "filters": {"type": "array", "items": {"type": "string"}}}}}}},
    "ReportTable": {"type": "object", "required": ["report", "columns", "rows"], "properties": {
        "report": {"type": "string"}, "columns": {"type": "array", "items": {"type": "string"}},
        "rows": {"type": "array", "items": {"type": "object"}}}},
}


def register_reports_api(app: Flask) -> None:
    for schema_name, schema in _SCHEMAS.items():
        SCHEMAS.setdefault(schema_name, schema)
    EXAMPLES.setdefault("ReportTable", {"report": "boardings-by-hour", "columns": ["hour", "boardings",
                                        "transfers", "revenue"],
                                        "rows": [{"hour": 8, "boardings": 1520, "transfers": 210,
                                                  "revenue": 15360000}]})
    app.register_blueprint(bp)
