"""The ETA Accuracy Benchmark and error-by-horizon reproduce TheTransitClock's published figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prediction.eta.metrics import error_by_horizon, eta_benchmark, prediction_coverage, score_predictions


def _records(shared_data: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(error s, predicted horizon s) of the rows with an observed arrival and a horizon of 0–3,600 s."""
    path = shared_data / "accuracy" / f"transiTimeDatabaseGOHART_{name}.csv"
    if not path.exists():
        pytest.skip(f"{path} not available")
    rows = pd.read_csv(path)
    rows = rows[rows["arrivaldeparturetime"].notna()]
    horizon = rows["horizon seconds"].to_numpy(dtype=float)
    error = rows["predictionaccuracymsecs"].to_numpy(dtype=float) / 1000.0
    keep = (horizon >= 0) & (horizon <= 3600)
    return error[keep], horizon[keep]


@pytest.mark.parametrize(("name", "benchmark", "mae_0_5"), [("Egan109", 64.0, 80), ("VIA", 64.2, 86)])
def test_transitclock_figures(shared_data: Path, name: str, benchmark: float, mae_0_5: int) -> None:
    error, horizon = _records(shared_data, name)
    score = eta_benchmark(error, horizon + error)
    assert score["overall"] is not None and round(100 * score["overall"], 1) == benchmark
    mae, _ = error_by_horizon(error, horizon)
    assert mae["0-5"] is not None and round(mae["0-5"]) == mae_0_5


def test_bucket_edges_count_as_accurate() -> None:
    # 1 min to arrival: accurate from -30 to +90 s inclusive
    error = np.array([-30.0, 90.0, -30.5, 90.5])
    score = eta_benchmark(error, np.full(4, 60.0))
    assert score["0-3"] == 0.5
    assert score["3-6"] is None and score["overall"] == 0.5


def test_overall_is_the_mean_of_bucket_accuracies() -> None:
    error = np.array([0.0, 0.0, 1000.0, 0.0, 0.0, 0.0])
    to_actual = np.array([60.0, 60.0, 240.0, 240.0, 400.0, 700.0])
    score = eta_benchmark(error, to_actual)
    assert score == {"overall": pytest.approx((1 + 0.5 + 1 + 1) / 4), "0-3": 1.0, "3-6": 0.5,
                     "6-10": 1.0, "10-15": 1.0}


def test_score_predictions_early_rate_and_coverage() -> None:
    made = np.zeros(4)
    predicted = np.array([100.0, 200.0, 400.0, 700.0])
    actual = np.array([110.0, 120.0, 400.0, 800.0])  # second one came 80 s early
    report = score_predictions(made, predicted, actual, lower=predicted - 50, upper=predicted + 50)
    assert report.n == 4
    assert report.early_rate == 0.25
    assert report.interval_coverage == 0.5
    assert report.mae_s["0-5"] == pytest.approx((10 + 80) / 2)
    assert report.mae_s["5-10"] == 0.0
    assert report.mae_s["10-15"] == 100.0
    assert report.as_dict()["p90_abs_s"] == report.p90_abs_s


def test_a_missing_prediction_is_inaccurate_and_uncovered() -> None:
    error = np.array([0.0, np.nan, 0.0, np.nan, np.nan])
    to_actual = np.array([60.0, 120.0, 240.0, 700.0, 1000.0])  # the last is beyond 15 min: in no bucket
    score = eta_benchmark(error, to_actual)
    assert score["0-3"] == 0.5 and score["3-6"] == 1.0 and score["10-15"] == 0.0 and score["6-10"] is None
    coverage = prediction_coverage(np.isfinite(error), to_actual)
    assert coverage == {"overall": pytest.approx(2 / 5), "0-3": 0.5, "3-6": 1.0, "6-10": None, "10-15": 0.0}
    assert prediction_coverage(np.zeros(0, dtype=bool), np.zeros(0)) == dict.fromkeys(coverage)
