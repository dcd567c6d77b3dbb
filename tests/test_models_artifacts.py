"""Estimators in scikit-learn's shape, versioned model files, and the fallback when no model can be loaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from prediction.eta.artifacts import list_models, load_predictor, save_model
from prediction.eta.features import SegmentHistory
from prediction.eta.models import DeviationBaseline, KalmanBaseline, QuantileETAModel, ScheduleBaseline
from tests.fixtures.features import feature_rows


def test_baselines_read_their_estimate() -> None:
    rows, y = feature_rows()
    with pytest.raises(NotFittedError):
        ScheduleBaseline().predict(rows)
    np.testing.assert_array_equal(ScheduleBaseline().fit(rows, y).predict(rows), rows["sched_eta_s"])
    expected = np.maximum(rows["sched_eta_s"] + rows["deviation_s"], 0)
    np.testing.assert_array_equal(DeviationBaseline().fit(rows, y).predict(rows), expected)
    np.testing.assert_array_equal(KalmanBaseline().fit(rows, y).predict(rows), rows["kalman_eta_s"])


def test_quantile_model_is_a_sklearn_estimator() -> None:
    rows, y = feature_rows(2000)
    model = QuantileETAModel(max_iter=30)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict(rows)
    assert model.fit(rows, y) is model
    low, high = model.predict_interval(rows)
    median = model.predict(rows)
    assert np.all(low <= median) and np.all(median <= high)
    booster = model._median(rows)  # the booster's own estimate, before the selection's benchmark offset
    assert np.mean(np.abs(booster - y)) < 0.5 * np.mean(np.abs(rows["kalman_eta_s"] - y))
    assert [len(q) for q in model.predict_quantiles(rows.iloc[:0])] == [0, 0, 0]  # a moment with no buses


def _days(n: int, days: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows spread over ``days`` service days (``made_at`` and ``hour`` agree), features that explain nothing."""
    rows, _ = feature_rows(n, seed=seed)
    rng = np.random.default_rng(seed)
    rows["hour"] = rng.uniform(6, 22, n)
    rows["made_at"] = rng.integers(0, days, n) * 86_400.0 + rows["hour"] * 3600.0
    rows["block_ahead"] = 0.0
    return rows, rng.normal(0.0, 1.0, n)


def test_a_baseline_that_validates_better_is_served() -> None:
    """When the booster cannot learn the arrivals (its features are noise and the Kalman estimate carries an error
    they cannot see) but the timetable is right, the production predictor serves the timetable."""
    rows, noise = _days(6000, 4, seed=3)
    rows["kalman_eta_s"] = rows["sched_eta_s"] + np.random.default_rng(30).uniform(-300.0, 300.0, len(rows))
    rows["deviation_s"] = np.random.default_rng(31).normal(0.0, 300.0, len(rows))  # OneBusAway is wrong too
    y = rows["sched_eta_s"].to_numpy() + 20.0 * noise
    model = QuantileETAModel(max_iter=30).fit(rows, y)
    used = {row["uses"] for row in model.selection_table() if row["rows"] >= 300}
    assert used and all("schedule" in u for u in used)
    assert np.mean(np.abs(model.predict(rows) - y)) < 0.5 * np.mean(np.abs(rows["kalman_eta_s"] - y))


def test_the_point_estimate_leans_early_for_the_benchmark_windows() -> None:
    """With errors symmetric around the Kalman estimate, the windows (late allowed three times early) are best
    served by an earlier point than the median (a bus later than said is forgiven, an earlier one is not): the
    chosen offsets are negative and validate better than none."""
    rows, noise = _days(8000, 4, seed=4)
    rows["sched_eta_s"] = np.random.default_rng(40).uniform(400, 880, len(rows))
    rows["kalman_eta_s"] = rows["sched_eta_s"]
    y = rows["kalman_eta_s"].to_numpy() + 150.0 * noise
    model = QuantileETAModel(max_iter=20).fit(rows, y)
    busy = [row for row in model.selection_table() if row["rows"] >= 300]
    assert busy and all(float(row["offset_s"]) < 0 for row in busy)  # type: ignore[arg-type]
    window = (y - model.predict(rows) >= -60) & (y - model.predict(rows) <= 210)
    plain = (y - rows["kalman_eta_s"] >= -60) & (y - rows["kalman_eta_s"] <= 210)
    assert window.mean() > plain.mean()


