"""The backtest scores what riders see: every minute before an observed arrival is a slot, a predictor that says
nothing in a slot is wrong there, and ``history_hours`` makes a backtest_city with only recent history (or none)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from prediction.eta.backtest import ArrivalSlots, Predictions, arrival_slots, backtest, score_arrivals
from prediction.eta.features import KnownEvents
from prediction.eta.metrics import score_predictions
from prediction.eta.models import KalmanBaseline
from prediction.network import Network
from tests.fixtures.backtest import SMALL_MODEL, cutoff_at

STEP = 60.0


def _one_arrival() -> tuple[Predictions, ArrivalSlots]:
    """One arrival at t = 600 s (key 7), slots at moments 0, 60, … 600 (k = 0..10), and two predictors:
    ``always`` answers at every moment (exactly, but 200 s too early at k = 5), ``quiet`` is silent at
    k = 0, 1, 2 and 9. A row for another arrival and a row made after the arrival are not slots."""
    k = np.arange(11)
    made = np.r_[k * STEP, 0.0, 660.0]
    actual = np.r_[np.full(11, 600.0), 300.0, 600.0]
    always = actual.copy()
    always[5] -= 200.0
    quiet = actual.copy()
    quiet[[0, 1, 2, 9]] = np.nan
    rows = Predictions(made_at=made, actual=actual, predicted={"always": always, "quiet": quiet}, lower=None,
                       upper=None, block_ahead=np.zeros(13), arrival_key=np.r_[np.full(11, 7), 8, 7])
    slots = ArrivalSlots(arrival_key=np.array([7]), arrival=np.zeros(11, dtype=np.int64), moment=k,
                         to_actual=(600.0 - k * STEP).astype(np.float64), next_trip=np.zeros(11, dtype=bool),
                         first_stops=0)
    return rows, slots


def test_a_silent_moment_is_an_inaccurate_one() -> None:
    rows, slots = _one_arrival()
    scores = score_arrivals(rows, slots, STEP, {"all": None})["all"]
    always, quiet = scores["always"], scores["quiet"]
    # buckets of time to the arrival: 0-3 min k = 8..10, 3-6 k = 5..7, 6-10 k = 1..4, 10-15 k = 0
    assert always["eta_benchmark"] == {"overall": pytest.approx((1 + 2 / 3 + 1 + 1) / 4), "0-3": 1.0,
                                       "3-6": pytest.approx(2 / 3), "6-10": 1.0, "10-15": 1.0}
    assert always["coverage"] == {"overall": 1.0, "0-3": 1.0, "3-6": 1.0, "6-10": 1.0, "10-15": 1.0}
    assert quiet["eta_benchmark"] == {"overall": pytest.approx((2 / 3 + 1 + 0.5 + 0.0) / 4),
                                      "0-3": pytest.approx(2 / 3), "3-6": 1.0, "6-10": 0.5, "10-15": 0.0}
    assert quiet["coverage"] == {"overall": pytest.approx(7 / 11), "0-3": pytest.approx(2 / 3), "3-6": 1.0,
                                 "6-10": 0.5, "10-15": 0.0}
    assert always["slots"] == quiet["slots"] == 11
    # scored on its predictions alone, the quiet predictor would look better than the one that always answers
    made_only = score_predictions(rows.made_at, rows.predicted["quiet"], rows.actual).eta_benchmark
    assert made_only["overall"] is not None and made_only["overall"] > always["eta_benchmark"]["overall"]


def test_slots_split_by_part() -> None:
    rows, slots = _one_arrival()
    late = np.arange(11) >= 6
    scores = score_arrivals(rows, slots, STEP, {"late": late, "early": ~late})
    assert scores["late"]["quiet"]["slots"] == 5 and scores["early"]["quiet"]["slots"] == 6
    assert scores["late"]["quiet"]["coverage"]["overall"] == pytest.approx(4 / 5)
    assert scores["early"]["quiet"]["coverage"]["overall"] == pytest.approx(3 / 6)


def test_slots_of_a_simulated_day(backtest_city: tuple[Network, KnownEvents, pd.DataFrame]) -> None:
    net, known, _ = backtest_city
    cutoff = cutoff_at(net)
    end = float(known.known_at.max())
    slots = arrival_slots(net, known, cutoff, end, STEP)
    at = slots.moment * STEP
    assert len(at) > 1000 and (at >= cutoff).all() and (at < end).all()
    assert ((slots.to_actual >= 0) & (slots.to_actual < 900)).all()
    assert slots.first_stops > 0
    first_stop = np.isin(slots.arrival_key % len(net.visit_seq), net.visit_ptr[:-1])
    assert not first_stop.any()
    # a current-trip slot's bus had been seen on the trip (an observed arrival) by then; a next-trip slot's not
    run = slots.arrival_key[slots.arrival] // len(net.visit_seq)
    seen = pd.Series(known.arrival).groupby(known.run).min().reindex(run).to_numpy()
    assert (seen[~slots.next_trip] <= at[~slots.next_trip]).all()
    assert (seen[slots.next_trip] > at[slots.next_trip]).all() and slots.next_trip.any()
    # no arrival has more than 15 one-minute slots
    assert np.bincount(slots.arrival).max() == 15


class _QuietKalman(KalmanBaseline):
    """The Kalman baseline, silent on every stop of an even visit number."""

    def _eta(self, X: pd.DataFrame) -> npt.NDArray[np.float64]:
        eta = super()._eta(X)
        return np.where(X["visit"].to_numpy() % 2 == 0, np.nan, eta)


def test_a_predictor_that_abstains_is_penalised(backtest_city: tuple[Network, KnownEvents, pd.DataFrame]) -> None:
    net, known, _ = backtest_city
    report = backtest(net, known, cutoff_at(net), step_s=120.0, train_step_s=1200.0, model=_QuietKalman())
    quiet, kalman = report["predictors"]["model"], report["predictors"]["kalman"]  # type: ignore[index]
    assert quiet["slots"] == kalman["slots"] > 1000
    assert kalman["coverage"]["overall"] > 0.8
    assert quiet["coverage"]["overall"] < 0.6 * kalman["coverage"]["overall"]
    assert quiet["eta_benchmark"]["overall"] < kalman["eta_benchmark"]["overall"] - 0.2
    # on the predictions it did make it is as good as the baseline it copies
    assert abs(quiet["eta_benchmark_predictions_only"]["overall"]
               - kalman["eta_benchmark_predictions_only"]["overall"]) < 0.05
    for part in ("current_trips", "next_trips"):
        assert report[part]["model"]["slots"] > 0  # type: ignore[index]
    assert report["arrivals_with_slots"] <= report["arrivals_observed"]  # type: ignore[operator]
    json.dumps(report)


def _poison_before(known: KnownEvents, moment: float) -> KnownEvents:
    """Every event known before ``moment`` 17 minutes late, its run times tripled."""
    old = known.known_at < moment
    shift = np.where(old, 1020.0, 0.0)
    return dataclasses.replace(known, arrival=known.arrival + shift, departure=known.departure + shift,
                               segment_run=np.where(old, known.segment_run * 3.0, known.segment_run))


def test_history_hours_forgets_older_events(backtest_city: tuple[Network, KnownEvents, pd.DataFrame]) -> None:
    net, known, _ = backtest_city
    cutoff = cutoff_at(net)
    # hours are counted back from the last event known before the cutoff (the first day's service ends ~09:20)
    last = float(known.known_at[known.known_at < cutoff].max())
    kwargs = {"step_s": 600.0, "train_step_s": 600.0, "model": SMALL_MODEL, "history_hours": 1.0}
    clean = backtest(net, known, cutoff, **kwargs)  # type: ignore[arg-type]
    older = _poison_before(known, last - 1.5 * 3600.0)
    assert not np.array_equal(older.arrival, known.arrival)
    forgotten = backtest(net, older, cutoff, **kwargs)  # type: ignore[arg-type]
    assert json.dumps(clean, sort_keys=True) == json.dumps(forgotten, sort_keys=True)
    remembered = backtest(net, _poison_before(known, last - 0.5 * 3600.0), cutoff, **kwargs)  # type: ignore[arg-type]
    assert json.dumps(clean, sort_keys=True) != json.dumps(remembered, sort_keys=True)  # the poison is real
    whole = backtest(net, known, cutoff, **{**kwargs, "history_hours": None})  # type: ignore[arg-type]
    assert 0 < clean["training_rows"] < whole["training_rows"]  # type: ignore[operator]
    assert clean["history_hours"] == 1.0


def test_no_history_still_answers(backtest_city: tuple[Network, KnownEvents, pd.DataFrame]) -> None:
    net, known, _ = backtest_city
    report = backtest(net, known, cutoff_at(net), step_s=600.0, history_hours=0.0)
    assert report["training_rows"] == 0
    predictors: dict[str, Any] = report["predictors"]  # type: ignore[assignment]
    model = predictors.pop("model")
    assert model["slots"] > 100 and model["coverage"]["overall"] > 0.5
    # with nothing to learn from, a baseline serves (until online re-selection has seen enough arrivals)
    file_only: dict[str, Any] = report["model_file_only"]  # type: ignore[assignment]
    assert file_only["eta_benchmark"] in [p["eta_benchmark"] for p in predictors.values()]


def test_a_model_that_cannot_fit_nothing_is_stood_in_for(backtest_city: tuple[Network, KnownEvents, pd.DataFrame]
                                                         ) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    net, known, _ = backtest_city
    report = backtest(net, known, cutoff_at(net), step_s=600.0, history_hours=0.0, online=False,
                      model=HistGradientBoostingRegressor())  # refuses zero rows, as QuantileETAModel did
    assert report["model_cold_start"] == "deviation" and report["model_estimator"] == "DeviationBaseline"
    model, deviation = report["predictors"]["model"], report["predictors"]["deviation"]  # type: ignore[index]
    assert model == deviation


def test_a_slot_the_board_filled_from_the_timetable_is_scored_on_it() -> None:
    """Before a run's first event is known the board shows its timetable row (app/realtime/compose.py): a rider
    sees that time, so the slot is scored on it; once an event is known, or the scheduled time is past, the
    board shows no timetable row for the run and a silent predictor's slot stays inaccurate."""
    rows, slots = _one_arrival()
    k = np.arange(11)
    heard = k >= 3
    board = dataclasses.replace(slots, scheduled=np.full(11, 600.0), heard=heard)
    scores = score_arrivals(rows, board, STEP, {"all": None}, visits=1)["all"]
    quiet = scores["quiet"]
    # silent at k = 0, 1, 2 (timetable shown, exact) and k = 9 (heard by then: nothing shown)
    assert quiet["eta_benchmark"] == {"overall": pytest.approx((2 / 3 + 1 + 1 + 1) / 4), "0-3": pytest.approx(2 / 3),
                                      "3-6": 1.0, "6-10": 1.0, "10-15": 1.0}
    assert quiet["eta_benchmark_live"] == {"overall": pytest.approx((2 / 3 + 1 + 0.5 + 0.0) / 4),
                                           "0-3": pytest.approx(2 / 3), "3-6": 1.0, "6-10": 0.5, "10-15": 0.0}
    assert quiet["timetable_shown"]["overall"] == pytest.approx(3 / 11)  # of all slots
    assert quiet["coverage"]["overall"] == pytest.approx(7 / 11)  # coverage counts live predictions only
    # a live row for another stop of the same run (keys 7 and 8 are one run when a run has 100 visits) means the
    # board shows the run live, not its timetable: moment 0 stays unanswered
    same_run = score_arrivals(rows, board, STEP, {"all": None}, visits=100)["all"]["quiet"]
    assert same_run["eta_benchmark"]["10-15"] == 0.0 and same_run["eta_benchmark"]["6-10"] == 1.0
    # a predictor that answered keeps its own figures
    assert scores["always"]["eta_benchmark"] == scores["always"]["eta_benchmark_live"]
    # a timetable time already past is not shown: the board lists what is still to come (30 s is, at moment 0
    # only, and wrong by 570 s then)
    late = dataclasses.replace(slots, scheduled=np.full(11, 30.0), heard=heard)
    past = score_arrivals(rows, late, STEP, {"all": None}, visits=1)["all"]["quiet"]
    assert past["eta_benchmark"] == quiet["eta_benchmark_live"]
    assert past["timetable_shown"]["overall"] == pytest.approx(1 / 11)
    # without the run numbering (visits = 0) nothing is filled
    plain = score_arrivals(rows, board, STEP, {"all": None})["all"]["quiet"]
    assert plain["eta_benchmark"] == plain["eta_benchmark_live"]
