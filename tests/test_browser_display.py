"""The stop board and the home page in real headless Chromium (Debian's, driven by playwright).

The board must fit the screens it is mounted on: at every size below, whole rows only, nothing outside the
viewport or on top of anything else, the status line on screen, and axe-core clean. Set
``QALA_SCREENSHOTS=docs`` to also write screenshots (``make screenshots`` does), among them ``board-<w>x<h>.png``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from app import get_db
from app.models import Route, StopTime, Translation, Trip
from app.realtime.boards import PredictedArrival
from app.realtime.catalog import StaticCatalog
from tests.browser import SHOTS, axe_violations, live_server, needs_axe, needs_chromium
from tests.fixtures.boards import write_live
from tests.worker_feed import add_worker_feed, shape_every_trip

pytestmark = needs_chromium

SIZES = [(768, 1366), (1080, 1920), (1366, 768), (1920, 1080), (3840, 2160)]  # portrait and landscape, up to 4K
# destinations as long as Almaty's real ones: the narrow boards must scroll them, never cut or overlap them
HEADSIGNS = ["Дворец Республики — Центральный стадион (через проспект Абая)", "Сайран", "Алматы-2 вокзал",
             "Орбита-3 — Калкаман-2 через Рыскулова", "Медеу", "Жетысу-2", "Аэропорт", "Университет имени Аль-Фараби"]


@pytest.fixture
def feed_id(app: Flask) -> int:
    return add_worker_feed(app)  # the worker that writes the boards needs every trip's shape


@pytest.fixture
def server(app: Flask, feed_id: int) -> Iterator[str]:
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


def add_s2_trips(app: Flask, feed_id: int, trips: list[tuple[str, str]]) -> list[str]:
    """A trip S1 → S2 → S3 (stop_sequence 10, 20, 30; boards leave out arrivals at a terminus) for each
    (route_id, headsign); their ids."""
    ids = [f"TX-{i}" for i in range(len(trips))]
    with get_db(app).session() as session:
        for trip_id, (route_id, headsign) in zip(ids, trips, strict=True):
            session.add(Trip(feed_version_id=feed_id, trip_id=trip_id, route_id=route_id, service_id="WD",
                             trip_headsign=headsign, direction_id=0, start_s=36000, end_s=36600))
            session.add_all(StopTime(feed_version_id=feed_id, trip_id=trip_id, stop_sequence=seq, stop_id=stop,
                                     arrival_s=s, departure_s=s)
                             for seq, stop, s in [(10, "S1", 36000), (20, "S2", 36300), (30, "S3", 36600)])
        session.commit()
    shape_every_trip(app, feed_id)  # as the importer draws shapes: the worker's network needs one per trip
    return ids


def add_routes(app: Flask, feed_id: int, routes: list[tuple[str, str, str | None, str | None]]) -> None:
    """Routes (route_id, short name, route_color, route_text_color) in the active feed."""
    with get_db(app).session() as session:
        session.add_all(Route(feed_version_id=feed_id, route_id=rid, route_short_name=name, route_type=3,
                              route_color=color, route_text_color=text) for rid, name, color, text in routes)
        session.commit()


def busy_s2(app: Flask, feed_id: int, count: int = 16) -> None:
    """A live board at S2 with ``count`` arrivals (more than any screen shows), long headsigns among them."""
    add_routes(app, feed_id, [("R300", "300К", "F5B83D", None), ("R37", "37", None, None)])
    routes = ["R12", "R92", "R300", "R37"]
    trips = add_s2_trips(app, feed_id, [(routes[i % 4], HEADSIGNS[i % len(HEADSIGNS)]) for i in range(count)])
    publish(app, "S2", [(trip, 20, 1.5 + 4 * i, f"BUS-{i}") for i, trip in enumerate(trips)])


def shot(page: Any, name: str) -> None:
    if SHOTS:
        page.evaluate("document.getAnimations().forEach((a) => { a.currentTime = 0; })")  # marquees at their start
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


# --- the board on every screen -------------------------------------------------------------------------------

GEOMETRY = """() => {
  const box = (e) => { const r = e.getBoundingClientRect();
                       return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; };
  const parts = (sel) => [...document.querySelectorAll(sel)].filter((e) => e.getClientRects().length)
    .map((e) => ({name: sel + " " + e.textContent.slice(0, 20), ...box(e),
                  clipped: e.scrollWidth > e.clientWidth + 1, marquee: e.classList.contains("marquee")}));
  return {
    width: innerWidth, height: innerHeight,
    scroll: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
    leaves: ["#stop-name", "#clock", ".heads > span", "#rows .route", "#rows .headsign", "#rows .minutes",
             "#status", "footer .key"].flatMap(parts),
    rows: parts("#rows li"), list: box(document.getElementById("rows")),
    footer: box(document.querySelector("footer")),
  };
}"""


def overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two boxes share more than a sub-pixel sliver."""
    return min(a["right"], b["right"]) - max(a["left"], b["left"]) > 0.5 and \
        min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 0.5


