"""The staff dashboard in real headless Chromium: log in, see the chart, change a filter and see it change, the
accuracy chart and the live map (with its "no live data" state).

Set ``QALA_SCREENSHOTS=docs`` to also write ``docs/dashboard.png`` (``make screenshots`` does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask

from tests.browser import SHOTS, needs_chromium
from tests.fixtures.accounts import PASSWORD
from tests.fixtures.boards import write_vehicles

pytestmark = needs_chromium
def bar_heights(page: Any) -> list[int]:
    heights = page.eval_on_selector_all("#chart rect.bar", "bars => bars.map(b => b.getAttribute('height'))")
    return [int(float(h)) for h in heights]


def test_dashboard_filters_change_the_chart_and_the_map_goes_live(app: Flask, dashboard_server: str,
                                                                   dashboard_page: Any) -> None:
    server, page = dashboard_server, dashboard_page
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
