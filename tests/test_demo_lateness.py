"""The demo city's buses stray from the timetable the way a real city's do: late more often than early.

Real reference (bench/lateness.py, docs/demo-lateness.md): Austin CapMetro's real pings against its timetable,
381,292 stop visits over five days: early by more than a minute 16.6 %, late by more than a minute 41.1 %, by more
than 3 minutes 19.1 %, median +0.5 min. Before the fix the demo ran 3.9 min early at the median (86 % early).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flask.testing import FlaskCliRunner

from prediction.gtfs.schedule import read_schedule
from prediction.network import Network, build_network
from prediction.sim.lateness import summarise, truth_deviation
from prediction.sim.params import DEMO_PARAMS, SimParams
from prediction.sim.simulate import CitySimulator

DEMO_FEED = Path(__file__).resolve().parents[1] / "gtfs_data" / "almaty"
WEEKDAY = dt.date(2026, 3, 4)
REAL_LATE_3 = 0.191  # Austin, share of visits more than 3 min late


@pytest.fixture(scope="module")
def network() -> Network:
    return build_network(read_schedule(DEMO_FEED, canonical=False))


def test_a_demo_day_is_late_more_often_than_early(network: Network) -> None:
    # as `make demo` streams it
    truth = CitySimulator(network, seed=1, params=DEMO_PARAMS).run_day(WEEKDAY, ping_interval_s=3600).truth
    lateness = summarise(truth_deviation(network, truth))
    assert lateness.late_1 > lateness.early_1, lateness.line()
    assert lateness.median_min >= 0.0, lateness.line()
    assert REAL_LATE_3 / 2 < lateness.late_3 < REAL_LATE_3 * 2, lateness.line()


def test_without_timetable_pace_the_demo_runs_early_as_before(network: Network) -> None:
    """The cause: the simulator's free speed is faster than the demo timetable's running times."""
    free = CitySimulator(network, seed=1, params=SimParams(timetable_pace=False, hold_early_s=np.inf))
    lateness = summarise(truth_deviation(network, free.run_day(WEEKDAY, ping_interval_s=3600).truth))
    assert lateness.early_1 > 0.5 and lateness.median_min < -1.0, lateness.line()


def test_buses_hold_at_timepoints(network: Network) -> None:
    """A bus far ahead of the timetable waits at timepoints: with holding, fewer visits are more than 1 min early."""
    fast = SimParams(timetable_pace=False, hold_early_s=30.0)  # free speed: buses run early, have reason to hold
    held = summarise(truth_deviation(network, CitySimulator(network, seed=1, params=fast).run_day(
        WEEKDAY, ping_interval_s=3600).truth))
    loose = summarise(truth_deviation(network, CitySimulator(
        network, seed=1, params=SimParams(timetable_pace=False, hold_early_s=np.inf)).run_day(
        WEEKDAY, ping_interval_s=3600).truth))
    assert held.early_1 < loose.early_1 - 0.1, (held.line(), loose.line())


def test_summary_counts_shares_and_median() -> None:
    lateness = summarise([-120, -30, 0, 90, 240, 400])
    assert (lateness.visits, lateness.early_1, lateness.late_1) == (6, 1 / 6, 0.5)
    assert lateness.late_3 == pytest.approx(2 / 6) and lateness.late_5 == pytest.approx(1 / 6)
    assert lateness.median_min == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no deviations"):
        summarise([])


def _arrivals(folder: Path) -> pd.Series:
    events = pd.read_csv(folder / f"truth_stop_events_{WEEKDAY.isoformat()}.csv")
    at = pd.to_datetime(events["arrival_time"], format="ISO8601", utc=True)
    return pd.Series(at.to_numpy(), index=pd.MultiIndex.from_frame(events[["trip_id", "stop_sequence"]]))


def test_simulate_paces_the_city_to_its_timetable_only_when_asked(runner: FlaskCliRunner, tmp_path: Path) -> None:
    """`make demo` runs `qala simulate --pace-to-timetable` (and streams LiveCity with the same params); without the
    flag the benchmarks' free-speed city is unchanged, so the same trips reach the same stops earlier."""
    for name, flag in (("free", []), ("paced", ["--pace-to-timetable"])):
        done = runner.invoke(args=["simulate", "--feed", str(DEMO_FEED), "--start", WEEKDAY.isoformat(), "--days",
                                   "1", "--seed", "1", "--ping-interval", "3600", "--out", str(tmp_path / name), *flag])
        assert done.exit_code == 0, done.output
    free, paced = _arrivals(tmp_path / "free"), _arrivals(tmp_path / "paced")
    later = (paced - free.reindex(paced.index)).dropna().dt.total_seconds()
    assert len(later) > 10_000 and later.median() > 60
