"""Backtest on a tiny simulated line with blocks: every predictor is scored (also on the next trips of each bus's
block), nothing from the future leaks into the past, and ``qala backtest`` replays from a temporary database."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from prediction.avl.events import derive_events
from prediction.eta.backtest import backtest, format_table, training_set
from prediction.eta.features import KnownEvents, SegmentHistory, prepare_events
from prediction.eta.models import QuantileETAModel
from prediction.eta.snapshot import LiveState
from prediction.network import Network
from tests.fixtures.backtest import SMALL_MODEL, cutoff_at


def test_every_predictor_is_scored(backtest_city: tuple[Network, KnownEvents, pd.DataFrame], tmp_path: Path) -> None:
    net, known, _ = backtest_city
    # the model file's own predictions (online re-selection, which moves points for the benchmark's windows
    # rather than the mean, is tested in tests/test_online_selection.py)
    report = backtest(net, known, cutoff_at(net), step_s=120.0, model=SMALL_MODEL, online=False)
    assert "online_selection" not in report and "model_file_only" not in report
    predictors = report["predictors"]
    assert isinstance(predictors, dict) and list(predictors) == ["model", "schedule", "deviation", "kalman"]
    n = {p["n"] for p in predictors.values()}
    assert len(n) == 1 and n.pop() > 500  # all scored on the same rows
    model, deviation = predictors["model"], predictors["deviation"]
    assert 0.0 <= model["interval_coverage"] <= 1.0 and predictors["kalman"]["interval_coverage"] is None
    assert model["mae_s"]["0-5"] < deviation["mae_s"]["0-5"]
    assert model["eta_benchmark"]["overall"] > predictors["schedule"]["eta_benchmark"]["overall"]
    json.dumps(report)  # the report is plain JSON
    assert "kalman" in format_table(report)
    following, current = report["next_trips"], report["current_trips"]
    assert isinstance(following, dict) and isinstance(current, dict)
    assert following["model"]["n"] > 50 and following["model"]["n"] + current["model"]["n"] == model["n"]


def test_a_bus_predicts_the_next_trip_of_its_block(backtest_city: tuple[Network, KnownEvents, pd.DataFrame]) -> None:
    net, known, _ = backtest_city
    cutoff = cutoff_at(net)
    state = LiveState(net, SegmentHistory.fit(net, known.select(known.arrival < cutoff)), known)
    frames = [state.snapshot(float(now)) for now in np.arange(cutoff + 3 * 3600.0, cutoff + 5 * 3600.0, 300.0)]
    rows = pd.concat(frames, ignore_index=True)
    following = rows[rows["block_ahead"] == 1]
    assert len(following) > 50
    # every next-trip row belongs to the trip that follows, in the block, a trip some bus is on right now
    current_trips = set(rows.loc[rows["block_ahead"] == 0, "trip"]) | set(state.run_trip[state.last_visit >= 0])
    blocks = pd.Series(net.trip_block)
    for trip in following["trip"].unique():
        before = [t for t in current_trips if state.next_trip[t] == trip]
        assert before and blocks[before[0]] == blocks[trip]
    # the bus leaves at the earliest at the next trip's scheduled departure, so no stop of it is predicted earlier
    first_dep = following["origin"] + net.visit_dep[net.visit_ptr[following["trip"].to_numpy()]]
    assert (following["made_at"] + following["kalman_eta_s"] >= first_dep - 1e-6).all()
    scorable = following[following["run"] >= 0]
    assert len(scorable) and (state.run_trip[scorable["run"]] == scorable["trip"]).all()


def _poisoned(known: KnownEvents, after: float) -> KnownEvents:
    """Every event not yet known at ``after`` moved by 17 minutes: the future is garbage."""
    future = known.known_at > after
    shift = np.where(future, 1020.0, 0.0)
    return dataclasses.replace(known, arrival=known.arrival + shift, departure=known.departure + shift,
                               segment_run=np.where(future, known.segment_run * 3.0, known.segment_run),
                               headway=np.where(future, 1.0, known.headway))


def test_poisoned_future_does_not_change_past_predictions(backtest_city: tuple[Network, KnownEvents, pd.DataFrame]
                                                          ) -> None:
    net, known, _ = backtest_city
    cutoff = cutoff_at(net)
    training = training_set(net, known, cutoff, step_s=600.0)
    model = QuantileETAModel(max_iter=10).fit(training.rows, training.target)
    moment = cutoff + 4.5 * 3600.0
    clean = LiveState(net, training.history, known)
    dirty = LiveState(net, training.history, _poisoned(known, moment))
    seen, poisoned = [], []
    for now in np.arange(cutoff + 3 * 3600.0, moment + 1, 120.0):
        seen.append(clean.snapshot(float(now)))
        poisoned.append(dirty.snapshot(float(now)))
    a, b = pd.concat(seen, ignore_index=True), pd.concat(poisoned, ignore_index=True)
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(model.predict(a), model.predict(b))
    assert len(a) > 100 and (a["block_ahead"] == 1).sum() > 10  # next-trip rows are covered too
    after = clean.snapshot(moment + 1800.0)
    assert not after.equals(dirty.snapshot(moment + 1800.0))  # the poison is real


def test_an_event_between_pings_is_known_at_the_later_ping(backtest_city: tuple[Network, KnownEvents, pd.DataFrame]
                                                          ) -> None:
    net, _, pings = backtest_city
    events = derive_events(net, pings).drop(columns=["known_at"], errors="ignore")  # as read from the database
    known = prepare_events(net, events, pings)
    assert (known.known_at > known.departure).all()
    ping_times = np.sort(pings["t"].to_numpy(float))
    at_ping = np.isin(known.known_at, ping_times)
    assert at_ping.mean() > 0.95  # a real ping made it known (the rest: the vehicle's last ping, + 60 s)
    # known_at never decreases along a run: passing a stop proves the earlier ones were passed
    order = np.lexsort((known.visit, known.run))
    same = known.run[order][1:] == known.run[order][:-1]
    assert (np.diff(known.known_at[order])[same] >= 0).all()


def test_training_uses_only_the_past(backtest_city: tuple[Network, KnownEvents, pd.DataFrame]) -> None:
    net, known, _ = backtest_city
    cutoff = cutoff_at(net)
    clean = training_set(net, known, cutoff, step_s=600.0)
    dirty = training_set(net, _poisoned(known, cutoff), cutoff, step_s=600.0)
    pd.testing.assert_frame_equal(clean.rows, dirty.rows)
    np.testing.assert_array_equal(clean.target, dirty.target)
    assert isinstance(clean.history, SegmentHistory) and 0.0 <= clean.history.gain <= 1.0


def test_backtest_command_writes_the_report(backtest_city: tuple[Network, KnownEvents, pd.DataFrame],
                                            tmp_path: Path) -> None:
    from click.testing import CliRunner

    from app.prediction_cli import backtest_command
    from prediction.avl.avlio import write_csv

    net, _, pings = backtest_city
    write_csv(pings.drop(columns=["t"]), tmp_path / "pings.csv")
    feed = net.feed.source
    args = ["--gtfs", feed, "--pings", str(tmp_path / "pings.csv"), "--json", str(tmp_path / "out.json"),
            "--step", "300"]
    result = CliRunner().invoke(backtest_command, [*args, "--train-until", "2026-03-03T07:30:00+05:00"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out.json").read_text())
    assert set(report) >= {"train_until", "test_from", "test_to", "arrivals_observed", "predictors"}
    assert set(report["predictors"]["model"]) == {"n", "eta_benchmark", "mae_s", "p90_abs_s", "early_rate",
                                                  "interval_coverage", "eta_benchmark_predictions_only",
                                                  "eta_benchmark_live", "coverage", "timetable_shown", "slots"}
    late = CliRunner().invoke(backtest_command, [*args, "--train-until", "2026-03-10T00:00:00+05:00"])
    assert late.exit_code != 0 and "both before and after" in late.output


def test_backtest_command_for_a_city_with_no_history(backtest_city: tuple[Network, KnownEvents, pd.DataFrame],
                                                     tmp_path: Path) -> None:
    """``--history-hours 0``: nothing before the cutoff is kept, and the production predictor still answers, with
    OneBusAway's deviation (it needs no history), exactly as the deviation baseline scores."""
    from click.testing import CliRunner

    from app.prediction_cli import backtest_command
    from prediction.avl.avlio import write_csv

    net, _, pings = backtest_city
    write_csv(pings.drop(columns=["t"]), tmp_path / "pings.csv")
    args = ["--gtfs", net.feed.source, "--pings", str(tmp_path / "pings.csv"), "--json", str(tmp_path / "out.json"),
            "--step", "300", "--train-until", "2026-03-03T07:30:00+05:00", "--history-hours", "0"]
    result = CliRunner().invoke(backtest_command, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["history_hours"] == 0 and report["training_rows"] == 0
    assert {row["uses"] for row in report["model_selection"]} == {"deviation"}
    scores = report["predictors"]
    assert scores["model"]["slots"] > 0
    # before online re-selection (which starts from it), exactly what the deviation baseline scores
    assert report["model_file_only"]["eta_benchmark"] == scores["deviation"]["eta_benchmark"]
    assert len(report["online_selection"]) == 12


def test_backtest_replays_what_the_database_holds(backtest_city: tuple[Network, KnownEvents, pd.DataFrame],
                                                  tmp_path: Path) -> None:
    from click.testing import CliRunner
    from sqlalchemy import func, select

    from app.db import Database
    from app.models import FeedVersion, StopEvent
    from app.prediction_cli import backtest_command
    from prediction.avl.avlio import write_csv

    net, known, pings = backtest_city
    write_csv(pings.drop(columns=["t"]), tmp_path / "pings.csv")
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    args = ["--gtfs", net.feed.source, "--pings", str(tmp_path / "pings.csv"), "--json", str(tmp_path / "a.json"),
            "--step", "600", "--train-until", "2026-03-03T07:30:00+05:00", "--database", url]
    result = CliRunner().invoke(backtest_command, args)
    assert result.exit_code == 0, result.output
    db = Database.from_url(url)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(FeedVersion)) == 1
        assert session.scalar(select(func.count()).select_from(StopEvent)) == len(known)
    db.engine.dispose()
    again = CliRunner().invoke(backtest_command, args)
    assert again.exit_code != 0 and "must be empty" in again.output
