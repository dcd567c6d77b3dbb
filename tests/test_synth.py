"""The synthetic city generator: complete feed, deterministic per seed, valid, scales with routes."""

from __future__ import annotations

import zipfile
from datetime import date
from pathlib import Path

import gtfs_guru
import pandas as pd
import pytest

from prediction.sim.synth import write_synthetic_feed

EXPECTED = {
    "agency", "feed_info", "stops", "routes", "trips", "stop_times", "shapes", "calendar", "calendar_dates",
    "translations", "fare_media", "rider_categories", "fare_products", "networks", "route_networks",
    "fare_leg_rules", "fare_transfer_rules",
}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("synth") / "routes4"
    return out, write_synthetic_feed(out, routes=4, seed=7)


def read(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{table}.txt", dtype=str, keep_default_na=False)


def test_writes_every_table_and_counts_its_rows(small: tuple[Path, dict[str, int]]) -> None:
    out, counts = small
    assert {p.stem for p in out.glob("*.txt")} == EXPECTED == set(counts)
    for table, n in counts.items():
        assert len(read(out, table)) == n, table
    trips = read(out, "trips")
    assert trips.groupby("route_id")["direction_id"].agg(set).map(lambda d: d == {"0", "1"}).all()
    assert (trips["block_id"] != "").all() and set(trips["shape_id"]) <= set(read(out, "shapes")["shape_id"])
    names = read(out, "translations").query("table_name == 'stops'")
    assert names.groupby("language")["record_id"].nunique().to_dict() == {
        "en": counts["stops"], "kk": counts["stops"], "ru": counts["stops"]}


def test_same_seed_is_byte_identical_and_another_seed_differs(
        small: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    out, _ = small
    again = tmp_path / "again"
    write_synthetic_feed(again, routes=4, seed=7)
    for table in EXPECTED:
        assert (again / f"{table}.txt").read_bytes() == (out / f"{table}.txt").read_bytes(), table
    other = tmp_path / "other"
    write_synthetic_feed(other, routes=4, seed=8)
    assert (other / "stop_times.txt").read_bytes() != (out / "stop_times.txt").read_bytes()
    assert (other / "stops.txt").read_bytes() != (out / "stops.txt").read_bytes()


def test_canonical_validator_finds_no_errors(small: tuple[Path, dict[str, int]]) -> None:
    out, _ = small
    result = gtfs_guru.validate(str(out))
    assert result.error_count == 0, [(n.code, n.file, n.row, n.message) for n in result.errors()][:10]


def test_peak_is_more_frequent_than_midday(small: tuple[Path, dict[str, int]]) -> None:
    out, _ = small
    trips = read(out, "trips")
    first = read(out, "stop_times").query("stop_sequence == '1'").merge(trips, on="trip_id")
    weekday = first.query("service_id == 'weekday' and route_id == 'R1' and direction_id == '0'")
    hour = weekday["departure_time"].str[:2].astype(int)
    peak = ((hour >= 7) & (hour < 10)).sum() / 3
    midday = ((hour >= 11) & (hour < 16)).sum() / 5
    assert peak > midday > 0


def test_stop_times_scale_with_routes(small: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    _, counts = small
    bigger = write_synthetic_feed(tmp_path / "routes8", routes=8, seed=7)
    assert bigger["routes"] == 8
    assert 1.6 <= bigger["stop_times"] / counts["stop_times"] <= 2.4


def test_zip_output_holds_the_same_tables(small: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    out, _ = small
    target = tmp_path / "feed.zip"
    write_synthetic_feed(target, routes=4, seed=7)
    with zipfile.ZipFile(target) as archive:
        assert set(archive.namelist()) == {f"{table}.txt" for table in EXPECTED}
        assert archive.read("stop_times.txt") == (out / "stop_times.txt").read_bytes()


def test_calendar_covers_the_requested_days(tmp_path: Path) -> None:
    counts = write_synthetic_feed(tmp_path, routes=1, start_date=date(2027, 3, 1), days=30)
    calendar = read(tmp_path, "calendar")
    assert set(calendar["start_date"]) == {"20270301"} and set(calendar["end_date"]) == {"20270330"}
    holidays = read(tmp_path, "calendar_dates")
    assert set(holidays["date"]) == {"20270308", "20270322", "20270323"}  # Women's Day, Nauryz (weekdays)
    assert counts["routes"] == 1
