"""Rider pages through the Flask client: status, language choice, names from the feed's translations, live
arrivals and vehicles rendered on the server, friendly 404 pages, and catalogs that are compiled."""

from __future__ import annotations

import datetime as dt
import gettext
import re
from pathlib import Path

import numpy as np
import pytest
from babel.messages import pofile
from flask import Flask
from flask.testing import FlaskClient

from app import create_app, get_db
from app.schedule.importer import import_feed
from app.web import rider_data
from app.web.colors import badge_style, contrast_ratio
from app.web.i18n import LANGUAGES, TRANSLATIONS_DIR
from app.web.rider import format_money
from app.web.rider_data import thin_line
from app.web.rider_vehicles import STALE_AFTER_S, Standing, is_parked, place_vehicles, read_vehicle_snapshot
from tests.api_feed import SHAPE_SH12, STOPS, add_demo_feed
from tests.feeds import write_feed
from tests.fixtures.rider_live import BETWEEN_S1_AND_S2, publish_live, translate_headsign


@pytest.fixture
def demo(app: Flask) -> Flask:
    add_demo_feed(app)
    return app


def page(client: FlaskClient, url: str, **headers: str) -> str:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_home_without_a_feed_says_how_to_load_one(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "qala gtfs import" in response.get_data(as_text=True)


def test_home_with_a_feed_names_it_and_links_the_api(client: FlaskClient, tmp_path: Path) -> None:
    import_feed(get_db(client.application), write_feed(tmp_path / "f"), canonical=False, label="tiny-almaty")
    text = page(client, "/")
    assert "tiny-almaty" in text and "Asia/Almaty" in text
    assert 'href="/api/v1/docs"' in text and 'name="viewport"' in text
    for name in ("home.js", "rider.js", "map.js", "stop.js", "route.js", "card.js", "qala.css"):
        assert client.get(f"/static/{name}").status_code == 200, name


@pytest.mark.parametrize(("headers", "query", "lang", "word"), [
    ({"Accept-Language": "en-US,en;q=0.9"}, "", "en", "Find a stop"),
    ({"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}, "", "ru", "Найти остановку"),
    ({"Accept-Language": "kk-KZ,kk;q=0.9"}, "", "kk", "Аялдаманы табу"),
    ({"Accept-Language": "de-DE"}, "", "ru", "Найти остановку"),  # nothing we speak: Russian
    ({"Accept-Language": "en"}, "?lang=kk", "kk", "Аялдаманы табу"),  # an explicit choice wins
    ({"Accept-Language": "en"}, "?lang=fr", "en", "Find a stop"),  # an unknown one is ignored
])
def test_language_comes_from_lang_then_cookie_then_accept_language(
        demo: Flask, client: FlaskClient, headers: dict[str, str], query: str, lang: str, word: str) -> None:
    text = page(client, "/" + query, **headers)
    assert f'<html lang="{lang}">' in text and word in text


def test_home_searches_without_javascript(demo: Flask, client: FlaskClient) -> None:
    text = page(client, "/?q=Seifullin&lang=en")
    assert 'href="/stops/S3"' in text and "Seifullin St" in text and 'href="/stops/S1"' not in text
    assert "No stops found." in page(client, "/?q=zzzz&lang=en")
    assert "No stops found." in page(client, "/?q=--&lang=en")  # no letters: nothing, not an error


def test_a_chosen_language_is_remembered_and_the_switcher_keeps_the_page(demo: Flask, client: FlaskClient) -> None:
    first = client.get("/stops/S1?lang=kk", headers={"Accept-Language": "en"})
    assert "qala_lang=kk" in first.headers["Set-Cookie"] and "Accept-Language" in first.headers["Vary"]
    later = page(client, "/routes", **{"Accept-Language": "en"})
    assert '<html lang="kk">' in later and "Бағыттар" in later
    assert 'href="/routes?lang=ru"' in later and 'href="/routes?lang=en"' in later


@pytest.mark.parametrize(("lang", "name", "heading"), [
    ("en", "Abay — Dostyk", "Next buses"),
    ("kk", "Абай — Достық", "Жақын автобустар"),
    ("ru", "Абая — Достык", "Ближайшие автобусы"),  # the feed's own name: it is written in Russian
])
def test_stop_page_names_the_stop_in_the_chosen_language(demo: Flask, client: FlaskClient, lang: str, name: str,
                                                         heading: str) -> None:
    text = page(client, f"/stops/S1?lang={lang}")
    assert f'<h1 id="stop-name">{name}</h1>' in text and heading in text
    assert 'href="/routes/R12"' in text  # the routes calling there


def test_stop_page_renders_live_and_scheduled_rows(demo: Flask, client: FlaskClient) -> None:
    publish_live(demo, "S1", [("T12-a", 10, 6.5, "BUS-7")])
    translate_headsign(demo, "Сейфуллина", "en", "Seifullin terminus")
    text = page(client, "/stops/S1?lang=en")
    assert '<tr class="live">' in text and "6 min" in text and "Live predictions" in text
    assert "<td>Seifullin terminus</td>" in text and '"Сейфуллина": "Seifullin terminus"' in text  # and for the script
    assert "<td>Сейфуллина</td>" in page(client, "/stops/S1?lang=kk")  # no Kazakh headsign: the feed's own
    assert page(client, "/stops/S3?lang=en").count('<tr class="live">') == 0  # no board: timetable only


def test_unknown_stop_and_route_get_a_friendly_page(demo: Flask, client: FlaskClient) -> None:
    for url, words in (("/stops/NOPE?lang=ru", "Остановки NOPE нет"), ("/routes/R0?lang=en", "There is no route R0")):
        response = client.get(url)
        text = response.get_data(as_text=True)
        assert response.status_code == 404 and response.mimetype == "text/html"
        assert words in text and 'href="/"' in text
    echoed = client.get("/stops/%3Cb%3Ex?lang=en").get_data(as_text=True)
    assert "There is no stop &lt;b&gt;x." in echoed and "<b>x" not in echoed  # the id is shown, escaped


def test_pages_without_a_schedule_say_so(client: FlaskClient) -> None:
    response = client.get("/stops/S1?lang=en")
    assert response.status_code == 503 and "qala gtfs import" in response.get_data(as_text=True)


def test_route_page_lists_stops_per_direction_and_says_when_no_vehicle_runs(demo: Flask, client: FlaskClient) -> None:
    text = page(client, "/routes/R12?lang=en")  # no headsign translations: the last stop's name
    assert text.count('class="direction"') == 2 and "Towards Seifullin St" in text and "Towards Abay — Dostyk" in text
    translate_headsign(demo, "Достык", "en", "Dostyk terminus")
    client.application.extensions.pop("rider_cache", None)  # a new feed version would start a new cache
    assert "Towards Dostyk terminus" in page(client, "/routes/R12?lang=en")
    assert 'id="no-vehicles" class="notice" role="status" >' in text  # shown, not hidden


# 30 m north of the middle of route 12's first shape segment (S1 and on towards S2): a GPS point off the street
OFF_THE_LINE = ((SHAPE_SH12[0][0] + SHAPE_SH12[1][0]) / 2 + 0.00027, (SHAPE_SH12[0][1] + SHAPE_SH12[1][1]) / 2)


def test_route_page_places_live_vehicles_on_their_line_without_fleet_numbers(demo: Flask, client: FlaskClient) -> None:
    lat, lon = OFF_THE_LINE
    publish_live(demo, "S2", [("T12-a", 20, 2.0, "BUS-7")], vehicles=[("BUS-7", "T12-a", lat, lon),
                                                                     ("BUS-9", "T92-a", 43.25, 76.93)])
    text = page(client, "/routes/R12?lang=en")
    assert "BUS-7" not in text and "BUS-9" not in text  # riders never see fleet numbers
    assert "next: Абай даңғылы — Фурманов" in text and "2 min" in text  # S2 is next, predicted in 2 minutes
    assert text.count('class="vehicle"') == 1  # only this route's vehicles
    assert '<li data-index="1" class="bus-approaching">' in text  # the stop list marks where the bus heads
    body = client.get("/rider/routes/R12/vehicles.json").get_json()
    [bus] = body["vehicles"]
    assert "vehicle_id" not in bus and "trip_id" not in bus
    where = (bus["direction_id"], bus["after_stop"], bus["next_stop"], bus["at_stop"], bus["minutes"])
    assert where == (0, 0, 1, None, 2)
    assert bus["headsign"] == "Seifullin St" and 0 < bus["fraction"] < 0.5 and body["snapshot_at"] is not None
    # snapped onto the shape's first segment, 30 m from where the GPS put it
    (lat1, lon1), (lat2, lon2) = SHAPE_SH12[0], SHAPE_SH12[1]
    share = (bus["lon"] - lon1) / (lon2 - lon1)
    assert 0 < share < 1 and abs(bus["lat"] - (lat1 + share * (lat2 - lat1))) < 2e-6
    assert abs(bus["lat"] - lat) > 2e-4
    assert 270 < bus["bearing"] < 290  # heading west along the line


def test_route_page_leaves_parked_buses_out(demo: Flask, client: FlaskClient) -> None:
    s2, s3 = STOPS[1], STOPS[2]
    publish_live(demo, "S2", [], vehicles=[("BUS-1", "T12-a", s3.lat, s3.lon),  # at the last stop: trip over
                                           ("BUS-2", "T12-b", s2.lat, s2.lon)])  # at S2, mid-route: a real bus
    body = client.get("/rider/routes/R12/vehicles.json?lang=en").get_json()
    [bus] = body["vehicles"]
    assert (bus["at_stop"], bus["next_stop"], bus["next_stop_name"]) == (1, 2, "Seifullin St")
    text = page(client, "/routes/R12?lang=en")
    assert text.count('class="vehicle"') == 1 and '<li data-index="1" class="bus-here">' in text


def test_network_vehicles_carry_their_route_badge_and_leave_parked_buses_out(demo: Flask, client: FlaskClient) -> None:
    lat, lon = OFF_THE_LINE
    s3 = STOPS[2]
    publish_live(demo, "S2", [], vehicles=[("BUS-7", "T12-a", lat, lon), ("BUS-1", "T12-b", s3.lat, s3.lon)])
    body = client.get("/rider/vehicles.json?lang=en").get_json()
    [bus] = body["vehicles"]
    assert bus["route"] == {"short_name": "12", "color": "E4002B", "text_color": "FFFFFF"}
    assert (bus["direction_id"], bus["next_stop_name"]) == (0, "Абай даңғылы — Фурманов")
    assert "BUS" not in str(body) and body["snapshot_at"].endswith("+00:00")


@pytest.mark.parametrize(("along", "speed", "clock", "parked"), [
    (20.0, None, 7 * 3600.0, True),  # at the first stop an hour before its 08:00 trip: a long layover
    (20.0, None, 8 * 3600.0 - 300, False),  # five minutes before: about to leave
    (20.0, 0.0, 9 * 3600.0, True),  # still at the first stop long after its trip should have ended
    (20.0, 8.0, 7 * 3600.0, False),  # moving: on its way whatever the timetable says
    (990.0, None, 8 * 3600.0 + 200, True),  # at the last stop: its trip is over
    (500.0, 0.0, 9 * 3600.0, False),  # mid-route, standing: in traffic, not parked
    (20.0, None, None, False),  # no service day known: not judged
])
def test_parked_means_standing_at_a_terminal_with_no_trip_to_run(along: float, speed: float | None,
                                                                  clock: float | None, parked: bool) -> None:
    standing = Standing(along_m=along, first_stop_m=0.0, last_stop_m=1000.0, speed_mps=speed, service_clock_s=clock,
                        start_s=8 * 3600, end_s=8 * 3600 + 600)
    assert is_parked(standing) is parked


def test_a_vehicle_not_heard_from_for_five_minutes_is_not_live(demo: Flask, client: FlaskClient) -> None:
    lat, lon = BETWEEN_S1_AND_S2
    publish_live(demo, "S2", [], vehicles=[("BUS-7", "T12-a", lat, lon)])
    snapshot = read_vehicle_snapshot(demo)
    assert snapshot is not None
    with get_db(demo).session() as session:
        route = rider_data.route_page(session, "R12", "en")
    heard = dt.datetime.fromtimestamp(snapshot.timestamp, dt.UTC)
    assert len(place_vehicles(snapshot.body, route, heard + dt.timedelta(seconds=STALE_AFTER_S))) == 1
    assert place_vehicles(snapshot.body, route, heard + dt.timedelta(seconds=STALE_AFTER_S + 1)) == []


def test_pages_keep_working_when_redis_is_unreachable(demo: Flask, database_url: str) -> None:
    """No Redis: arrivals come from the timetable and the route page says no vehicle is live — never a 5xx."""
    cut_off = create_app({"TESTING": True, "DATABASE_URL": database_url, "REDIS_URL": "redis://127.0.0.1:1/0"})
    client = cut_off.test_client()
    try:
        assert "Timetable times" in page(client, "/stops/S1?lang=en")
        assert 'id="no-vehicles" class="notice" role="status" >' in page(client, "/routes/R12?lang=en")
        assert client.get("/rider/routes/R12/vehicles.json").get_json()["vehicles"] == []
    finally:
        get_db(cut_off).engine.dispose()


def test_vehicles_of_an_unknown_route_are_a_json_404(demo: Flask, client: FlaskClient) -> None:
    response = client.get("/rider/routes/R0/vehicles.json")
    assert response.status_code == 404 and response.get_json()["error"]["field"] == "route_id"


def test_network_map_has_shapes_and_named_stops(demo: Flask, client: FlaskClient) -> None:
    data = client.get("/rider/map.json?lang=en").get_json()
    routes = {r["short_name"]: r for r in data["routes"]}
    # route 92 has no shape here (the importer draws one for every real feed), so there is no line to draw
    assert set(routes) == {"12"} and routes["12"]["color"] == "E4002B"
    assert routes["12"]["lines"][0][0] == [76.957, 43.2389]
    names = {s["stop_id"]: s["name"] for s in data["stops"]}
    assert names["S1"] == "Abay — Dostyk" and names["S3"] == "Seifullin St" and "ST" not in names  # no stations
    assert client.get("/rider/map.json?lang=kk").get_json()["stops"][0]["name"] == "Абай — Достық"


def test_card_page_has_labelled_forms(demo: Flask, client: FlaskClient) -> None:
    text = page(client, "/card?lang=en")
    for field in ("card-number", "card-code", "login", "password"):
        assert f'<label for="{field}">' in text and f'id="{field}"' in text


def test_compiled_catalogs_match_their_sources() -> None:
    """A .po edited without recompiling would serve old text: every translation must be in the .mo too."""
    for lang in LANGUAGES:
        po_path = TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po"
        if lang == "en":
            assert not po_path.exists()  # English is the source language
            continue
        with po_path.open("rb") as f:
            catalog = pofile.read_po(f, locale=lang)
        with (po_path.with_suffix(".mo")).open("rb") as f:
            compiled = gettext.GNUTranslations(f)
        messages = [m for m in catalog if m.id and not isinstance(m.id, tuple)]
        assert messages and all(m.string for m in messages), f"{lang}: untranslated messages"
        stale = [m.id for m in messages if compiled.gettext(str(m.id)) != m.string]
        assert not stale, f"{lang}: recompile with pybabel compile -d app/translations ({stale[:3]})"


def test_money_and_map_lines_are_compact() -> None:
    assert (format_money(123456), format_money(-12000), format_money(5)) == ("1\u202f234.56", "−120", "0.05")
    lon = np.linspace(76.90, 76.91, 200)  # ≈ 810 m in 200 points
    lat = np.full(200, 43.24)
    line = thin_line(lon, lat)
    assert line[0] == [76.9, 43.24] and line[-1] == [76.91, 43.24] and 25 <= len(line) <= 40


def _css_colours() -> dict[str, str]:
    css = (Path(__file__).resolve().parent.parent / "app" / "web" / "static" / "qala.css").read_text()
    return {name: value.upper() for name, value in re.findall(r"--([a-z]+):\s*#([0-9a-fA-F]{6})", css)}


def test_page_colours_meet_wcag_aa() -> None:
    """Text pairs the pages use, at the 4.5:1 AA contrast for body text."""
    c = {**_css_colours(), "white": "FFFFFF"}
    pairs = [("ink", "paper"), ("muted", "paper"), ("muted", "white"), ("white", "accent"), ("accent", "white"),
             ("live", "white"), ("white", "live"), ("bad", "white"), ("ink", "warn")]
    low = {(a, b): round(contrast_ratio(c[a], c[b]), 2) for a, b in pairs if contrast_ratio(c[a], c[b]) < 4.5}
    assert not low, low


@pytest.mark.parametrize(("color", "text", "expected"), [
    ("E4002B", "FFFFFF", "background:#E4002B;color:#FFFFFF"),  # the feed's pair is legible: kept
    ("FFD100", "FFFFFF", "background:#FFD100;color:#17202C"),  # white on yellow is not: dark text instead
    ("FFD100", None, "background:#FFD100;color:#17202C"),
    ("0057B8", None, "background:#0057B8;color:#FFFFFF"),
    ("E64A19", "FFFFFF", "background:#CF4216;color:#FFFFFF"),  # neither text reaches 4.5: a shade darker, same hue
    ("nonsense", "zz", "background:#00838F;color:#FFFFFF"),
])
def test_route_badges_keep_their_number_legible(color: str, text: str | None, expected: str) -> None:
    assert badge_style(color, text) == expected
    background, ink = expected.replace("background:#", "").replace("color:#", "").split(";")
    assert contrast_ratio(background, ink) >= 4.5
