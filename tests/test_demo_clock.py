"""``qala demo`` at night in the demo city: the feed is moved to a zone where it is daytime, nothing else."""

from __future__ import annotations

import datetime as dt
import filecmp
from pathlib import Path
from zoneinfo import ZoneInfo

from app.demo import SERVICE_HOURS, daytime_feed
from prediction.gtfs.schedule import read_schedule

FEED = Path(__file__).resolve().parent.parent / "gtfs_data" / "almaty"


def test_a_daytime_feed_is_used_as_it_is(tmp_path: Path) -> None:
    noon_in_almaty = dt.datetime(2026, 11, 25, 7, 0, tzinfo=dt.UTC)  # 12:00 at UTC+5
    assert daytime_feed(FEED, tmp_path, noon_in_almaty) == (FEED, None)
    assert not (tmp_path / "demo-feeds").exists()


def test_at_night_the_same_feed_runs_where_it_is_about_noon(tmp_path: Path) -> None:
    for utc_hour in (18, 20, 23, 0):  # 23:00, 01:00, 04:00, 05:00 in Almaty
        now = dt.datetime(2026, 11, 25, utc_hour, 25, tzinfo=dt.UTC)
        moved, zone = daytime_feed(FEED, tmp_path, now)
        assert zone is not None and moved != FEED and moved.is_relative_to(tmp_path)
        assert now.astimezone(ZoneInfo(zone)).hour in SERVICE_HOURS
        assert abs(now.astimezone(ZoneInfo(zone)).hour - 12) <= 1
        feed = read_schedule(moved, canonical=False)
        assert str(feed.timezone) == zone
        unchanged = [p.name for p in FEED.iterdir() if p.name != "agency.txt"]
        match, mismatch, errors = filecmp.cmpfiles(FEED, moved, unchanged, shallow=False)
        assert sorted(match) == sorted(unchanged) and not mismatch and not errors
    assert daytime_feed(FEED, tmp_path, now) == (moved, zone)  # made once, then reused
