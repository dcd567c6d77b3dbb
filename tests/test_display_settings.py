"""The board page's settings as ``app/web/display.py`` renders them: ``?rows=`` and ``?lang=`` for fixed
installations (a bad value is the default, never a broken page), the idle and drift timings, and the clock's zone."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from app import get_db
from app.models import FeedVersion, Stop
from app.schedule.importer import import_feed
from tests.api_feed import add_demo_feed

DEMO_FEED = Path(__file__).resolve().parent.parent / "gtfs_data" / "almaty"


@pytest.fixture
def feed(app: Flask) -> int:
    return add_demo_feed(app)


def settings_of(page: TestResponse) -> dict[str, Any]:
    assert page.status_code == 200
    settings = re.search(r'<script id="settings" type="application/json">(.*?)</script>', page.get_data(as_text=True))
    assert settings is not None
    parsed: dict[str, Any] = json.loads(settings[1])
    return parsed


def board_page(client: FlaskClient, query: str) -> tuple[str, dict[str, Any]]:
    page = client.get(f"/display/S2?{query}")
    return page.get_data(as_text=True), settings_of(page)


@pytest.mark.parametrize(("query", "rows", "lang"), [
    ("rows=6&lang=en", 6, "en"), ("rows=1&lang=kk", 1, "kk"), ("rows=20&lang=ru", 20, "ru"),
])
def test_rows_and_lang_fix_the_board(client: FlaskClient, feed: int, query: str, rows: int, lang: str) -> None:
    html, settings = board_page(client, query)
    assert settings["rows"] == rows and settings["lang"] == lang
    assert f'<html lang="{lang}">' in html and f'data-lang="{lang}"' in html


@pytest.mark.parametrize("query", [
    "rows=0", "rows=21", "rows=-3", "rows=abc", "rows=2.5", "rows=%D9%A3", "rows=", "lang=de", "lang=EN", "lang=",
    "lang=kk%22%3E%3Cscript%3E", "rows=1e3&lang=ru-RU",
])
def test_bad_overrides_keep_the_defaults(client: FlaskClient, feed: int, query: str) -> None:
    html, settings = board_page(client, query)
    assert settings["rows"] is None and settings["lang"] is None  # sized from the screen, rotating kk / ru / en
    assert '<html lang="kk">' in html and "<script>" not in html.split('id="settings"')[1]


def test_idle_and_drift_are_bounded_timings(client: FlaskClient, feed: int) -> None:
    _, defaults = board_page(client, "")
    assert (defaults["idleS"], defaults["driftS"]) == (1200, 40)
    _, tuned = board_page(client, "idle=0&drift=1")
    assert (tuned["idleS"], tuned["driftS"]) == (0, 1)
    _, clamped = board_page(client, "idle=-5&drift=nan")
    assert (clamped["idleS"], clamped["driftS"]) == (0, 40)


def test_clock_zone_is_the_feeds(app: Flask, client: FlaskClient, feed: int) -> None:
    assert board_page(client, "")[1]["timezone"] == "Asia/Almaty"
    with get_db(app).session() as session:
        session.execute(update(FeedVersion).where(FeedVersion.id == feed).values(agency_timezone="Asia/Aqtobe"))
        session.commit()
    assert board_page(client, "")[1]["timezone"] == "Asia/Aqtobe"
    with get_db(app).session() as session:
        session.execute(update(FeedVersion).where(FeedVersion.id == feed).values(agency_timezone="Mars/Olympus"))
        session.commit()
    assert board_page(client, "")[1]["timezone"] == "UTC"  # a zone the page's clock could not use


def test_a_stop_in_its_own_zone_shows_its_own_time(app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    """GTFS stop_timezone, imported from stops.txt, wins over the agency's zone; stops without one keep it."""
    feed_dir = tmp_path / "feed"
    shutil.copytree(DEMO_FEED, feed_dir)
    stops = pd.read_csv(feed_dir / "stops.txt", dtype=str, keep_default_na=False)
    first, second = stops["stop_id"].iloc[0], stops["stop_id"].iloc[1]
    stops["stop_timezone"] = ""
    stops.loc[0, "stop_timezone"] = "Asia/Aqtau"
    stops.to_csv(feed_dir / "stops.txt", index=False)
    import_feed(get_db(app), feed_dir, label="zones", canonical=False)
    with get_db(app).session() as session:
        assert session.get(Stop, (session.scalars(select(FeedVersion.id)).one(), first)).stop_timezone == "Asia/Aqtau"
    assert settings_of(client.get(f"/display/{first}"))["timezone"] == "Asia/Aqtau"
    assert settings_of(client.get(f"/display/{second}"))["timezone"] == "Asia/Almaty"


def test_unknown_stop_is_a_404_naming_the_field(client: FlaskClient, feed: int) -> None:
    response = client.get("/display/NOPE")
    assert response.status_code == 404
    assert response.get_json()["error"]["field"] == "stop_id"