def test_interval_is_calibrated_on_days_the_booster_did_not_see() -> None:
    """A booster that overfits noise looks sharp on its own rows: an interval from in-sample residuals covers
    too little on new rows; the conformal one from out-of-fold days restores the nominal 80 %."""
    rows, noise = _days(6000, 4, seed=1)
    y = rows["kalman_eta_s"].to_numpy() + 90.0 * noise
    greedy = {"max_iter": 300, "max_leaf_nodes": 63, "min_samples_leaf": 5, "learning_rate": 0.3}
    raw = QuantileETAModel(folds=1, **greedy).fit(rows, y)
    crossed = QuantileETAModel(folds=3, **greedy).fit(rows, y)
    fresh, fresh_noise = _days(3000, 2, seed=2)
    truth = fresh["kalman_eta_s"].to_numpy() + 90.0 * fresh_noise

    def coverage(model: QuantileETAModel) -> float:
        low, high = model.predict_interval(fresh)
        return float(((truth >= low) & (truth <= high)).mean())

    assert not raw.calibrated_ and crossed.calibrated_
    assert coverage(raw) < 0.7
    assert 0.72 <= coverage(crossed) <= 0.88


def test_a_new_city_without_history_gets_onebusaway_s_deviation() -> None:
    rows, _ = feature_rows(0)
    model = QuantileETAModel().fit(rows, np.zeros(0))
    fresh, _ = feature_rows(50, seed=5)
    assert model.estimator_ is None
    np.testing.assert_allclose(model.predict(fresh), np.maximum(fresh["sched_eta_s"] + fresh["deviation_s"], 0.0))
    low, high = model.predict_interval(fresh)
    assert np.all(low < model.predict(fresh)) and np.all(high > model.predict(fresh))


def _history() -> SegmentHistory:
    return SegmentHistory(run_s=np.full((2, 48), 60.0), dwell_s=np.full((2, 48), 10.0), gain=0.4)


def _save(folder: Path, stamp: str) -> Path:
    import datetime as dt

    rows, y = feature_rows()
    return save_model(folder, QuantileETAModel(max_iter=5).fit(rows, y), _history(), train_from="a",
                      train_until="b", feed_source="feed.zip", feed_sha256="abc",
                      now=dt.datetime.fromisoformat(stamp))


def test_newest_good_model_is_loaded_with_metadata(tmp_path: Path) -> None:
    old = _save(tmp_path, "2026-03-01T00:00:00+00:00")
    new = _save(tmp_path, "2026-03-02T00:00:00+00:00")
    loaded = load_predictor(tmp_path, feed_sha256="abc")
    assert loaded.name == "model" and loaded.metadata["file"] == new.name
    assert loaded.history is not None and loaded.history.gain == 0.4
    meta = list_models(tmp_path)
    assert [m["file"] for m in meta] == [new.name, old.name]
    assert {"training_window", "feed", "features", "metrics", "libraries", "selection"} <= set(meta[0])
    assert {row["trips"] for row in meta[0]["selection"]} == {"current", "next"}  # what each group serves
    new.write_bytes(b"not a pickle")  # the newest is corrupt: the one before it serves
    fallback = load_predictor(tmp_path, feed_sha256="abc")
    assert fallback.metadata["file"] == old.name and "cannot load" in fallback.skipped[0]


def test_fallback_to_the_baseline(tmp_path: Path) -> None:
    assert load_predictor(tmp_path / "missing").name == "deviation"
    path = _save(tmp_path, "2026-03-01T00:00:00+00:00")
    other_feed = load_predictor(tmp_path, feed_sha256="zzz")
    assert other_feed.name == "deviation" and "another feed" in other_feed.skipped[0]
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["libraries"]["scikit-learn"] = "0.1.0"
    path.with_suffix(".json").write_text(json.dumps(meta))
    loaded = load_predictor(tmp_path)
    assert loaded.name == "deviation" and isinstance(loaded.estimator, DeviationBaseline)
    rows, _ = feature_rows(5)
    assert loaded.estimator.predict(rows).shape == (5,)


def test_model_list_command(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from app.prediction_cli import model_group

    runner = CliRunner()
    assert "no models" in runner.invoke(model_group, ["list", "--models", str(tmp_path)]).output
    path = _save(tmp_path, "2026-03-01T00:00:00+00:00")
    path.with_suffix(".json").write_text("{")
    result = runner.invoke(model_group, ["list", "--models", str(tmp_path)])
    assert result.exit_code == 0 and f"{path.name}  UNUSABLE" in result.output
