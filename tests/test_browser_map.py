"""The street map and the compact route page in real headless Chromium at a phone's viewport.

Tiles come from a tiny tile server started here (a grey PNG for every ``/{z}/{x}/{y}.png``), or from a closed port
to see the pages fall back to their own SVG map. ``QALA_SCREENSHOTS=docs`` also writes ``docs/rider-route-*.png``.
"""

from __future__ import annotations

import socket
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from app import create_app, get_db
from app.models import Trip
from app.schedule.importer import import_feed
from app.web import rider_data
from app.web.rider import street_map
from tests.api_feed import STOPS, add_demo_feed
from tests.browser import SHOTS, axe_violations, live_server, needs_axe, needs_chromium
from tests.fixtures.rider_live import BETWEEN_S1_AND_S2, publish_live

pytestmark = [needs_chromium, needs_axe]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
WAIT_MS = 12000
DEMO_FEED = Path(__file__).resolve().parent.parent / "gtfs_data" / "almaty"


def _grey_png(size: int = 256) -> bytes:
    """A one-colour PNG tile, built by hand (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + b"\xdd\xe3\xe8" * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


class TileServer:
    """Serves the grey tile for any ``/{z}/{x}/{y}.png`` and counts the tiles asked for."""

    def __init__(self) -> None:
        self.served = 0
        self.tile = _grey_png()
        self.http = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.http.server_port}/{{z}}/{{x}}/{{y}}.png"

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.served += 1
        start_response("200 OK", [("Content-Type", "image/png"), ("Content-Length", str(len(self.tile)))])
        return [self.tile]


@pytest.fixture
def tiles() -> Iterator[TileServer]:
    server = TileServer()
    thread = threading.Thread(target=server.http.serve_forever, daemon=True)
    thread.start()
    yield server
    server.http.shutdown()
    thread.join(5)


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png"  # nothing listens there any more


def served_with_tiles(app: Flask, database_url: str, redis_settings: dict[str, Any], tile_url: str) -> Flask:
    """A second app on the test database and Redis whose pages take their tiles from ``tile_url`` (the page
    policy names the tile host when the app is made, so the URL is given then)."""
    return create_app({"TESTING": True, "DATABASE_URL": database_url, **redis_settings, "MAP_TILE_URL": tile_url,
                       "MAP_TILE_ATTRIBUTION": "© test tiles"})


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A phone-sized page, the pages' Content-Security-Policy enforced (tiles come in only if it allows them)."""
    context = browser.new_context(**PHONE, timezone_id="Asia/Almaty", locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


def on_the_line(page: Any, marker: str, line: str) -> bool:
    """Whether the centre of the first ``marker`` lies on a drawn ``line`` (hit-testing what is painted there)."""
    return bool(page.evaluate("""([marker, line]) => {
        const box = document.querySelector(marker).getBoundingClientRect();
        const x = box.left + box.width / 2, y = box.top + box.height / 2;
        return document.elementsFromPoint(x, y).some((el) => el.matches(line));
    }""", [marker, line]))


def serious(page: Any) -> list[dict[str, Any]]:
    return axe_violations(page)


def test_street_map_shows_tiles_stops_and_buses_on_the_line(app: Flask, database_url: str,
                                                            redis_settings: dict[str, Any], tiles: TileServer,
                                                            phone: Any) -> None:
    add_demo_feed(app)
    street = served_with_tiles(app, database_url, redis_settings, tiles.url)
    lat, lon = BETWEEN_S1_AND_S2
    publish_live(app, "S2", [("T12-a", 20, 3.0, "BUS-7")], vehicles=[("BUS-7", "T12-a", lat + 0.0002, lon)])
    try:
        with live_server(street) as base:
            phone.goto(base + "/routes/R12?lang=en")
            phone.wait_for_selector(".map-wrap[data-map=street]")
            assert phone.locator(".street-map img.leaflet-tile-loaded").count() >= 1 and tiles.served >= 1
            assert phone.locator("#route-map").is_hidden()  # the street map took its place
            assert phone.locator(".stop-pin").count() == 3
            assert phone.locator('.stop-pin[title="Abay — Dostyk"]').count() == 1  # named in the page's language
            [bus] = phone.locator(".bus-marker").all()
            assert bus.get_attribute("title") == "12 → Seifullin St · next: Абай даңғылы — Фурманов · 3 min"
            assert bus.locator(".bus-badge").inner_text() == "12"
            assert on_the_line(phone, ".bus-marker", "path.street-shape")
            assert "© test tiles" in phone.locator(".leaflet-control-attribution").inner_text()
            assert phone.locator(".map-note").is_hidden()
            assert serious(phone) == []

            phone.goto(base + "/?lang=kk")
            phone.wait_for_selector(".map-wrap[data-map=street]")
            phone.wait_for_selector(".bus-marker")  # the network map shows every route's buses too
            assert phone.locator(".bus-marker").get_attribute("title") == \
                "12 → Сейфуллин · келесі: Абай даңғылы — Фурманов · 3 мин"
            assert on_the_line(phone, ".bus-marker", "path.street-shape")
            assert phone.locator(".stop-pin").count() == len([s for s in STOPS if s.location_type == 0])
            assert phone.locator('.stop-pin[title="Абай — Достық"]').count() == 1
            assert phone.locator("path.street-shape").count() == 1
            assert serious(phone) == []
    finally:
        get_db(street).engine.dispose()


def test_unreachable_tiles_fall_back_to_the_svg_map_visibly(app: Flask, database_url: str,
                                                             redis_settings: dict[str, Any], phone: Any) -> None:
    add_demo_feed(app)
    cut_off = served_with_tiles(app, database_url, redis_settings, closed_port_url())
    lat, lon = BETWEEN_S1_AND_S2
    publish_live(app, "S2", [], vehicles=[("BUS-7", "T12-a", lat + 0.0002, lon)])
    try:
        with live_server(cut_off) as base:
            for url in ("/?lang=ru", "/routes/R12?lang=ru"):
                phone.goto(base + url)
                phone.wait_for_selector(".map-wrap[data-map=fallback]")
                assert phone.locator(".street-map").count() == 0 and phone.locator("svg.map").is_visible()
                assert phone.locator(".map-note").inner_text() == \
                    "Карту улиц загрузить не удалось; показана схема."
                assert phone.locator("svg.map circle.stop").count() >= 3
            assert phone.locator("#route-map circle.vehicle").count() == 1
            assert on_the_line(phone, "#route-map circle.vehicle", "#route-map path.shape")
            phone.goto(base + "/?lang=ru")
            phone.wait_for_selector("#map circle.vehicle")  # the network map's buses, on the SVG map too
            assert on_the_line(phone, "#map circle.vehicle", "#map path.shape")
            assert serious(phone) == []
    finally:
        get_db(cut_off).engine.dispose()


def _almaty_trip(app: Flask, route_id: str, direction_id: int) -> str:
    with get_db(app).session() as session:
        return str(session.scalars(select(Trip.trip_id).where(
            Trip.route_id == route_id, Trip.direction_id == direction_id).order_by(Trip.trip_id).limit(1)).one())


def _route_two_buses(app: Flask) -> list[tuple[str, str, float, float]]:
    """Route 2 of the Almaty demo as the issue saw it: 19 buses, 13 parked at its last stops, 6 on the road."""
    with get_db(app).session() as session:
        route = rider_data.route_page(session, "R2", "en")
    buses = []
    for direction in route["directions"]:
        trip = _almaty_trip(app, "R2", direction["direction_id"])
        last = direction["stops"][-1]
        buses += [(f"bus-00{len(buses) + 10}", trip, last["lat"], last["lon"]) for _ in range(7 if not buses else 6)]
        line = direction["shape"]["geometry"]["coordinates"]
        for share in (0.2, 0.45, 0.7):
            lon, lat = line[int(len(line) * share)]
            buses.append((f"bus-00{len(buses) + 10}", trip, lat, lon))
    return buses


def test_route_page_is_compact_without_fleet_numbers_or_parked_buses(app: Flask, phone: Any) -> None:
    import_feed(get_db(app), DEMO_FEED, label="almaty", canonical=False)
    buses = _route_two_buses(app)
    assert len(buses) == 19
    app.config["MAP_TILE_URL"] = "none"  # the SVG map: no tile server in this test
    publish_live(app, "S1", [], vehicles=buses)
    with live_server(app) as base:
        for lang in ("kk", "ru", "en"):
            phone.goto(f"{base}/routes/R2?lang={lang}")
            assert phone.locator("#vehicles li").count() == 6  # 13 parked buses left out
            assert phone.locator("#route-map circle.vehicle").count() == 6
            text = phone.locator("main").inner_text()
            assert "bus-00" not in text.lower()  # no fleet numbers anywhere
            top = phone.evaluate("document.querySelector('.route-stops').getBoundingClientRect().top + scrollY")
            height = phone.evaluate("document.documentElement.scrollHeight")
            assert top < 900 and height < 2500, (lang, top, height)
            assert phone.locator(".route-stops li.bus-approaching, .route-stops li.bus-here").count() >= 3
            assert serious(phone) == []
            if SHOTS:
                Path(SHOTS).mkdir(parents=True, exist_ok=True)
                phone.screenshot(path=str(Path(SHOTS) / f"rider-route-{lang}.png"), full_page=False)


def test_pages_load_nothing_from_other_hosts_but_the_tiles(app: Flask, database_url: str,
                                                           redis_settings: dict[str, Any], tiles: TileServer,
                                                           browser: Any) -> None:
    """With the page policy enforced: the tiles are let in, and nothing else from another host is asked for."""
    add_demo_feed(app)
    context = browser.new_context(**PHONE, locale="en-US")
    phone = context.new_page()
    phone.set_default_timeout(WAIT_MS)
    street = served_with_tiles(app, database_url, redis_settings, tiles.url)
    tile_host = urlsplit(tiles.url).netloc
    asked: list[str] = []
    phone.on("request", lambda request: asked.append(request.url))
    try:
        with live_server(street) as base:
            own = urlsplit(base).netloc
            for url in ("/", "/routes", "/routes/R12", "/stops/S1", "/card"):
                phone.goto(base + url + "?lang=en")
                phone.wait_for_load_state("load")
                if url in ("/", "/routes/R12"):
                    phone.wait_for_selector(".map-wrap[data-map=street]")  # the policy lets the tiles in
                linked = phone.evaluate("""() => [...document.querySelectorAll('[src], [href]')]
                    .map((el) => el.src || el.href).filter((u) => /^https?:/.test(u))""")
                assert {urlsplit(u).netloc for u in linked} <= {own, tile_host}, url
        hosts = {urlsplit(u).netloc for u in asked if u.startswith("http")}
        assert own in hosts and tile_host in hosts and hosts <= {own, tile_host}
        assert any("/vendor/leaflet/" in u for u in asked)  # Leaflet from us, not a CDN
    finally:
        context.close()
        get_db(street).engine.dispose()


def test_leaflet_is_served_by_us_for_a_year(app: Flask) -> None:
    client = app.test_client()
    with app.test_request_context():
        files = street_map()
    for url in (files["leaflet_js"], files["leaflet_css"]):
        response = client.get(url)
        assert response.status_code == 200 and "max-age=31536000" in response.headers["Cache-Control"]
        assert "immutable" in response.headers["Cache-Control"]
    assert client.get(files["leaflet_js"].replace("leaflet.js", "leaflet-src.js")).status_code == 404
    assert client.get(files["leaflet_js"].replace("leaflet.js", "../package.json")).status_code == 404
