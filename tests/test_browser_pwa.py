"""The installable rider app in real headless Chromium: Chromium's own installability checks, the service worker's
offline board, saved stops and the "my bus is N minutes away" alert, with live boards written by the real worker
cycle (tests/fixtures/rider_live.py).

Set ``QALA_SCREENSHOTS=docs`` to also write ``docs/rider-stop-<lang>.png`` (with the alert) and
``docs/rider-home-<lang>.png`` (with saved stops).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from tests.api_feed import add_demo_feed
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, axe_violations, live_server, needs_axe, needs_chromium
from tests.fixtures.rider_live import publish_live

pytestmark = [needs_chromium, needs_axe]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
WAIT_MS = 10000
ALMATY = ZoneInfo("Asia/Almaty")
# what Chromium reports about the browser, not the app: playwright's contexts are off the record
NOT_OURS = {"in-incognito"}
WORKER_READY = "async () => { await navigator.serviceWorker.ready; return !!navigator.serviceWorker.controller; }"
KEPT_URLS = "async () => (await Promise.all((await caches.keys()).map(async (name) => " \
            "(await (await caches.open(name)).keys()).map((r) => r.url)))).flat()"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as started:
        yield started


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    add_demo_feed(app)
    with live_server(app) as url:
        yield url


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    opened = browser.new_context(**PHONE, timezone_id="Asia/Almaty", locale="en-US")
    opened.set_default_timeout(WAIT_MS)
    yield opened
    opened.close()


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), full_page=False)


def controlled(page: Any) -> None:
    """Wait until the service worker is active, then reload so the page is fetched (and kept) through it."""
    page.wait_for_function(WORKER_READY)
    page.reload()


def no_serious_violations(page: Any) -> None:
    found = axe_violations(page)
    assert found == [], found


def test_chromium_finds_the_app_installable(playwright: Any, server: str, tmp_path: Path) -> None:
    # a profile on disk, not an off-the-record context: nothing but the app stands between it and installing
    context = playwright.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                            args=CHROMIUM_ARGS, **PHONE)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(server + "/stops/S1?lang=kk")
        controlled(page)
        cdp = context.new_cdp_session(page)
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["url"].endswith("/manifest.webmanifest?lang=kk") and manifest["errors"] == []
        assert '"name":"Qala: жақын автобустар"' in manifest["data"]
        errors = {e["errorId"] for e in cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]}
        assert errors == set()
    finally:
        context.close()


def test_an_off_the_record_browser_is_the_only_thing_chromium_objects_to(context: Any, server: str) -> None:
    page = context.new_page()
    page.goto(server + "/?lang=en")
    controlled(page)
    cdp = context.new_cdp_session(page)
    assert cdp.send("Page.getAppManifest")["errors"] == []
    errors = {e["errorId"] for e in cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]}
    assert errors - NOT_OURS == set()


def test_offline_the_stop_page_shows_its_last_board_marked_old(app: Flask, server: str, context: Any) -> None:
    publish_live(app, "S1", [("T12-a", 10, 6.5, "BUS-7")])
    page = context.new_page()
    page.goto(server + "/stops/S1?lang=ru&refresh=1")
    controlled(page)
    page.wait_for_function(f"async () => ({KEPT_URLS})().then((urls) => urls.some((u) => u.includes('/arrivals')))")
    generated_at = page.evaluate("fetch('/api/v1/stops/S1/arrivals?limit=20').then((r) => r.json())")["generated_at"]
    # answers with card or account data pass the worker by: none of them is ever kept
    page.evaluate("Promise.all(['/api/v1/cards/1', '/api/v1/cards/1/history', '/api/v1/me/cards']"
                  ".map((u) => fetch(u).then((r) => r.status)))")
    assert not [u for u in page.evaluate(KEPT_URLS) if "/cards" in u or "/me/" in u]

    context.set_offline(True)
    page.reload()
    old = page.locator("#board-old")
    old.wait_for(state="visible")
    assert old.inner_text() == f"Данные на {generated_at[11:16]} — нет связи"
    assert page.locator("#board").get_attribute("data-page") == "offline"
    page.wait_for_function("() => document.getElementById('board').dataset.state === 'old'")
    row = page.locator('#arrivals tr[data-trip^="T12-a|"]')
    assert row.locator(".route").inner_text() == "12" and row.locator(".minutes").inner_text() in ("5 мин", "6 мин")
    assert page.locator("#bus-alert").is_hidden()
    no_serious_violations(page)
    shot(page, "rider-stop-offline.png")

    context.set_offline(False)  # back online: the next answer is fresh and the mark goes
    page.wait_for_function("() => document.getElementById('board').dataset.state === 'fresh'")
    assert old.is_hidden()


def test_a_saved_stop_is_listed_on_home_with_its_next_buses(app: Flask, server: str, context: Any) -> None:
    publish_live(app, "S1", [("T12-a", 10, 6.5, "BUS-7")])
    page = context.new_page()
    page.goto(server + "/?lang=en")
    assert page.locator("#my-stops").is_hidden()  # nothing saved yet
    for stop in ("S1", "S3"):
        page.goto(f"{server}/stops/{stop}?lang=en")
        star = page.locator("#save-stop")
        assert star.get_attribute("aria-pressed") == "false"
        star.click()
        assert star.get_attribute("aria-pressed") == "true"

    expected = {"en": ["Seifullin St", "Abay — Dostyk"], "ru": ["Сейфуллина", "Абая — Достык"],
                "kk": ["Сейфуллин", "Абай — Достық"]}
    for lang, names in expected.items():
        page.goto(f"{server}/?lang={lang}")
        page.wait_for_function("() => [...document.querySelectorAll('#my-stops-list li')]"
                               ".every((li) => li.dataset.loaded === 'true')")
        assert page.locator("#my-stops-list .stop-name").all_inner_texts() == names  # newest first
        s1 = page.locator('#my-stops-list li[data-stop-id="S1"] .next-bus').first
        assert s1.locator(".route").inner_text() == "12" and s1.inner_text().endswith(("6 мин", "6 min"))
        no_serious_violations(page)
        shot(page, f"rider-home-{lang}.png")

    page.goto(server + "/stops/S3?lang=en")
    page.click("#save-stop")  # forgotten again
    page.goto(server + "/?lang=en")
    page.locator("#my-stops-list li").first.wait_for()
    assert page.locator("#my-stops-list .stop-name").all_inner_texts() == ["Abay — Dostyk"]

    # without a connection home still lists them, each with the buses last seen, marked as old
    page.wait_for_function(WORKER_READY)
    page.reload()  # through the worker, which keeps the page and the answers
    page.locator('#my-stops-list li[data-loaded="true"]').wait_for()
    context.set_offline(True)
    page.reload()
    old = page.locator('#my-stops-list li[data-stop-id="S1"] .old')
    old.wait_for()
    assert old.inner_text().startswith("As of ") and old.inner_text().endswith(" — no connection")
    assert page.locator('#my-stops-list li[data-stop-id="S1"] .next-bus .route').inner_text() == "12"


def alert_shown(page: Any) -> str:
    page.locator("#bus-alert").wait_for(state="visible")
    return str(page.locator("#bus-alert-text").inner_text())


def test_the_alert_follows_the_chosen_bus_and_clears_when_it_has_passed(app: Flask, server: str,
                                                                         context: Any) -> None:
    day = dt.datetime.now(ALMATY).date().isoformat()
    context.grant_permissions(["notifications"])
    # vibration cannot be felt here: record what the page asks of it
    context.add_init_script("window.vibrations = []; navigator.vibrate = (p) => { vibrations.push(p); return true; };")
    publish_live(app, "S1", [("T12-a", 10, 9.5, "BUS-7"), ("T12-b", 10, 12.5, "BUS-8")])
    page = context.new_page()
    page.goto(server + "/stops/S1?lang=en&refresh=1")
    page.wait_for_function(WORKER_READY)
    page.select_option("#alert-trip", f"T12-a|{day}")
    page.select_option("#alert-minutes", "5")
    page.click("#alert-form button[type=submit]")
    assert page.locator("#alert-status").inner_text() == "We will tell you when route 12 is 5 min away."

    # the route's other bus comes within 5 minutes first: not the chosen one, so no alert
    publish_live(app, "S1", [("T12-b", 10, 3.5, "BUS-8"), ("T12-a", 10, 8.5, "BUS-7")])
    page.wait_for_function("() => document.querySelector('#arrivals tr[data-trip^=\"T12-b|\"] .minutes')"
                           "?.textContent === '3 min'")
    assert page.locator("#bus-alert").is_hidden() and page.evaluate("vibrations.length") == 0

    publish_live(app, "S1", [("T12-b", 10, 1.5, "BUS-8"), ("T12-a", 10, 4.5, "BUS-7")])
    headsign = page.locator('#arrivals tr[data-trip^="T12-a|"] td').nth(1).inner_text()
    assert alert_shown(page) == f"Route 12 to {headsign} is 4 min away!"
    assert page.evaluate("vibrations.length") == 1
    page.wait_for_function("async () => (await (await navigator.serviceWorker.ready).getNotifications()).length")
    titles = page.evaluate("async () => (await (await navigator.serviceWorker.ready).getNotifications())"
                           ".map((n) => [n.title, n.body])")
    assert titles == [["Your bus is near", f"Route 12 to {headsign} is 4 min away!"]]
    no_serious_violations(page)
    shot(page, "rider-stop-en.png")

    # the alert survives a language switch, in the new language, without setting the phone off again
    for lang, words in (("ru", "прибудет через 4 мин"), ("kk", "4 минуттан кейін келеді")):
        page.click(f"#langs a[data-lang={lang}]")
        page.wait_for_url(f"**lang={lang}")
        assert words in alert_shown(page)
        assert page.evaluate("vibrations.length") == 0  # this page's own record
        no_serious_violations(page)
        shot(page, f"rider-stop-{lang}.png")

    publish_live(app, "S1", [("T12-b", 10, 0.5, "BUS-8")])  # the chosen bus has left the stop
    page.locator("#bus-alert").wait_for(state="hidden")
    assert page.locator("#alert-status").inner_text() == "12 автобусы аялдамадан кетті; ескерту өшірілді."
    assert page.evaluate("sessionStorage.length") == 0
