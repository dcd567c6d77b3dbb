"""Report numbers on a hand-computable day: boardings, revenue, transfers, passes, OD chaining, on-time."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask

from app import get_db
from app.reports.facts import insert_boardings
from app.reports.rollups import RollupSettings, rebuild_dates
from app.reports.service import refresh_reports
from tests.fixtures.rollups import ALMATY, DAY, DAY_ROWS, boarding, report
from tests.fixtures.tickets import make_card, make_device, send_tap, tap_request


@pytest.fixture
def day(app: Flask) -> Flask:
    with get_db(app).session() as session:
        dates = insert_boardings(session, DAY_ROWS)
        rebuild_dates(session, "qala", dates, RollupSettings(tz=ALMATY))
        session.commit()
    return app


def test_boardings_by_route_count_transfers_and_revenue(day: Flask) -> None:
    assert report(day, "boardings-by-route", end=DAY) == [
        {"route_id": "R1", "boardings": 3, "transfers": 0, "revenue": 30000},
        {"route_id": "R2", "boardings": 3, "transfers": 1, "revenue": 0},
    ]
    assert report(day, "boardings-by-route")[0]["boardings"] == 4  # with Saturday


def test_boardings_by_hour_and_day_type(day: Flask) -> None:
    by_hour = {r["hour"]: r["boardings"] for r in report(day, "boardings-by-hour")}
    assert by_hour == {8: 3, 9: 1, 10: 1, 11: 1, 17: 1}
    assert {r["day_type"]: r["boardings"] for r in report(day, "boardings-by-day-type")} == {
        "saturday": 1, "weekday": 6}
    assert report(day, "boardings-by-hour", day_type="saturday") == [
        {"hour": 10, "boardings": 1, "transfers": 0, "revenue": 12000}]


def test_boardings_by_stop_with_filters(day: Flask) -> None:
    assert {r["stop_id"]: r["boardings"] for r in report(day, "boardings-by-stop", start=DAY, end=DAY)} == {
        "S1": 2, "S2": 3, "S3": 1}
    assert report(day, "boardings-by-stop", route="R2", category="pensioner") == [
        {"stop_id": "S2", "boardings": 2, "transfers": 0}]


def test_revenue_concessions_and_pass_use(day: Flask) -> None:
    assert {r["category"]: r["revenue"] for r in report(day, "revenue-by-category")} == {
        "pensioner": 0, "standard": 36000, "student": 6000}
    share = {r["category"]: (r["share"], r["concession"]) for r in report(day, "concession-share", end=DAY)}
    assert share == {"pensioner": (0.3333, True), "standard": (0.5, False), "student": (0.1667, True)}
    assert {r["paid_by"]: r["boardings"] for r in report(day, "pass-use", end=DAY)} == {
        "free": 1, "pass": 2, "stored_value": 3}
    assert report(day, "transfers", route="R2") == [
        {"route_id": "R2", "boardings": 3, "transfers": 1, "transfer_rate": 0.3333}]


def test_od_matrix_chains_each_riders_next_tap(day: Flask) -> None:
    rows = report(day, "od-matrix", end=DAY)
    cells = {(r["origin"], r["destination"]): r["trips"] for r in rows}
    # A's last trip, B's only trip and both of C's (second boarding at the same stop) are unchained
    assert cells == {("S1", "S2"): 1, ("S2", "S3"): 1, ("S1", None): 1, ("S2", None): 2, ("S3", None): 1}
    assert all(r["chained"] == (r["destination"] is not None) for r in rows)
    assert {(r["origin"], r["destination"]) for r in report(day, "od-matrix", stop="S3")} == {
        ("S2", "S3"), ("S3", None)}


def test_a_filter_a_report_cannot_honour_is_refused(day: Flask) -> None:
    from app.errors import BadRequest

    with pytest.raises(BadRequest):
        report(day, "boardings-by-hour", stop="S1")


def test_live_taps_reach_the_rollups_on_refresh(app: Flask) -> None:
    _, number, _ = make_card(app, balance=50000)
    dev = make_device(app)
    send_tap(app, tap_request(dev.device_id, 1, number))
    send_tap(app, tap_request(dev.device_id, 2, number, seconds=1))  # double tap: not a boarding
    assert refresh_reports(app).boarding_dates == {dt.date(2026, 3, 10)}
    assert report(app, "boardings-by-route") == [
        {"route_id": "R12", "boardings": 1, "transfers": 0, "revenue": 12000}]
    send_tap(app, tap_request(dev.device_id, 3, number, seconds=600))
    refresh_reports(app)
    assert refresh_reports(app).boarding_dates == set()
    assert report(app, "boardings-by-hour") == [{"hour": 8, "boardings": 2, "transfers": 0, "revenue": 24000}]
    assert report(app, "revenue-by-channel") == [{"channel": "kiosk", "top_ups": 1, "amount": 50000}]


def test_on_time_window_is_applied_to_deviation_buckets(app: Flask) -> None:
    from app.models import OnTimeHour

    with get_db(app).session() as session:  # deviations -90 s, 0 s, 240 s and 330 s at 08:00 on R1
        session.add_all(OnTimeHour(service_date=DAY, hour=8, route_id="R1", bucket=b, day_type="weekday",
                                   arrivals=1) for b in (-3, 0, 8, 11))
        session.commit()
    assert report(app, "on-time") == [{"route_id": "R1", "hour": 8, "early": 1, "on_time": 2, "late": 1,
                                       "on_time_share": 0.5}]
    assert report(app, "on-time", early_s=120, late_s=240)[0] | {} == {
        "route_id": "R1", "hour": 8, "early": 0, "on_time": 2, "late": 2, "on_time_share": 0.5}


def _rollup_cells(app: Flask) -> dict[str, set[tuple[Any, ...]]]:
    from sqlalchemy import text

    with get_db(app).session() as session:
        return {table: {tuple(r) for r in session.execute(text(f"SELECT * FROM {table}"))}
                for table in ("report_route_hour", "report_stop_day", "report_od_day")}


def test_new_boardings_fold_in_as_deltas_equal_to_a_rebuild(app: Flask) -> None:
    from sqlalchemy import func, select

    from app.models import ReportBoarding
    from app.reports.delta import apply_new_boardings

    settings = RollupSettings(tz=ALMATY)
    first, later = DAY_ROWS[:4], [
        *DAY_ROWS[4:],
        boarding("A", "07:45", "S4", "R3", "V9", 12000),  # arrives late but boarded first: A's 08:00 is a transfer now
        boarding("B", "12:00", "S3", "R1", "V5", 6000, category="student"),  # chains B's morning trip to S3
        boarding("E", "13:00", "S1", "R1", "V1", 12000),  # a new rider
    ]
    with get_db(app).session() as session:
        rebuild_dates(session, "qala", insert_boardings(session, first), settings)
        before = session.scalar(select(func.max(ReportBoarding.id)))
        assert before is not None
        for day in sorted(insert_boardings(session, later)):
            apply_new_boardings(session, "qala", day, before, 3600)
        session.commit()
    incremental = _rollup_cells(app)
    assert report(app, "transfers", route="R1", end=DAY)[0]["transfers"] == 1  # A's 08:00 after the 07:45 bus
    with get_db(app).session() as session:
        rebuild_dates(session, "qala", {DAY, DAY + dt.timedelta(days=5)}, settings)
        session.commit()
    assert _rollup_cells(app) == incremental
