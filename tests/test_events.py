"""Stop events derived from pings against the simulator's truth, on real Austin pings, and on bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prediction.avl.avlio import PingFileError, read_pings, write_csv
from prediction.avl.events import derive_events, resolve_start_dates
from prediction.gtfs.schedule import read_schedule
from prediction.network import Network, build_network
from prediction.sim.simulate import CitySimulator
from tests.fixtures.line_feed import write_line_feed

DAY = dt.date(2026, 3, 3)
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    return build_network(read_schedule(write_line_feed(tmp_path_factory.mktemp("feed")), canonical=False))


def _seconds(text: pd.Series) -> pd.Series:
    return (pd.to_datetime(text, utc=True, format="ISO8601") - EPOCH).dt.total_seconds()


def _score(network: Network, interval: float, tmp_path: Path) -> tuple[float, float]:
    """(arrival MAE in seconds, share of true stop visits recovered) after a CSV round trip."""
    day = CitySimulator(network, seed=11).run_day(DAY, ping_interval_s=interval)
    write_csv(day.pings, tmp_path / "pings.csv")
    events = derive_events(network, read_pings([tmp_path / "pings.csv"]).pings)
    truth = day.events.assign(true_arrival=_seconds(day.events["arrival_time"]))
    both = truth.merge(events, on=["trip_id", "start_date", "stop_sequence"], how="left")
    found = both["arrival"].notna()
    # known_at: the arrival of the ping that makes the live follower emit the event, at or after the departure
    assert (events["known_at"] >= events["departure"]).all()
    assert events["known_at"].isin(set(read_pings([tmp_path / "pings.csv"]).pings["t"])).all()
    assert (events["known_at"] - events["departure"]).max() <= 2 * interval + 600.0
    return float((both["arrival"] - both["true_arrival"])[found].abs().mean()), float(found.mean())


@pytest.mark.parametrize(("interval", "max_mae"), [(20.0, 10.0), (240.0, 45.0)])
def test_events_match_truth(network: Network, tmp_path: Path, interval: float, max_mae: float) -> None:
    mae, recovered = _score(network, interval, tmp_path)
    assert mae <= max_mae
    assert recovered >= 0.98


def test_missing_columns_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("vehicle_id,timestamp,latitude\nbus-1,2026-03-02T08:00:00+05:00,43.2\n")
    with pytest.raises(PingFileError, match=r"bad\.csv:1: missing required column\(s\) longitude"):
        read_pings([path])


HOSTILE = (
    "vehicle_id,timestamp,latitude,longitude,trip_id\n"
    "bus-1,2026-03-02T08:00:00+05:00,43.2,76.9,T1\n"
    "bus-1,2026-03-02T08:00:20,43.2,76.9,T1\n"  # no offset: ambiguous
    "bus-1,2026-03-02T08:00:40+05:00,NaN,76.9,T1\n"
    "bus-1,2026-03-02T08:01:00+05:00,91,76.9,T1\n"
    "bus-1,2026-03-02T08:01:20+05:00,43.2,'; DROP TABLE pings;--,T1\n"
    ",2026-03-02T08:01:40+05:00,43.2,76.9,T1\n"
    "bus-1,1772420560,43.2,76.9,T1\n"  # epoch seconds are fine
    "bus-1,2026-03-02T08:00:00+05:00,43.2,76.9,T1\n"  # duplicate
)


def test_hostile_values_are_rejected_by_reason_or_raise_with_row(tmp_path: Path) -> None:
    path = tmp_path / "hostile.csv"
    path.write_text(HOSTILE)
    result = read_pings([path])
    assert len(result.pings) == 2
    assert result.rejected == {"bad_timestamp": 1, "bad_coordinates": 3, "missing_vehicle": 1, "duplicate": 1}
    assert any(example.startswith(f"{path}:3 bad_timestamp") for example in result.examples)
    with pytest.raises(PingFileError, match=r"hostile\.csv:3 \[timestamp\]: bad_timestamp"):
        read_pings([path], strict=True)


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00garbage\x00\x81")
    with pytest.raises(PingFileError, match=r"binary\.csv"):
        read_pings([path])
    with pytest.raises(PingFileError, match="no such file"):
        read_pings([tmp_path / "absent.csv"])


@pytest.mark.slow
def test_austin_events_for_most_trips_with_monotone_times(shared_data: Path) -> None:
    """All five days of real 4-minute Austin pings: a sample of the trips seen (≥ 1 ping) gets events for ≥ 90 %,
    times never go backwards along a trip, and a trip seen only once gets an event only where that ping stood at
    a stop (at the ping's time)."""
    feed = read_schedule(shared_data / "gtfs" / "austin_capmetro_2016.zip", canonical=False)
    network = build_network(feed)
    pings = read_pings(sorted((shared_data / "avl" / "austin_capmetro_2016").glob("pings_*.csv"))).pings
    pings = pings[pings["trip_id"].notna()]
    runs = pings["trip_id"].astype(str) + "/" + resolve_start_dates(pings, network).astype(str)
    sample = set(pd.Series(runs.unique()).sample(n=600, random_state=4))
    mine = pings[runs.isin(sample)]
    events = derive_events(network, mine)
    seen = runs[runs.isin(sample)].value_counts()
    assert len(seen) == 600
    keys = events["trip_id"].astype(str) + "/" + events["start_date"].astype(str)
    assert keys.nunique() >= 0.9 * len(seen)
    for _, trip in events.groupby(["trip_id", "start_date"]):
        times = np.column_stack([trip["arrival"], trip["departure"]]).ravel()
        assert (np.diff(times) >= 0).all()
        assert (trip["known_at"] >= trip["departure"]).all()
    lone = set(seen[seen == 1].index)
    lone_events = events[keys.isin(lone)]
    assert len(lone_events) >= 1 and set(lone_events["arrival"]) <= set(mine["t"])
    assert (lone_events["arrival"] == lone_events["departure"]).all()


def test_forked_workers_give_the_same_events(network: Network) -> None:
    """Vehicles are independent: sharing them out among processes changes nothing, row for row."""
    pings = CitySimulator(network, seed=3).run_day(DAY, ping_interval_s=30.0).pings
    pings = pings.assign(t=_seconds(pings["timestamp"]))
    alone = derive_events(network, pings, workers=1)
    shared = derive_events(network, pings, workers=2)
    assert pings["vehicle_id"].nunique() >= 2 and len(alone) > 100
    pd.testing.assert_frame_equal(alone, shared)
    assert derive_events(network, pings.iloc[:0], workers=2).empty
