"""The stop board and the home page in real headless Chromium (Debian's, driven by playwright).

Set ``QALA_SCREENSHOTS=docs`` to also write screenshots (``make screenshots`` does).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import get_db
from app.realtime.boards import PredictedArrival
from app.realtime.catalog import StaticCatalog
from tests.browser import SHOTS, live_server, needs_chromium
from tests.fixtures.boards import write_live
from tests.worker_feed import add_worker_feed

pytestmark = needs_chromium


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    add_worker_feed(app)  # the worker that writes the boards needs every trip's shape
    with live_server(app) as url:
        yield url


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 720}, timezone_id="Asia/Almaty")
    yield context.new_page()
    context.close()


def publish(app: Flask, stop: str, calls: list[tuple[str, int, float, str]], *, age_min: float = 0) -> None:
    """Live predictions at ``stop``: (trip, stop_sequence, minutes from now, vehicle)."""
    real_now = dt.datetime.now(dt.UTC)
    now = real_now - dt.timedelta(minutes=age_min)
    with get_db(app).session() as session:
        catalog = StaticCatalog.load(session)
    day = now.astimezone(catalog.timezone).date()
    predictions = [PredictedArrival(trip, stop, seq, day, real_now + dt.timedelta(minutes=m), vehicle_id=v,
                                    scheduled=real_now + dt.timedelta(minutes=m - 1)) for trip, seq, m, v in calls]
    write_live(app, predictions, now=now)


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name))


def test_board_renders_updates_and_rotates_language(app: Flask, server: str, page: Any) -> None:
    publish(app, "S2", [("T12-a", 20, 3.5, "BUS-7"), ("T92-a", 10, 7.5, "BUS-9")])
    page.goto(f"{server}/display/S2?poll=1&rotate=2")
    rows = page.locator("#rows li")
    rows.first.wait_for()
    assert rows.count() == 2 and page.locator("body").get_attribute("data-state") == "live"
    assert rows.nth(0).locator(".route").inner_text() == "12" and "live" in rows.nth(0).get_attribute("class")
    assert rows.nth(0).locator(".minutes").inner_text().startswith("3")
    color = rows.nth(0).locator(".route").evaluate("e => getComputedStyle(e).backgroundColor")
    assert color == "rgb(228, 0, 43)"  # E4002B
    shot(page, "display-board.png")

    publish(app, "S2", [("T12-a", 20, 1.5, "BUS-7"), ("T12-b", 20, 12.5, "BUS-8"), ("T92-a", 10, 7.5, "BUS-9")])
    page.wait_for_function("() => document.querySelectorAll('#rows li').length === 3", timeout=5000)
    assert rows.nth(0).locator(".minutes").inner_text().startswith("1")

    langs = {page.locator("body").get_attribute("data-lang")}
    labels = {page.locator("[data-label=route]").text_content()}
    for _ in range(2):
        page.wait_for_function(f"() => document.body.dataset.lang !== {page.evaluate('document.body.dataset.lang')!r}",
                               timeout=5000)
        langs.add(page.locator("body").get_attribute("data-lang"))
        labels.add(page.locator("[data-label=route]").text_content())
    assert langs == {"kk", "ru", "en"} and labels == {"Бағыт", "Маршрут", "Route"}


def test_board_marks_stale_and_scheduled(app: Flask, server: str, page: Any) -> None:
    publish(app, "S2", [("T12-a", 20, 5, "BUS-7")], age_min=10)  # the worker stopped 10 minutes ago
    page.goto(f"{server}/display/S2?poll=1")
    page.wait_for_function("() => document.body.dataset.state === 'stale'", timeout=5000)
    assert page.locator("#status").inner_text() != ""
    shot(page, "display-stale.png")

    page.goto(f"{server}/display/S3?poll=1")  # no board at all: the timetable, marked as such
    page.wait_for_function("() => document.body.dataset.state === 'scheduled'", timeout=5000)


def test_home_finds_a_stop_and_shows_arrivals(app: Flask, server: str, page: Any) -> None:
    publish(app, "S1", [("T12-a", 10, 6.5, "BUS-7")])
    page.goto(server + "/?lang=ru")  # stop names follow the page language (Chromium asks for English)
    page.fill("#q", "Абая")
    page.click("#search button[type=submit]")
    page.locator("#stops li a").first.click()  # results link to the stop's page
    page.locator("#arrivals tr td .route").first.wait_for()
    assert page.locator("#arrivals tr").first.locator(".route").inner_text() == "12"
    assert page.locator("#stop-name").inner_text() == "Абая — Достык"
    shot(page, "home-arrivals.png")
