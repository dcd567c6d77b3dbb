"""The staff dashboard in real headless Chromium: log in, see the chart, change a filter and see it change, the
accuracy chart and the live map (with its "no live data" state).

Set ``QALA_SCREENSHOTS=docs`` to also write ``docs/dashboard.png`` (``make screenshots`` does).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from app import get_db
from app.models import AccuracyDay
from app.reports.facts import day_type, insert_boardings
from app.reports.rollups import RollupSettings, rebuild_dates
from tests.api_feed import add_demo_feed
from tests.browser import SHOTS, live_server, needs_chromium
from tests.fixtures.boards import write_vehicles
from tests.test_reports_rollups import ALMATY, DAY, boarding
from tests.test_staff_pages import PASSWORD, create_user

pytestmark = needs_chromium
WEEK = [DAY + dt.timedelta(days=i) for i in range(7)]  # Monday to Sunday


def seed_week(app: Flask) -> None:
    """A week of boardings on the demo routes (fewer at the weekend) and two predictors' accuracy."""
    rng = random.Random(7)
    rows = []
    for day in WEEK:
        for n in range(300 if day.weekday() < 5 else 90):
            hour = rng.choice([6, 7, 7, 8, 8, 8, 9, 12, 13, 17, 17, 18, 18, 19, 21])
            route = rng.choice(["R12", "R12", "R92"])
            category = rng.choice(["standard"] * 6 + ["student", "pensioner", "school"])
            rows.append(boarding(f"card-{rng.randrange(400)}", f"{hour:02d}:{rng.randrange(60):02d}",
                                 rng.choice(["S1", "S2", "S3"]), route, f"bus-{n % 9}", 0 if category != "standard"
                                 else 20000, category=category, day=day))
    with get_db(app).session() as session:
        rebuild_dates(session, "qala", insert_boardings(session, rows), RollupSettings(tz=ALMATY))
        for i, day in enumerate(WEEK):
            for predictor, base in (("hgb-v1", 0.70), ("schedule", 0.48)):
                for bucket in range(4):
                    n = 400 - 60 * bucket
                    share = base + 0.025 * ((i * 3) % 5 - 2) + 0.01 * ((i + bucket) % 3) - 0.04 * bucket
                    session.add(AccuracyDay(service_date=day, route_id="R12", predictor=predictor, bucket=bucket,
                                            day_type=day_type(day), predictions=n, accurate=int(n * share),
                                            early=n // 12, abs_error_s=n * 80, with_interval=n,
                                            in_interval=int(n * 0.8)))
        session.commit()


@pytest.fixture
def server(app: Flask, runner: FlaskCliRunner) -> Iterator[str]:
    add_demo_feed(app)
    seed_week(app)
    create_user(runner, "ana@qala.kz", "analyst")
    with live_server(app) as url:
        yield url


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Asia/Almaty")
    yield context.new_page()
    context.close()


def bar_heights(page: Any) -> list[int]:
    heights = page.eval_on_selector_all("#chart rect.bar", "bars => bars.map(b => b.getAttribute('height'))")
    return [int(float(h)) for h in heights]


def test_dashboard_filters_change_the_chart_and_the_map_goes_live(app: Flask, server: str, page: Any) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
    page.goto(f"{server}/staff/?live_every=1")
    assert "/staff/login" in page.url  # not logged in yet
    page.fill("input[name=login]", "ana@qala.kz")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#chart rect.bar")
    page.goto(f"{server}/staff/?live_every=1")  # the map refreshes every second
    page.wait_for_selector("#chart rect.bar")
    page.select_option("#report", "boardings-by-hour")
    page.wait_for_function("() => document.querySelectorAll('#chart rect.bar').length > 5")
    all_days = bar_heights(page)

    page.select_option("select[name=day_type]", "sunday")
    page.wait_for_function("before => JSON.stringify(Array.from(document.querySelectorAll('#chart rect.bar'))"
                           ".map(b => parseFloat(b.getAttribute('height')))) !== before",
                           arg=json.dumps(all_days, separators=(",", ":")))
    sunday = bar_heights(page)
    assert sunday != all_days and sunday
    assert page.locator("#table tbody tr").count() == len(sunday)
    assert "day_type=sunday" in (page.get_attribute("#csv", "href") or "")

    # no vehicle positions yet: the map says so, over the route lines
    page.wait_for_function("() => document.getElementById('map').dataset.state === 'none'")
    assert "No live data" in page.locator("#map-status").inner_text()
    assert page.locator("#map polyline.route-line").count() >= 1  # the demo feed has one shape
    write_vehicles(app, [("BUS-7", "T12-a", 43.2394, 76.9510), ("BUS-9", None, 43.2440, 76.9300)])
    page.wait_for_function("() => document.getElementById('map').dataset.state === 'live'", timeout=10000)
    assert page.locator("#map g.vehicle").count() == 2

    page.select_option("select[name=day_type]", "")
    page.select_option("#report", "prediction-accuracy")
    page.wait_for_selector("#chart polyline.series")
    assert sorted(page.eval_on_selector_all("#chart polyline.series", "ls => ls.map(l => l.dataset.series)")) == [
        "hgb-v1", "schedule"]
    if SHOTS:
        page.locator("figure").first.screenshot(path=str(Path(SHOTS) / "dashboard-accuracy.png"))
    page.select_option("#report", "boardings-by-hour")
    page.wait_for_selector("#chart rect.bar")
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "dashboard.png"), full_page=True)
