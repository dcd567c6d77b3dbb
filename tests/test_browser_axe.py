"""axe-core over every page a rider, a stop board or a member of staff opens, in each language, in real Chromium.

The pages are served from the authored demo feed (``gtfs_data/almaty``: 20 routes with their own colours, 300
stops, kk/ru/en names), so the colour contrast of every route badge the feed can produce is checked where the pages
draw it. axe-core comes from npm (``package.json``); violations of impact serious or critical fail the test, with
axe's rule id, help text and the offending elements in the message.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app import get_db
from app.models import Route, Stop
from app.schedule.importer import import_feed
from tests.browser import SHOTS, axe_violations, live_server, needs_axe, needs_chromium

pytestmark = [needs_chromium, needs_axe]
DEMO_FEED = Path(__file__).resolve().parent.parent / "gtfs_data" / "almaty"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1366, "height": 768}}
BOARD = {"viewport": {"width": 1920, "height": 1080}}
LANGUAGES = ("kk", "ru", "en")


@pytest.fixture
def demo_server(app: Flask) -> Iterator[tuple[str, dict[str, str]]]:
    """The app on a live port with the demo feed imported; yields its URL and a route and a stop to open."""
    import_feed(get_db(app), DEMO_FEED, label="almaty", canonical=False)
    with get_db(app).session() as session:
        some = {"route": session.scalars(select(Route.route_id).order_by(Route.route_id)).first() or "",
                "stop": session.scalars(select(Stop.stop_id).order_by(Stop.stop_id)).first() or ""}
    with live_server(app) as url:
        yield url, some


def _pages(some: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    rider = ["/", "/routes", f"/routes/{some['route']}", f"/stops/{some['stop']}", "/card", "/stops/no-such-stop"]
    return ([(path, PHONE) for path in rider] + [(path, DESKTOP) for path in rider]
            + [(f"/display/{some['stop']}", BOARD), ("/staff/login", DESKTOP), ("/api/v1/docs", DESKTOP)])


def test_every_page_has_no_serious_or_critical_axe_violation(browser: Any,
                                                             demo_server: tuple[str, dict[str, str]]) -> None:
    base, some = demo_server
    found: dict[str, list[dict[str, Any]]] = {}
    for lang, (path, size) in ((lang, page) for lang in LANGUAGES for page in _pages(some)):
        context = browser.new_context(**size, locale={"kk": "kk-KZ", "ru": "ru-RU", "en": "en-US"}[lang],
                                      timezone_id="Asia/Almaty")
        page = context.new_page()
        joiner = "&" if "?" in path else "?"
        page.goto(f"{base}{path}{joiner}lang={lang}", wait_until="networkidle")
        violations = axe_violations(page)
        if SHOTS and path == "/routes" and size is PHONE:  # the other rider pages' shots come from their own tests
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SHOTS) / f"rider-routes-{lang}.png"))
        if violations:
            found[f"{path} ({lang}) at {size['viewport']['width']} px"] = violations
        context.close()
    assert found == {}, "\n".join(f"{where}: {v['id']} ({v['impact']}: {v['help']}) at {v['targets'][:3]}"
                                   for where, violations in found.items() for v in violations)


def test_the_routes_page_draws_every_route_badge_of_the_feed(browser: Any,
                                                             demo_server: tuple[str, dict[str, str]]) -> None:
    """The axe run above covers the badges only if the routes page really draws one per route of the feed."""
    base, _ = demo_server
    routes = sum(1 for _ in (DEMO_FEED / "routes.txt").read_text(encoding="utf-8").splitlines()[1:] if _.strip())
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(f"{base}/routes?lang=ru", wait_until="networkidle")
    assert page.locator(".route").count() >= routes
    context.close()