def inside(a: dict[str, Any], width: float, height: float) -> bool:
    return a["left"] >= -0.5 and a["top"] >= -0.5 and a["right"] <= width + 0.5 and a["bottom"] <= height + 0.5


def assert_fits(geometry: dict[str, Any]) -> None:
    """Nothing outside the viewport or over anything else, no scrolling, whole rows only, no clipped text."""
    width, height, leaves, rows = geometry["width"], geometry["height"], geometry["leaves"], geometry["rows"]
    assert geometry["scroll"] == [width, height]
    outside = [part["name"] for part in leaves + rows if not inside(part, width, height)]
    assert outside == []
    clashes = [(a["name"], b["name"]) for i, a in enumerate(leaves) for b in leaves[i + 1:] if overlap(a, b)]
    assert clashes == []
    assert all(rows[i]["bottom"] <= rows[i + 1]["top"] + 0.5 for i in range(len(rows) - 1))
    heights = {round(r["bottom"] - r["top"]) for r in rows}
    assert len(heights) == 1  # every row whole: the last as tall as the first
    assert rows[-1]["bottom"] <= geometry["list"]["bottom"] + 0.5 <= geometry["footer"]["top"] + 1
    cut = [p["name"] for p in leaves if p["clipped"] and not p["marquee"]]
    assert cut == []  # only headsigns too long for the screen overflow, and those scroll


def open_board(browser: Any, url: str, size: tuple[int, int], **options: Any) -> Any:
    """The board at ``url`` on a ``size`` screen, under the page's real headers (axe runs through DevTools)."""
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, **options)
    page = context.new_page()
    page.set_default_timeout(8000)
    page.goto(url)
    return page


@needs_axe
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_board_fits_every_screen(app: Flask, feed_id: int, server: str, browser: Any, size: tuple[int, int]) -> None:
    busy_s2(app, feed_id)
    page = open_board(browser, f"{server}/display/S2?poll=2&rotate=60", size, timezone_id="Asia/Almaty")
    page.wait_for_function("() => document.body.dataset.state === 'live'")
    geometry = page.evaluate(GEOMETRY)
    assert_fits(geometry)
    rows = geometry["rows"]
    row_height = rows[0]["bottom"] - rows[0]["top"]
    assert 4 <= len(rows) < 16 and geometry["list"]["bottom"] - rows[-1]["bottom"] < row_height  # filled, no gap
    assert page.locator("#status").inner_text().startswith("Жаңартылды")
    if size[0] < 1100:  # a narrow board cannot show the longest destination whole: it scrolls it
        assert page.locator("#rows .headsign.marquee").count() >= 1
    assert page.locator("main").count() == 1
    assert axe_violations(page) == []
    shot(page, f"board-{size[0]}x{size[1]}.png")
    page.context.close()


def test_board_refits_when_the_screen_turns(app: Flask, feed_id: int, server: str, browser: Any) -> None:
    busy_s2(app, feed_id)
    page = open_board(browser, f"{server}/display/S2?poll=1", (1366, 768))
    page.wait_for_function("() => document.body.dataset.state === 'live'")
    landscape = len(page.evaluate(GEOMETRY)["rows"])
    page.set_viewport_size({"width": 768, "height": 1366})  # a screen mounted the other way round
    page.wait_for_function(f"() => document.querySelectorAll('#rows li').length > {landscape}")
    assert_fits(page.evaluate(GEOMETRY))
    page.context.close()


def test_rows_stay_put_as_the_language_rotates(app: Flask, feed_id: int, server: str, browser: Any) -> None:
    busy_s2(app, feed_id)
    page = open_board(browser, f"{server}/display/S2?poll=1&rotate=1", (768, 1024))  # kk's legend is the longest
    counts = {}
    for lang in ("kk", "ru", "en"):
        page.wait_for_function(f"() => document.body.dataset.lang === '{lang}'")
        geometry = page.evaluate(GEOMETRY)
        assert_fits(geometry)
        counts[lang] = len(geometry["rows"])
    assert len(set(counts.values())) == 1, counts  # rows do not come and go with the language
    page.context.close()


