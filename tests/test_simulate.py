"""The simulator: deterministic per seed, plausible city behaviour, and files in the documented formats."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prediction.avl.avlio import PING_COLUMNS
from prediction.gtfs.schedule import read_schedule
from prediction.network import Network, build_network
from prediction.sim.params import ALMATY_RIDER_MIX
from prediction.sim.simulate import CitySimulator, SimulatedDay, simulate_days
from tests.fixtures.line_feed import write_line_feed

DAY = dt.date(2026, 3, 2)  # a Monday


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    return build_network(read_schedule(write_line_feed(tmp_path_factory.mktemp("feed")), canonical=False))


@pytest.fixture(scope="module")
def day(network: Network) -> SimulatedDay:
    return CitySimulator(network, seed=7).run_day(DAY, ping_interval_s=20)


def test_same_seed_same_day_and_other_seed_differs(network: Network, day: SimulatedDay) -> None:
    again = CitySimulator(network, seed=7).run_day(DAY, ping_interval_s=20)
    pd.testing.assert_frame_equal(day.pings, again.pings)
    pd.testing.assert_frame_equal(day.taps, again.taps)
    pd.testing.assert_frame_equal(day.events, again.events)
    other = CitySimulator(network, seed=8).run_day(DAY, ping_interval_s=20)
    assert not other.events["arrival_time"].equals(day.events["arrival_time"])


def test_vehicles_chain_trips_with_layovers(network: Network, day: SimulatedDay) -> None:
    truth = day.truth
    assert 1 < len(np.unique(truth.vehicle)) < len(truth.trips)  # blocks were inferred: buses run several trips
    first, last = truth.visit_ptr[:-1], truth.visit_ptr[1:] - 1
    for vehicle in np.unique(truth.vehicle):
        mine = np.flatnonzero(truth.vehicle == vehicle)
        mine = mine[np.argsort(truth.departure[first[mine]])]
        gaps = truth.departure[first[mine[1:]]] - truth.arrival[last[mine[:-1]]]
        assert (gaps >= 180.0 - 1e-6).all()  # never leaves before the minimum layover


def test_times_increase_along_each_trip_and_dwell_follows_boardings(day: SimulatedDay) -> None:
    truth = day.truth
    steps = np.column_stack([truth.arrival, truth.departure]).ravel()
    trip_of = np.repeat(np.arange(len(truth.trips)), 2 * np.diff(truth.visit_ptr))
    same = trip_of[1:] == trip_of[:-1]
    assert (np.diff(steps)[same] >= 0).all()
    dwell = truth.departure - truth.arrival
    middle = np.ones(len(dwell), dtype=bool)
    middle[truth.visit_ptr[:-1]] = middle[truth.visit_ptr[1:] - 1] = False
    busy = middle & (truth.boardings >= 5)
    quiet = middle & (truth.boardings == 0)
    assert dwell[busy].mean() > dwell[quiet].mean()


def test_pings_taps_and_truth_have_documented_columns(day: SimulatedDay) -> None:
    assert tuple(day.pings.columns) == PING_COLUMNS
    assert day.pings["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+05:00").all()
    assert list(day.events.columns) == ["trip_id", "start_date", "stop_sequence", "stop_id", "arrival_time",
                                       "departure_time"]
    taps = day.taps
    assert len(taps) > 100 and taps["card_id"].str.fullmatch(r"\d{19}").all()
    assert set(taps["category"]) <= set(ALMATY_RIDER_MIX)
    assert taps["is_transfer"].any() and taps["has_pass"].any()
    assert not taps.duplicated(["device_id", "device_seq"]).any()


def test_simulate_days_writes_three_files_per_day(network: Network, tmp_path: Path) -> None:
    totals = simulate_days(network, DAY, 2, tmp_path, seed=1, ping_interval_s=60)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"{kind}_{d}.csv" for kind in ("pings", "taps", "truth_stop_events")
                     for d in ("2026-03-02", "2026-03-03")]
    assert totals["days"] == 2 and totals["pings"] > 0
    written = pd.read_csv(tmp_path / "pings_2026-03-02.csv", dtype=str)
    assert list(written.columns) == list(PING_COLUMNS)
