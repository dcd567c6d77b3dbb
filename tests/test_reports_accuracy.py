"""Prediction accuracy over time, on predictions whose errors can be scored by hand, and the incremental
refresh picking up taps, stop events and predictions without a rebuild."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app import get_db
from app.models import AccuracyDay, FeedVersion, PredictionLog, StopEvent, Trip
from app.reports.accuracy import rebuild_accuracy
from app.reports.service import refresh_incremental, refresh_reports
from prediction.eta.metrics import score_predictions
from tests.fixtures.rollups import ALMATY, DAY, report
from tests.fixtures.tickets import make_card, make_device, send_tap, tap_request


def at(day: dt.date, hhmmss: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmmss), ALMATY).astimezone(dt.UTC)


def event(day: dt.date, trip: str, seq: int, arrived: str, scheduled: str) -> StopEvent:
    arrival, planned = at(day, arrived), at(day, scheduled)
    return StopEvent(feed_version_id=1, trip_id=trip, service_date=day, stop_sequence=seq, stop_id=f"S{seq}",
                     vehicle_id="bus-1", arrival_at=arrival, departure_at=arrival, scheduled_arrival_at=planned,
                     scheduled_departure_at=planned, deviation_s=int((arrival - planned).total_seconds()),
                     passed_between_pings=False)


def prediction(day: dt.date, made: str, predicted: str, route: str = "R1", trip: str = "T1", seq: int = 5,
               predictor: str = "hgb", interval: tuple[str, str] | None = None) -> PredictionLog:
    return PredictionLog(made_at=at(day, made), service_date=day, trip_id=trip, route_id=route, stop_id=f"S{seq}",
                         stop_sequence=seq, vehicle_id="bus-1", predictor=predictor,
                         predicted_at=at(day, predicted), lower_at=at(day, interval[0]) if interval else None,
                         upper_at=at(day, interval[1]) if interval else None)


# The bus reached T1's 5th stop at 08:10:00. Errors (actual - predicted) and times to the arrival:
HGB = [
    ("08:08:00", "08:10:30", ("08:09:30", "08:11:00")),  # 2 min ahead, -30 s: accurate in [0,3); in interval
    ("08:08:30", "08:11:00", None),                       # 1.5 min ahead, -60 s: outside [-30, 90]
    ("08:05:00", "08:08:00", ("08:07:00", "08:09:00")),  # 5 min ahead, +120 s: accurate in [3,6); not in interval
    ("08:02:00", "08:06:00", None),                       # 8 min ahead, +240 s: outside [-60, 210]
    ("07:40:00", "08:00:00", None),                       # 30 min ahead: beyond the buckets, +600 s
    ("08:11:00", "08:12:00", None),                       # made after the bus came: not scored
]


@pytest.fixture
def scored(app: Flask) -> Flask:
    with get_db(app).session() as session:
        session.add(event(DAY, "T1", 5, "08:10:00", "08:09:00"))
        session.add(event(DAY + dt.timedelta(days=1), "T2", 3, "08:02:30", "08:02:00"))
        session.add_all(prediction(DAY, made, predicted, interval=interval) for made, predicted, interval in HGB)
        session.add(prediction(DAY, "08:05:00", "08:10:00", predictor="schedule"))
        session.add(prediction(DAY + dt.timedelta(days=1), "08:00:00", "08:02:00", route="R2", trip="T2", seq=3))
        session.add(prediction(DAY, "08:00:00", "08:05:00", trip="T9"))  # no observed arrival: never scored
        rebuild_accuracy(session, [DAY, DAY + dt.timedelta(days=1)])
        session.commit()
    return app


def test_accuracy_by_day_scores_each_bucket_by_the_benchmark_rules(scored: Flask) -> None:
    rows = report(scored, "prediction-accuracy")
    assert [(r["service_date"], r["predictor"]) for r in rows] == [
        ("2026-03-02", "hgb"), ("2026-03-02", "schedule"), ("2026-03-03", "hgb")]
    hgb = rows[0]
    assert (hgb["accuracy_0_3"], hgb["accuracy_3_6"], hgb["accuracy_6_10"], hgb["accuracy_10_15"]) == (
        0.5, 1.0, 0.0, None)
    assert hgb["eta_benchmark"] == 0.5  # mean of the three buckets that have predictions
    assert hgb["predictions"] == 5
    assert hgb["mae_s"] == (30 + 60 + 120 + 240 + 600) / 5
    assert hgb["early_rate"] == 0.0  # -60 s is not earlier than -60 s
    assert hgb["interval_coverage"] == 0.5
    assert rows[1]["eta_benchmark"] == 1.0 and rows[2]["eta_benchmark"] == 1.0


def test_accuracy_agrees_with_the_backtest_metrics(scored: Flask) -> None:
    def epoch(value: str) -> float:
        return at(DAY, value).timestamp()

    arrival = epoch("08:10:00")
    direct = score_predictions([epoch(m) for m, _, _ in HGB], [epoch(p) for _, p, _ in HGB], [arrival] * len(HGB))
    hgb = report(scored, "prediction-accuracy", predictor="hgb", end=DAY)[0]
    assert hgb["eta_benchmark"] == direct.eta_benchmark["overall"]
    assert hgb["predictions"] == direct.n


def test_accuracy_by_route_and_filters(scored: Flask) -> None:
    rows = report(scored, "prediction-accuracy-by-route")
    by_route = {(r["route_id"], r["predictor"]): r["predictions"] for r in rows}
    assert by_route == {("R1", "hgb"): 5, ("R1", "schedule"): 1, ("R2", "hgb"): 1}
    assert [r["service_date"] for r in report(scored, "prediction-accuracy", route="R2")] == ["2026-03-03"]
    assert report(scored, "prediction-accuracy", day_type="sunday") == []


def test_accuracy_csv_matches_json(scored: Flask, client: Any, runner: Any) -> None:
    from tests.fixtures.accounts import create_user, log_in

    create_user(runner, "ana@qala.kz", "analyst")
    log_in(client, "ana@qala.kz")
    body = client.get("/api/v1/reports/prediction-accuracy?predictor=hgb").get_json()
    text = client.get("/api/v1/reports/prediction-accuracy?predictor=hgb&format=csv").get_data(as_text=True)
    lines = text.strip().split("\n")
    assert lines[0].split(",") == body["columns"] and len(lines) == 1 + len(body["rows"]) == 3
    assert lines[1].split(",")[:4] == ["2026-03-02", "hgb", "5", "0.5"]
    assert client.get("/api/v1/reports/prediction-accuracy?stop=S1").status_code == 400


# ---- incremental refresh: today's data arrives after a refresh and shows up after the next one


def _today() -> dt.date:
    return dt.datetime.now(ALMATY).date()


def _feed_with_trip(app: Flask, trip: str, route: str) -> None:
    with get_db(app).session() as session:
        if session.get(FeedVersion, 1) is None:
            session.add(FeedVersion(id=1, label="t", source="t", sha256="0" * 64, status="ready",
                                    agency_timezone="Asia/Almaty"))
            session.flush()
        session.add(Trip(feed_version_id=1, trip_id=trip, route_id=route, service_id="all", start_s=0, end_s=1))
        session.commit()


def _add(app: Flask, *rows: Any) -> None:
    with get_db(app).session() as session:
        session.add_all(rows)
        session.commit()


def _accuracy_rows(app: Flask) -> int:
    with get_db(app).session() as session:
        return int(session.scalar(select(func.sum(AccuracyDay.predictions))) or 0)


def test_incremental_refresh_picks_up_taps_events_and_predictions(app: Flask) -> None:
    today = _today()
    _feed_with_trip(app, "T1", "R1")
    refresh_reports(app)
    assert report(app, "on-time") == [] and report(app, "boardings-by-route") == []

    _, number, _ = make_card(app, balance=50000)
    dev = make_device(app)
    send_tap(app, tap_request(dev.device_id, 1, number))
    _add(app, event(today, "T1", 1, "07:00:30", "07:00:00"), event(today, "T1", 2, "07:12:00", "07:05:00"),
         prediction(today, "06:58:00", "07:00:00", seq=1))
    done = refresh_reports(app)
    assert today in done.operations_dates
    assert report(app, "on-time") == [{"route_id": "R1", "hour": 7, "early": 0, "on_time": 1, "late": 1,
                                       "on_time_share": 0.5}]
    assert report(app, "boardings-by-route")[0]["boardings"] == 1
    assert _accuracy_rows(app) == 1

    send_tap(app, tap_request(dev.device_id, 2, number, seconds=900))
    _add(app, event(today, "T1", 3, "07:15:00", "07:15:00"), prediction(today, "07:10:00", "07:14:00", seq=3))
    refresh_reports(app)
    assert report(app, "on-time")[0]["on_time"] == 2
    assert report(app, "boardings-by-route")[0]["boardings"] == 2
    assert _accuracy_rows(app) == 2

    again = refresh_reports(app)  # nothing new: the same numbers, no boarding date rebuilt
    assert again.boarding_dates == frozenset() and again.top_up_dates == frozenset()
    assert report(app, "on-time")[0]["on_time"] == 2 and _accuracy_rows(app) == 2
    assert report(app, "boardings-by-route")[0]["boardings"] == 2


def test_predictions_for_a_past_day_are_scored_once_logged(app: Flask) -> None:
    past = _today() - dt.timedelta(days=20)
    _add(app, event(past, "T1", 5, "08:10:00", "08:09:00"))
    refresh_reports(app)
    assert _accuracy_rows(app) == 0
    _add(app, prediction(past, "08:08:00", "08:10:30"))
    with get_db(app).session() as session:
        assert past in refresh_incremental(session, app).operations_dates
        session.commit()
    assert report(app, "prediction-accuracy") == [
        {"service_date": past.isoformat(), "predictor": "hgb", "predictions": 1, "eta_benchmark": 1.0,
         "accuracy_0_3": 1.0, "accuracy_3_6": None, "accuracy_6_10": None, "accuracy_10_15": None,
         "mae_s": 30.0, "early_rate": 0.0, "interval_coverage": None}]


def test_reports_refresh_command_says_what_it_rebuilt(app: Flask, runner: Any) -> None:
    _, number, _ = make_card(app, balance=50000)
    send_tap(app, tap_request(make_device(app).device_id, 1, number))
    first = runner.invoke(args=["reports", "refresh"])
    assert first.exit_code == 0, first.output
    assert "boardings=2026-03-10" in first.output and "top_ups=" in first.output
    second = runner.invoke(args=["reports", "refresh"])
    assert "boardings=- top_ups=-" in second.output
    assert runner.invoke(args=["reports", "follow", "--every", "0"]).exit_code != 0  # --every must be positive