@needs_axe
@pytest.mark.parametrize("size", [(1366, 768), (768, 1366)], ids=["landscape", "portrait"])
def test_offline_and_stale_show_on_screen(app: Flask, feed_id: int, server: str, browser: Any,
                                          size: tuple[int, int]) -> None:
    busy_s2(app, feed_id)
    page = open_board(browser, f"{server}/display/S2?poll=1&lang=ru", size)
    page.wait_for_function("() => document.body.dataset.state === 'live'")
    page.context.set_offline(True)
    page.wait_for_function("() => document.body.dataset.state === 'offline'")
    status = page.evaluate(GEOMETRY)["leaves"]
    shown = [p for p in status if p["name"].startswith("#status")]
    assert shown and shown[0]["name"].startswith("#status Нет связи") and inside(shown[0], *size)
    assert_fits(page.evaluate(GEOMETRY))  # the last board stays, whole, under the offline status
    assert axe_violations(page) == []
    page.context.set_offline(False)
    page.wait_for_function("() => document.body.dataset.state === 'live'")
    page.context.close()

    publish(app, "S2", [("T12-a", 20, 5, "BUS-7")], age_min=10)  # the worker stopped 10 minutes ago
    page = open_board(browser, f"{server}/display/S2?poll=1&lang=ru", size)
    page.wait_for_function("() => document.body.dataset.state === 'stale'")
    geometry = page.evaluate(GEOMETRY)
    shown = [p for p in geometry["leaves"] if p["name"].startswith("#status")]
    assert shown[0]["name"].startswith("#status Данные устарели") and inside(shown[0], *size)
    assert_fits(geometry)
    page.context.close()


def test_rows_and_lang_fix_the_board(app: Flask, feed_id: int, server: str, browser: Any) -> None:
    busy_s2(app, feed_id)
    page = open_board(browser, f"{server}/display/S2?poll=1&rotate=1&rows=3&lang=en", (1920, 1080))
    page.wait_for_function("() => document.querySelectorAll('#rows li').length === 3")
    geometry = page.evaluate(GEOMETRY)
    assert_fits(geometry)
    rows = geometry["rows"]
    assert geometry["list"]["bottom"] - rows[-1]["bottom"] < 3  # three rows share the whole board
    page.wait_for_timeout(2500)  # past two rotations: the language stays
    assert page.locator("html").get_attribute("lang") == "en" and page.locator("[data-label=route]").inner_text() \
        == "ROUTE"
    assert page.locator("#rows li").count() == 3
    page.context.close()

    page = open_board(browser, f"{server}/display/S2?poll=1&rotate=1&rows=0&lang=de", (1920, 1080))
    page.wait_for_function("() => document.body.dataset.lang === 'ru'")  # the default: rotating, kk first
    assert page.locator("#rows li").count() > 3  # rows=0 is no row count: sized from the screen
    page.context.close()


def test_headsigns_follow_the_board_language(app: Flask, feed_id: int, server: str, browser: Any) -> None:
    names = {"kk": "Республика сарайы", "en": "Palace of the Republic"}
    with get_db(app).session() as session:  # translations.txt by field_value, as the demo feed has them
        session.add_all(Translation(feed_version_id=feed_id, table_name="trips", field_name="trip_headsign",
                                    language=lang, translation=text, field_value="Дворец Республики")
                        for lang, text in names.items())
        session.commit()
    trips = add_s2_trips(app, feed_id, [("R12", "Дворец Республики"), ("R92", "Сайран")])
    publish(app, "S2", [(trips[0], 20, 2.5, "BUS-1"), (trips[1], 20, 6.5, "BUS-2")])
    for lang, first in [*names.items(), ("ru", "Дворец Республики")]:
        page = open_board(browser, f"{server}/display/S2?poll=1&lang={lang}", (1366, 768))
        page.wait_for_function("() => document.querySelectorAll('#rows li').length === 2")
        assert page.locator("#rows .headsign").all_inner_texts() == [first, "Сайран"]  # untranslated: the feed's
        page.context.close()


