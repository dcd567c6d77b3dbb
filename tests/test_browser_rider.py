"""Rider pages in real headless Chromium (Debian's, driven by playwright) at a phone's viewport.

Set ``QALA_SCREENSHOTS=docs`` to also write ``docs/rider-*.png`` (``make screenshots`` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app import get_db
from app.models import Trip
from app.schedule.importer import import_feed
from app.ticketing import riders
from app.web import rider_data
from tests.api_feed import STOPS, add_demo_feed
from tests.browser import SHOTS, live_server, needs_chromium
from tests.fixtures.rider_live import BETWEEN_S1_AND_S2, publish_live, translate_headsign
from tests.fixtures.tickets import make_card

pytestmark = needs_chromium
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
WAIT_MS = 8000
DEMO_FEED = Path(__file__).resolve().parent.parent / "gtfs_data" / "almaty"


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    add_demo_feed(app)
    app.config["MAP_TILE_URL"] = "none"  # our SVG map, whatever the network (tests/test_browser_map.py: tiles)
    with live_server(app) as url:
        yield url


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A phone-sized page that would read English (the browser's default language here)."""
    s1 = STOPS[0]
    context = browser.new_context(**PHONE, timezone_id="Asia/Almaty", locale="en-US",
                                  geolocation={"latitude": s1.lat + 0.0004, "longitude": s1.lon},
                                  permissions=["geolocation"])
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), full_page=full_page)


