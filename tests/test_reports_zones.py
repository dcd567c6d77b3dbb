"""The zone-level OD matrix on the hand-computable day of ``test_reports_rollups``: zone cells are sums of stop cells,
deltas keep them in step, a new feed or grid re-derives them, top flows, and the CSV is the JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from app import get_db
from app.errors import BadRequest
from app.models import FeedVersion, OdDay, OdZoneDay, OdZoneTotalDay, Stop, StopZone
from app.reports.facts import insert_boardings
from app.reports.rollups import RollupSettings, rebuild_dates
from app.reports.zones import StopPoint, assign_zones, sync_stop_zones, zone_of
from tests.browser import needs_chromium
from tests.fixtures.accounts import create_user, log_in
from tests.fixtures.rollups import ALMATY, DAY, DAY_ROWS, boarding, report

# S1 and S2 are 600 m apart, in one 2 km cell; S3 has a GTFS fare zone; S4 is in no feed (stays itself)
STOPS = [StopPoint("S1", 43.2101, 76.9101), StopPoint("S2", 43.2140, 76.9150), StopPoint("S3", 43.26, 76.95, "Z9")]
CELL = zone_of(STOPS[0], 2000)


def _zone_cells(app: Flask) -> set[tuple[Any, ...]]:
    with get_db(app).session() as session:
        m, t = OdZoneDay, OdZoneTotalDay
        return ({tuple(r) for r in session.execute(select(m.dataset, m.service_date, m.origin_zone,
                                                          m.destination_zone, m.category, m.day_type, m.trips))}
                | {("total", *r) for r in session.execute(select(t.dataset, t.service_date, t.origin_zone,
                                                                 t.destination_zone, t.day_type, t.trips))})


@pytest.fixture
def zoned(app: Flask) -> Flask:
    with get_db(app).session() as session:
        assign_zones(session, STOPS, 2000)
        rebuild_dates(session, "qala", insert_boardings(session, DAY_ROWS), RollupSettings(tz=ALMATY))
        session.commit()
    return app


def test_stops_fall_in_their_cell_or_fare_zone() -> None:
    assert zone_of(STOPS[1], 2000) == CELL != zone_of(StopPoint("far", 43.2101, 76.99), 2000)
    assert zone_of(STOPS[2], 2000) == "zone:Z9"
    assert zone_of(STOPS[0], 1000) != CELL  # the key names the grid size, so a new size never mixes cells


def test_zone_cells_are_the_sums_of_their_stop_cells(zoned: Flask) -> None:
    # A: S1→S2 (same cell), S2→S3 (cell→Z9), S3 unchained; B: S1 unchained; C: S2 twice, both unchained
    rows = report(zoned, "od-matrix", end=DAY)
    assert {(r["origin"], r["destination"]): r["trips"] for r in rows} == {
        (CELL, CELL): 1, (CELL, "zone:Z9"): 1, (CELL, None): 3, ("zone:Z9", None): 1}
    assert all(r["level"] == "zone" and r["chained"] == (r["destination"] is not None) for r in rows)
    with get_db(zoned).session() as session:
        zone: dict[str, str] = {s: z for s, z in session.execute(select(StopZone.stop_id, StopZone.zone))}
        summed: Counter[tuple[Any, ...]] = Counter()
        for d, o, dest, cat, n in session.execute(select(OdDay.service_date, OdDay.origin, OdDay.destination,
                                                          OdDay.category, OdDay.trips)):
            summed[d, zone.get(o, o), zone.get(dest, dest), cat] += n
        held = {(d, o, dest, cat): n for d, o, dest, cat, n in session.execute(
            select(OdZoneDay.service_date, OdZoneDay.origin_zone, OdZoneDay.destination_zone, OdZoneDay.category,
                   OdZoneDay.trips))}
        totals = {(d, o, dest): n for d, o, dest, n in session.execute(
            select(OdZoneTotalDay.service_date, OdZoneTotalDay.origin_zone, OdZoneTotalDay.destination_zone,
                   OdZoneTotalDay.trips))}
    assert held == dict(summed) and sum(held.values()) == len(DAY_ROWS)
    over_categories: Counter[tuple[Any, ...]] = Counter()
    for (d, o, dest, _cat), n in held.items():
        over_categories[d, o, dest] += n
    assert totals == dict(over_categories)
    assert report(zoned, "od-matrix", end=DAY, category="pensioner") == [
        next(r for r in rows if r["destination"] is None and r["origin"] == CELL) | {"trips": 2}]


def test_centroids_stop_filter_and_top_flows(zoned: Flask) -> None:
    cell = next(r for r in report(zoned, "od-matrix") if r["origin"] == CELL)
    centroid = (round((43.2101 + 43.2140) / 2, 5), round((76.9101 + 76.9150) / 2, 5))
    assert (cell["origin_lat"], cell["origin_lon"]) == centroid
    top = report(zoned, "od-matrix", limit=1)
    assert [(r["origin"], r["destination"], r["trips"]) for r in top] == [(CELL, None, 4)]  # with Saturday's D
    by_stop = report(zoned, "od-matrix", stop="S3", end=DAY)
    assert {(r["origin"], r["destination"], r["level"]) for r in by_stop} == {("S2", "S3", "stop"),
                                                                              ("S3", None, "stop")}
    assert next(r for r in by_stop if r["origin"] == "S2")["destination_lat"] == 43.26
    with pytest.raises(BadRequest):
        report(zoned, "boardings-by-route", limit=3)


def test_deltas_keep_the_zones_in_step_with_a_rebuild(app: Flask) -> None:
    from sqlalchemy import func

    from app.models import ReportBoarding
    from app.reports.delta import apply_new_boardings

    settings = RollupSettings(tz=ALMATY)
    later = [*DAY_ROWS[4:], boarding("B", "12:00", "S3", "R1", "V5", 6000, category="student"),
             boarding("E", "13:00", "S4", "R1", "V1", 12000), boarding("E", "18:00", "S1", "R1", "V1", 12000)]
    with get_db(app).session() as session:
        assign_zones(session, STOPS, 2000)
        rebuild_dates(session, "qala", insert_boardings(session, DAY_ROWS[:4]), settings)
        before = session.scalar(select(func.max(ReportBoarding.id)))
        assert before is not None
        for day in sorted(insert_boardings(session, later)):
            apply_new_boardings(session, "qala", day, before, 3600)
        session.commit()
    incremental = _zone_cells(app)
    assert ("qala", DAY, "S4", CELL, "standard", "weekday", 1) in incremental  # S4 has no zone: itself
    assert ("qala", DAY, CELL, "zone:Z9", "student", "weekday", 1) in incremental  # B chained to S3 now
    assert ("total", "qala", DAY, CELL, "zone:Z9", "weekday", 2) in incremental  # with A's S2→S3
    with get_db(app).session() as session:
        rebuild_dates(session, "qala", {DAY, DAY + dt.timedelta(days=5)}, settings)
        session.commit()
    assert _zone_cells(app) == incremental


def test_a_new_feed_or_grid_re_derives_the_zones(zoned: Flask) -> None:
    with get_db(zoned).session() as session:
        session.add(FeedVersion(id=1, label="t", source="t", sha256="0" * 64, status="ready", is_active=True,
                                agency_timezone="Asia/Almaty"))
        session.flush()
        session.add_all(Stop(feed_version_id=1, stop_id=p.stop_id, stop_lat=p.lat, stop_lon=p.lon, zone_id=p.zone_id)
                        for p in STOPS)
        session.commit()
        assert sync_stop_zones(session, 2000) is False  # the same stops and grid: nothing to do
        assert sync_stop_zones(session, 100) is True
        session.commit()
    zones = {r["origin"] for r in report(zoned, "od-matrix", end=DAY)}
    assert zones == {zone_of(STOPS[0], 100), zone_of(STOPS[1], 100), "zone:Z9"} and len(zones) == 3


def test_od_csv_matches_json(client: FlaskClient, runner: FlaskCliRunner, zoned: Flask) -> None:
    create_user(runner, "ana@qala.kz", "analyst")
    log_in(client, "ana@qala.kz")
    for query in ("limit=3", "stop=S2&category=pensioner", "day_type=weekday"):
        body = client.get(f"/api/v1/reports/od-matrix?{query}").get_json()
        assert body["rows"], query
        text_ = client.get(f"/api/v1/reports/od-matrix?{query}&format=csv").get_data(as_text=True)
        table = list(csv.reader(io.StringIO(text_)))
        assert table[0] == body["columns"]
        assert table[1:] == [["" if row[c] is None else str(row[c]).lower() if isinstance(row[c], bool)
                              else str(row[c]) for c in body["columns"]] for row in body["rows"]]
    refused = client.get("/api/v1/reports/od-matrix?limit=0")
    assert refused.status_code == 400 and "limit" in str(refused.get_json())


@needs_chromium
def test_dashboard_asks_for_the_top_flows_only_of_the_od_matrix(
        app: Flask, dashboard_server: str, dashboard_page: Any) -> None:
    """In Chromium: the top-flows input shows, and is sent, with the OD matrix only (other reports refuse it)."""
    server, page = dashboard_server, dashboard_page
    from tests.fixtures.accounts import PASSWORD

    page.goto(f"{server}/staff/")
    page.fill("input[name=login]", "ana@qala.kz")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#chart rect.bar")
    page.select_option("#report", "od-matrix")
    page.wait_for_function("() => document.getElementById('csv').href.indexOf('od-matrix') >= 0")
    page.wait_for_function("() => document.querySelectorAll('#table tbody tr').length > 2")
    assert page.locator("label[data-only=od-matrix]").is_visible()
    assert "limit=50" in (page.get_attribute("#csv", "href") or "")
    page.fill("input[name=limit]", "2")
    page.dispatch_event("input[name=limit]", "change")
    page.wait_for_function("() => document.querySelectorAll('#table tbody tr').length === 2")
    assert page.locator("#chart rect.bar").count() == 2
    page.select_option("#report", "boardings-by-hour")
    page.wait_for_function("() => document.getElementById('csv').href.indexOf('boardings-by-hour') >= 0")
    assert not page.locator("label[data-only=od-matrix]").is_visible()
    assert "limit" not in (page.get_attribute("#csv", "href") or "")
    page.wait_for_function("() => document.querySelectorAll('#chart rect.bar').length > 2")
