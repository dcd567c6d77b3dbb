"""Estimators in scikit-learn's shape, versioned model files, and the fallback when no model can be loaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from prediction.artifacts import list_models, load_predictor, save_model
from prediction.features import FEATURES, SegmentHistory
from prediction.models import DeviationBaseline, KalmanBaseline, QuantileETAModel, ScheduleBaseline


def _rows(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.uniform(0, 10, n) for name in FEATURES})
    frame["route"] = rng.integers(0, 3, n).astype(float)
    frame["sched_eta_s"] = rng.uniform(0, 900, n)
    frame["deviation_s"] = rng.normal(60, 30, n)
    frame["kalman_eta_s"] = frame["sched_eta_s"] + 50
    target = frame["kalman_eta_s"].to_numpy() + 5 * frame["elapsed_s"].to_numpy()
    return frame, target


def test_baselines_read_their_estimate() -> None:
    rows, y = _rows()
    with pytest.raises(NotFittedError):
        ScheduleBaseline().predict(rows)
    np.testing.assert_array_equal(ScheduleBaseline().fit(rows, y).predict(rows), rows["sched_eta_s"])
    expected = np.maximum(rows["sched_eta_s"] + rows["deviation_s"], 0)
    np.testing.assert_array_equal(DeviationBaseline().fit(rows, y).predict(rows), expected)
    np.testing.assert_array_equal(KalmanBaseline().fit(rows, y).predict(rows), rows["kalman_eta_s"])


def test_quantile_model_is_a_sklearn_estimator() -> None:
    rows, y = _rows()
    model = QuantileETAModel(max_iter=30)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict(rows)
    assert model.fit(rows, y) is model
    low, high = model.predict_interval(rows)
    median = model.predict(rows)
    assert np.all(low <= median) and np.all(median <= high)
    assert np.mean(np.abs(median - y)) < np.mean(np.abs(rows["kalman_eta_s"] - y))
    assert [len(q) for q in model.predict_quantiles(rows.iloc[:0])] == [0, 0, 0]  # a moment with no buses


def test_interval_is_calibrated_on_the_latest_training_rows() -> None:
    """The later rows are three times as noisy: an interval from in-sample residuals, mostly of the calm rows,
    covers too little; the conformal one from the held-out latest rows restores the nominal 80 %."""
    rng = np.random.default_rng(1)
    rows, _ = _rows(6000, seed=1)
    rows["made_at"] = np.arange(len(rows), dtype=float)
    calm = rows["made_at"] < 0.7 * len(rows)
    noise = rng.normal(0.0, np.where(calm, 30.0, 90.0))
    y = rows["kalman_eta_s"].to_numpy() + noise
    raw = QuantileETAModel(max_iter=40, calibration_share=0.0).fit(rows, y)
    calibrated = QuantileETAModel(max_iter=40, calibration_share=0.2).fit(rows, y)
    fresh, _ = _rows(3000, seed=2)
    truth = fresh["kalman_eta_s"].to_numpy() + rng.normal(0.0, 90.0, len(fresh))

    def coverage(model: QuantileETAModel) -> float:
        low, high = model.predict_interval(fresh)
        return float(((truth >= low) & (truth <= high)).mean())

    assert coverage(raw) < 0.7
    assert 0.72 <= coverage(calibrated) <= 0.88
    assert not raw.calibrated_ and calibrated.calibrated_
    assert np.all(calibrated.interval_offsets_[0] < raw.interval_offsets_[0])
    assert np.all(calibrated.interval_offsets_[1] > raw.interval_offsets_[1])


def _history() -> SegmentHistory:
    return SegmentHistory(run_s=np.full((2, 48), 60.0), dwell_s=np.full((2, 48), 10.0), gain=0.4)


def _save(folder: Path, stamp: str) -> Path:
    import datetime as dt

    rows, y = _rows()
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
    assert {"training_window", "feed", "features", "metrics", "libraries"} <= set(meta[0])
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
    rows, _ = _rows(5)
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