def fits_the_phone(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def unlabelled(page: Any) -> list[str]:
    """Form fields without a label and buttons or links without a name, as a screen reader would meet them."""
    return list(page.evaluate("""() => [
        ...[...document.querySelectorAll("input")].filter((i) => i.labels.length === 0).map((i) => "input#" + i.id),
        ...[...document.querySelectorAll("button, a")].filter((b) => !(b.textContent.trim() ||
            b.getAttribute("aria-label"))).map((b) => b.tagName + " " + b.outerHTML.slice(0, 60)),
    ]"""))


def test_rider_finds_a_stop_by_name_and_sees_arrivals_refresh(app: Flask, server: str, phone: Any) -> None:
    publish_live(app, "S1", [("T12-a", 10, 6.5, "BUS-7")])
    phone.goto(server + "/")
    phone.fill("#q", "Абая")
    phone.click("#search button[type=submit]")
    phone.locator("#stops li a").first.click()
    phone.wait_for_url("**/stops/S1")
    assert phone.locator("#stop-name").inner_text() == "Abay — Dostyk"  # the browser asks for English
    first = phone.locator("#arrivals tr").first
    assert first.get_attribute("class") == "live" and first.locator(".route").inner_text() == "12"
    assert first.locator(".kind").inner_text() == "live" and first.locator(".minutes").inner_text() == "6 min"
    assert fits_the_phone(phone)
    shot(phone, "rider-stop.png")

    publish_live(app, "S1", [("T12-a", 10, 2.5, "BUS-7"), ("T12-b", 10, 17.5, "BUS-8")])
    translate_headsign(app, "Сейфуллина", "en", "Seifullin terminus")
    phone.goto(server + "/stops/S1?refresh=1")
    publish_live(app, "S1", [("T12-b", 10, 16.5, "BUS-8")])  # BUS-7 has gone: the page follows by itself
    phone.wait_for_function("() => document.querySelectorAll('#arrivals tr.live').length === 1")
    assert phone.locator("#arrivals tr .minutes").first.inner_text() == "16 min"
    assert phone.locator("#arrivals tr td").nth(1).inner_text() == "Seifullin terminus"  # translated by the script

    phone.goto(server + "/")  # the phone remembers the stop
    assert phone.locator("#recent-stops li a").inner_text() == "Abay — Dostyk"


def test_language_switch_changes_ui_text_and_stop_names(app: Flask, server: str, phone: Any) -> None:
    phone.goto(server + "/stops/S1")
    expected = {"kk": ("Абай — Достық", "Жақын автобустар"), "ru": ("Абая — Достык", "Ближайшие автобусы"),
                "en": ("Abay — Dostyk", "Next buses")}
    for lang in ("kk", "ru", "en"):
        phone.click(f"#langs a[data-lang={lang}]")
        phone.wait_for_url(f"**lang={lang}")
        assert phone.locator("html").get_attribute("lang") == lang
        assert (phone.locator("#stop-name").inner_text(), phone.locator("#board-title").inner_text()) == expected[lang]
    phone.click("#langs a[data-lang=kk]")
    phone.goto(server + "/routes")  # the choice is remembered
    assert phone.locator("h1").inner_text() == "Бағыттар"


def test_route_page_shows_live_vehicles_on_the_route(app: Flask, server: str, phone: Any) -> None:
    lat, lon = BETWEEN_S1_AND_S2
    publish_live(app, "S2", [("T12-a", 20, 2.0, "BUS-7")], vehicles=[("BUS-7", "T12-a", lat, lon)])
    phone.goto(server + "/routes/R12?lang=en&refresh=1")
    assert phone.locator("#vehicles li").count() == 1
    assert phone.locator("#vehicles li").inner_text() == "12 → Seifullin St next: Абай даңғылы — Фурманов 2 min"
    assert phone.locator("#no-vehicles").is_hidden()
    assert phone.locator("#route-map circle.vehicle").count() == 1
    approaching = phone.locator('.direction[data-direction-id="0"] li[data-index="1"]')
    assert approaching.get_attribute("class") == "bus-approaching"
    assert approaching.locator(".bus-tag").inner_text() == "approaching · 2 min"
    assert "BUS-7" not in phone.locator("main").inner_text()
    assert fits_the_phone(phone) and unlabelled(phone) == []

    publish_live(app, "S2", [], vehicles=[])  # the bus went off duty: the page says so by itself
    phone.locator("#no-vehicles").wait_for(state="visible")
    assert phone.locator("#vehicles li").count() == 0 and phone.locator("#route-map circle.vehicle").count() == 0
    assert phone.locator(".route-stops li.bus-approaching").count() == 0


def test_card_balance_check_and_a_riders_own_cards(app: Flask, server: str, phone: Any) -> None:
    _, number, code = make_card(app, balance=24000)
    phone.goto(server + "/card?lang=en")
    phone.fill("#card-number", number)
    phone.fill("#card-code", str((int(code) + 1) % 1000).zfill(3))
    phone.click("#balance-form button[type=submit]")
    phone.wait_for_function("() => document.getElementById('balance-result').textContent.length > 0")
    assert phone.locator("#balance-result").inner_text() == "No card with this number and code."
    phone.fill("#card-code", code)
    phone.click("#balance-form button[type=submit]")
    phone.wait_for_function("() => document.getElementById('balance-result').textContent.includes('240')")
    assert phone.locator("#balance-result").inner_text().startswith("Balance: 240 ₸")

    with get_db(app).session() as session:
        rider_id = riders.create_rider(session, "aigerim@example.kz", "secret-pass").id
        session.commit()
    make_card(app, balance=50000, rider_id=rider_id)
    phone.fill("#login", "aigerim@example.kz")
    phone.fill("#password", "secret-pass")
    phone.click("#login-form button[type=submit]")
    phone.locator("#my-cards li .balance").wait_for()
    assert phone.locator("#my-cards li .balance").inner_text() == "500 ₸"
    phone.locator("#my-cards li button[data-action=history]").click()
    phone.locator("#history-days li.entry").first.wait_for()
    assert "Top-up" in phone.locator("#history-days").inner_text()
    assert fits_the_phone(phone) and unlabelled(phone) == []
    shot(phone, "rider-card.png")


def test_map_draws_the_network_and_finds_stops_near_me(app: Flask, server: str, phone: Any) -> None:
    phone.goto(server + "/?lang=ru")
    phone.wait_for_selector("#map[data-ready=true]")
    assert phone.locator("#map circle.stop").count() == 5 and phone.locator("#map path.shape").count() == 1
    phone.click("#near-me")
    phone.locator("#stops li a").first.wait_for()
    assert phone.locator("#stops li a .stop-name").first.inner_text() == "Абая — Достык"
    assert phone.locator("#map circle.me").count() == 1 and phone.locator("#map circle.chosen").count() >= 1
    assert unlabelled(phone) == []
    before = phone.locator("#map").get_attribute("viewBox")
    phone.click(".map-zoom button[data-zoom=in]")
    assert phone.locator("#map").get_attribute("viewBox") != before
    assert fits_the_phone(phone)


def test_map_pans_and_a_tapped_stop_opens_its_page(app: Flask, server: str, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(server + "/")
        page.wait_for_selector("#map[data-ready=true]")
        page.locator("#map").scroll_into_view_if_needed()
        box = page.locator("#map").bounding_box()
        before = page.locator("#map").get_attribute("viewBox")
        page.mouse.move(box["x"] + 100, box["y"] + 100)
        page.mouse.down()
        page.mouse.move(box["x"] + 160, box["y"] + 140, steps=5)
        page.mouse.up()
        assert page.locator("#map").get_attribute("viewBox") != before  # dragged
        page.locator("#map").focus()
        dragged = page.locator("#map").get_attribute("viewBox")
        page.keyboard.press("ArrowLeft")
        assert page.locator("#map").get_attribute("viewBox") != dragged  # and by keyboard
        dot = page.locator('#map circle.stop[data-stop-id="S3"]').bounding_box()
        page.mouse.click(dot["x"] + dot["width"] / 2, dot["y"] + dot["height"] / 2)
        assert page.locator("#map-popup strong").inner_text() == "Seifullin St"
        page.click("#map-popup a")
        page.wait_for_url("**/stops/S3")
        assert page.locator("#stop-name").inner_text() == "Seifullin St"
    finally:
        context.close()


def session_trip(app: Flask, route_id: str, direction_id: int) -> str:
    with get_db(app).session() as session:
        return str(session.scalars(select(Trip.trip_id).where(
            Trip.route_id == route_id, Trip.direction_id == direction_id).order_by(Trip.trip_id).limit(1)).one())


@pytest.mark.skipif(not SHOTS, reason="imports the whole Almaty demo feed (~20 s): only for make screenshots")
def test_screenshot_of_the_almaty_network(app: Flask, phone: Any) -> None:
    import_feed(get_db(app), DEMO_FEED, label="almaty", canonical=False)
    app.config["MAP_TILE_URL"] = "none"  # our SVG map: no tile server here
    with live_server(app) as base:
        phone.goto(f"{base}/?lang=kk")
        phone.wait_for_selector("#map[data-ready=true]")
        assert phone.locator("#map circle.stop").count() >= 200 and phone.locator("#map path.shape").count() >= 12
        shot(phone, "rider-home.png")
        phone.fill("#q", "Абай")
        phone.click("#search button[type=submit]")
        phone.wait_for_function("() => document.querySelectorAll('#stops li').length >= 10")
        assert phone.locator("#map circle.chosen").count() >= 10  # the results light up on the map

        # two buses of route 2 out on the road, one each way, each a third of the way from its start
        with get_db(app).session() as session:
            route = rider_data.route_page(session, "R2", "en")
        buses = []
        for direction, share in zip(route["directions"], (0.33, 0.33), strict=True):
            line = direction["shape"]["geometry"]["coordinates"]
            lon, lat = line[int(len(line) * share)]
            trip = session_trip(app, "R2", direction["direction_id"])
            buses.append((f"BUS-2{direction['direction_id']}", trip, lat, lon))
        publish_live(app, route["directions"][0]["stops"][5]["stop_id"], [], vehicles=buses)
        phone.goto(f"{base}/routes/R2?lang=en")
        assert phone.locator("#vehicles li").count() == 2 and phone.locator("#route-map circle.vehicle").count() == 2
        shot(phone, "rider-route.png", full_page=False)  # the first screen: title, buses, map
