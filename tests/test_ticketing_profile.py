"""Fare profiles built from the active feed's Fares v2 rows (the tiny test feed and the Almaty demo feed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Flask

from app import get_db
from app.schedule.importer import import_feed
from app.ticketing.fareload import ProfileCache
from app.ticketing.fares import TapIn, rate
from tests.conftest import DEMO_FEED
from tests.feeds import write_feed

AT = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)


def _fare(cache: ProfileCache, app: Flask, category: str, route: str) -> int:
    with get_db(app).session() as session:
        profile = cache.get(session)
    return rate(profile, category, [TapIn("t", AT, "bus", route)])[0].fare


def test_without_a_feed_the_profile_defaults_apply(app: Flask) -> None:
    assert _fare(ProfileCache("almaty_2024"), app, "student", "R1") == 6000


def test_profile_reads_the_tiny_feed_rows(app: Flask, tmp_path: Path) -> None:
    import_feed(get_db(app), write_feed(tmp_path / "feed"), canonical=False)
    cache = ProfileCache("almaty_2024")
    assert _fare(cache, app, "standard", "R1") == 12000
    assert _fare(cache, app, "student", "R1") == 6000
    assert _fare(cache, app, "veteran", "R1") == 12000  # the tiny feed has no free category: default applies


def test_almaty_demo_feed_matches_the_almaty_2024_fares(app: Flask) -> None:
    import_feed(get_db(app), DEMO_FEED, canonical=False)
    cache = ProfileCache("almaty_2024")
    expected = {"standard": 12000, "student": 6000, "pensioner": 6000, "large_family": 6000, "veteran": 0,
                "disability": 0, "pensioner_75": 0}
    assert {c: _fare(cache, app, c, "R12") for c in expected} == expected
    with get_db(app).session() as session:
        profile = cache.get(session)
    assert profile.product_amount("pass_month", "school") == 200000
    two = rate(profile, "standard", [TapIn("a", AT, "bus-1", "R12"), TapIn("b", AT + dt.timedelta(minutes=5),
                                                                          "bus-2", "R34")])
    assert [r.fare for r in two] == [12000, 12000]
