"""The line feed (tests/fixtures/line_feed.py) reads as a valid two-route feed."""

from __future__ import annotations

from pathlib import Path

from prediction.gtfs.schedule import read_schedule
from tests.fixtures.line_feed import write_line_feed


def test_line_feed_reads(tmp_path: Path) -> None:
    feed = read_schedule(write_line_feed(tmp_path / "feed"), canonical=False)
    assert set(feed.routes["route_id"]) == {"R12", "R32"}
    assert feed.trips["block_id"].isna().all() if "block_id" in feed.trips else True