def test_clock_keeps_the_stops_time_zone(app: Flask, server: str, browser: Any) -> None:
    page = open_board(browser, f"{server}/display/S2?poll=1", (1366, 768), timezone_id="America/New_York")
    before = dt.datetime.now(ZoneInfo("Asia/Almaty"))
    page.wait_for_function("() => document.getElementById('clock').textContent !== '--:--'")
    after = dt.datetime.now(ZoneInfo("Asia/Almaty"))
    assert page.locator("#clock").inner_text() in {f"{before:%H:%M}", f"{after:%H:%M}"}
    browser_hour = page.evaluate("new Date().getHours()")
    assert browser_hour != before.hour or before.hour != after.hour  # the browser's own zone really differs
    page.context.close()


@needs_axe
def test_idle_board_dims_and_drifts(app: Flask, server: str, browser: Any) -> None:
    size = (1920, 1080)
    page = open_board(browser, f"{server}/display/S5?poll=1&idle=0&drift=1", size)  # S5: no service at all
    page.wait_for_function("() => document.body.hasAttribute('data-idle')")
    card = page.locator("#idle")
    places = set()
    for _ in range(4):
        page.wait_for_timeout(1000)
        place = card.bounding_box()
        assert inside({"left": place["x"], "top": place["y"], "right": place["x"] + place["width"],
                       "bottom": place["y"] + place["height"]}, *size)
        places.add((round(place["x"]), round(place["y"])))
    assert len(places) >= 3  # it keeps moving
    assert page.locator("#idle .idle-status").inner_text() != "" and page.locator("#rows").is_hidden()
    assert page.locator("#idle .idle-clock").inner_text() == page.locator("#clock").text_content()
    assert axe_violations(page) == []
    shot(page, "board-idle.png")
    page.context.close()

    publish(app, "S2", [("T12-a", 20, 3.5, "BUS-7")])
    page = open_board(browser, f"{server}/display/S2?poll=1&idle=0", size)  # rows: never idle
    page.locator("#rows li").first.wait_for()
    page.wait_for_timeout(1200)
    assert not page.evaluate("document.body.hasAttribute('data-idle')") and page.locator("#idle").is_hidden()
    page.context.close()


# --- route colours from real feeds ---------------------------------------------------------------------------


def luminance(rgb: tuple[int, ...]) -> float:
    channels = [c / 255 for c in rgb]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def hex_rgb(value: str) -> tuple[int, ...]:
    return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))


def feed_colours(shared_data: Path) -> list[tuple[str, str]]:
    """Every distinct (route_color, route_text_color) pair of the real feeds, the hardest to read first."""
    pairs = set()
    for archive in sorted(shared_data.glob("gtfs*/**/*.zip")):
        with zipfile.ZipFile(archive) as feed, feed.open("routes.txt") as raw:
            for route in csv.DictReader(io.TextIOWrapper(raw, "utf-8-sig")):
                colour, text = (route.get("route_color") or "").upper(), (route.get("route_text_color") or "").upper()
                if len(colour) == 6:
                    pairs.add((colour, text))
    return sorted(pairs, key=lambda p: contrast(hex_rgb(p[0]), hex_rgb(p[1] or "000000")))


@needs_axe
def test_every_route_badge_is_readable(app: Flask, feed_id: int, server: str, browser: Any,
                                       shared_data: Path) -> None:
    pairs = feed_colours(shared_data)[:6]
    assert contrast(hex_rgb(pairs[0][0]), hex_rgb(pairs[0][1] or "000000")) < 3  # the feeds do have unreadable ones
    add_routes(app, feed_id, [(f"RC{i}", f"{i + 1}0", colour, text or None) for i, (colour, text) in enumerate(pairs)])
    trips = add_s2_trips(app, feed_id, [(f"RC{i}", HEADSIGNS[i]) for i in range(len(pairs))])
    publish(app, "S2", [(trip, 20, 2.5 + 3 * i, f"BUS-{i}") for i, trip in enumerate(trips)])
    page = open_board(browser, f"{server}/display/S2?poll=5&rows={len(pairs)}", (1366, 768))
    page.wait_for_function(f"() => document.querySelectorAll('#rows li').length === {len(pairs)}")
    drawn = page.evaluate("""() => [...document.querySelectorAll('#rows .route')].map((b) => {
        const style = getComputedStyle(b); return [style.backgroundColor, style.color]; })""")
    colours = [tuple(tuple(int(n) for n in c[4:-1].split(", ")) for c in pair) for pair in drawn]
    assert sorted(background for background, _ in colours) == sorted(hex_rgb(c) for c, _ in pairs)
    assert min(contrast(background, text) for background, text in colours) >= 4.5
    assert axe_violations(page) == []
    page.context.close()
