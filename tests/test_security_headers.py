"""Security headers on every page and API answer (CSP without inline script, no framing, nosniff, referrer and
permissions policies), HSTS and Secure cookies in production only, and — in real Chromium — pages that still
work under the policy without a single violation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.datastructures import Headers

from app import create_app, get_db, get_redis
from app.config import load_config
from app.realtime.store import board_key
from app.web.i18n import COOKIE as LANGUAGE_COOKIE
from app.web.staff import COOKIE as STAFF_COOKIE
from tests.browser import live_server, needs_chromium
from tests.fixtures.accounts import PASSWORD, create_user, csrf
from tests.fixtures.boards import write_s2_board
from tests.worker_feed import add_worker_feed

PAGES = ["/", "/stops/S1", "/display/S2", "/card", "/staff/login", "/api/v1/docs", "/routes"]
RESOURCES = ["/api/v1/stops/S2/arrivals", "/api/v1/stops/S2/arrivals?limit=3", "/api/v1/openapi.json",
             "/api/v1/stops?q=abay", "/static/rider.js", "/api/v1/no-such-thing"]


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_common(headers: Headers) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    permissions = headers["Permissions-Policy"]
    assert "geolocation=(self)" in permissions and "camera=()" in permissions and "microphone=()" in permissions


@pytest.fixture
def demo(app: Flask) -> Flask:
    add_worker_feed(app)
    write_s2_board(app)  # a live board at S2: its poll is answered by BoardPolls, before Flask
    return app


@pytest.mark.parametrize("url", PAGES)
def test_pages_forbid_framing_and_inline_script(demo: Flask, client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == ["'none'"] and policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert_common(response.headers)
    assert "Strict-Transport-Security" not in response.headers  # development


@pytest.mark.parametrize("url", PAGES)
def test_pages_carry_no_inline_script(demo: Flask, client: FlaskClient, url: str) -> None:
    """Under ``script-src 'self'`` an inline script or handler would not run: there must be none."""
    html = client.get(url).get_data(as_text=True)
    for tag in html.split("<script")[1:]:
        opening = tag.split(">", 1)[0]
        assert "src=" in opening or 'type="application/json"' in opening, opening
    assert " onclick=" not in html and " onload=" not in html and "javascript:" not in html


@pytest.mark.parametrize("url", RESOURCES)
def test_api_answers_allow_nothing(demo: Flask, client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code in (200, 404), url
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert_common(response.headers)


def test_the_display_poll_before_flask_has_the_same_headers(demo: Flask, client: FlaskClient) -> None:
    assert get_redis(demo).exists(board_key("S2"))
    fast = client.get("/api/v1/stops/S2/arrivals")
    assert fast.headers["X-Qala-Source"] == "board"
    slow = client.get("/api/v1/stops/S2/arrivals?window=90")  # another parameter: Flask answers
    security = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
                "Permissions-Policy", "Cross-Origin-Opener-Policy")
    assert [fast.headers[name] for name in security] == [slow.headers[name] for name in security]
    again = client.get("/api/v1/stops/S2/arrivals", headers={"If-None-Match": fast.headers["ETag"]})
    assert again.status_code == 304 and again.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in again.headers  # a 304 keeps the cached answer's policy


def production_app(database_url: str, redis_settings: dict[str, Any], tmp_path: Path) -> Flask:
    config = load_config({"QALA_ENV": "production", "SECRET_KEY": "s" * 64, "CARD_HASH_KEY": "c" * 32,
                          "QALA_PAYMENT_PROVIDER": "none", "DATABASE_URL": database_url}, instance_path=tmp_path)
    return create_app({**config, "TESTING": True, **redis_settings})


@pytest.fixture
def production(app: Flask, database_url: str, redis_settings: dict[str, Any], tmp_path: Path) -> Iterator[Flask]:
    """A production-mode app on the test database (``app`` wipes the tables afterwards)."""
    prod = production_app(database_url, redis_settings, tmp_path)
    yield prod
    get_db(prod).engine.dispose()


def test_production_sends_hsts_and_secure_cookies(production: Flask) -> None:
    assert production.config["ENV"] == "production" and production.config["SESSION_COOKIE_SECURE"] is True
    client = production.test_client()
    assert client.get("/api/v1/openapi.json").headers["Strict-Transport-Security"].startswith("max-age=31536000")
    create_user(production.test_cli_runner(), "ana@qala.kz", "analyst")
    login_page = client.get("/staff/login", base_url="https://qala.example")
    assert login_page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    cookies = login_page.headers.getlist("Set-Cookie")  # the session cookie holding the CSRF token
    logged_in = client.post("/staff/login", base_url="https://qala.example", data={
        "csrf_token": csrf(login_page.get_data(as_text=True)), "login": "ana@qala.kz", "password": PASSWORD})
    assert logged_in.status_code == 302
    cookies += logged_in.headers.getlist("Set-Cookie")
    cookies += client.get("/?lang=kk", base_url="https://qala.example").headers.getlist("Set-Cookie")
    dashboard = client.get("/staff/", base_url="https://qala.example").get_data(as_text=True)
    logged_out = client.post("/staff/logout", base_url="https://qala.example", data={"csrf_token": csrf(dashboard)})
    assert logged_out.status_code == 302
    cookies += logged_out.headers.getlist("Set-Cookie")  # the staff cookie, deleted: with the same attributes
    assert {cookie.split("=", 1)[0] for cookie in cookies} == {"session", STAFF_COOKIE, LANGUAGE_COOKIE}
    for cookie in cookies:
        attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
        assert "secure" in attributes and "samesite=lax" in attributes and "httponly" in attributes, cookie


def test_development_cookies_are_not_secure_only(demo: Flask, client: FlaskClient, runner: FlaskCliRunner) -> None:
    """Development runs over plain HTTP: Secure cookies would never come back (and there is no HSTS)."""
    cookies = client.get("/?lang=kk").headers.getlist("Set-Cookie")
    assert cookies and all("samesite=lax" in c.lower() and "secure" not in c.lower() for c in cookies)
    assert "Strict-Transport-Security" not in client.get("/api/v1/openapi.json").headers


@pytest.fixture
def server(demo: Flask) -> Iterator[str]:
    with live_server(demo) as url:
        yield url


WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile));
"""


@needs_chromium
def test_pages_work_in_chromium_without_a_policy_violation(demo: Flask, server: str, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720}, timezone_id="Asia/Almaty",
                                  locale="en-US", geolocation={"latitude": 43.2389, "longitude": 76.957},
                                  permissions=["geolocation"])
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.set_default_timeout(8000)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    try:
        checks = {
            "/": "#map[data-ready=true]",  # the network map, drawn by map.js from JSON it fetched
            "/stops/S1": "#arrivals tr",  # rows refreshed by stop.js
            "/display/S2?poll=1": "#rows li",  # the board, rendered by display.js from the poll
            "/staff/login": "form input[name=csrf_token]",
        }
        for url, ready in checks.items():
            page.goto(server + url)
            page.wait_for_selector(ready, state="attached")
            page.wait_for_timeout(300)  # polls and late scripts
            violations = page.evaluate("window.__csp")
            assert violations == [], (url, violations)
        page.goto(server + "/display/S2?poll=1")
        page.wait_for_function("() => document.body.dataset.state === 'live'")  # a function: eval'd once (CSP)
        assert page.evaluate("window.__csp") == []
    finally:
        context.close()
    blocked = [line for line in console if "Content Security Policy" in line or "Refused to" in line]
    assert blocked == [], blocked
