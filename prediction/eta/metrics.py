"""Arrival-prediction accuracy: the ETA Accuracy Benchmark (TransitApp / IBI Group), error by horizon, coverage.

Error is always ``actual − predicted`` arrival in seconds: positive means the bus came later than predicted,
negative (below −60 s) means the rider who trusted the prediction could have missed it. A moment when a rider
looked and saw no prediction has a NaN error: it is inaccurate in the benchmark and uncovered in ``coverage``,
so a predictor cannot look better by keeping quiet on the hard cases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "ETA_BUCKETS",
    "HORIZON_BUCKETS",
    "AccuracyReport",
    "error_by_horizon",
    "eta_benchmark",
    "prediction_coverage",
    "score_predictions",
]

FloatArray = npt.NDArray[np.float64]

# (label, time-to-actual-arrival window in minutes [lo, hi), accurate window for the error in seconds [lo, hi])
ETA_BUCKETS: tuple[tuple[str, float, float, float, float], ...] = (
    ("0-3", 0.0, 3.0, -30.0, 90.0),
    ("3-6", 3.0, 6.0, -60.0, 150.0),
    ("6-10", 6.0, 10.0, -60.0, 210.0),
    ("10-15", 10.0, 15.0, -90.0, 270.0),
)
# predicted horizon in minutes, [lo, hi)
HORIZON_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0-5", 0.0, 5.0), ("5-10", 5.0, 10.0), ("10-15", 10.0, 15.0), ("15-30", 15.0, 30.0),
)
EARLY_S = -60.0


def _floats(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def eta_benchmark(error_s: npt.ArrayLike, time_to_actual_s: npt.ArrayLike) -> dict[str, float | None]:
    """Share of accurate predictions per bucket of time to the actual arrival, and ``overall`` = their mean.

    A bucket without predictions is ``None`` and the overall is then the mean of the buckets that have some.
    A NaN error (no prediction at that moment) is inaccurate.
    """
    error, to_actual = _floats(error_s), _floats(time_to_actual_s)
    out: dict[str, float | None] = {}
    for label, lo_min, hi_min, early, late in ETA_BUCKETS:
        inside = (to_actual >= lo_min * 60.0) & (to_actual < hi_min * 60.0)
        chosen = error[inside]
        out[label] = float(((chosen >= early) & (chosen <= late)).mean()) if chosen.size else None
    scored = [v for v in out.values() if v is not None]
    return {"overall": float(np.mean(scored)) if scored else None, **out}


def error_by_horizon(error_s: npt.ArrayLike, horizon_s: npt.ArrayLike) -> tuple[dict[str, float | None],
                                                                                dict[str, float | None]]:
    """(MAE, P90 of the absolute error) in seconds per bucket of *predicted* horizon; ``None`` when empty."""
    error, horizon = np.abs(_floats(error_s)), _floats(horizon_s)
    mae: dict[str, float | None] = {}
    p90: dict[str, float | None] = {}
    for label, lo_min, hi_min in HORIZON_BUCKETS:
        chosen = error[(horizon >= lo_min * 60.0) & (horizon < hi_min * 60.0)]
        mae[label] = float(chosen.mean()) if chosen.size else None
        p90[label] = float(np.percentile(chosen, 90)) if chosen.size else None
    return mae, p90


def prediction_coverage(covered: npt.ArrayLike, time_to_actual_s: npt.ArrayLike) -> dict[str, float | None]:
    """Share of the moments before observed arrivals that had a fresh prediction, per bucket of time to the
    arrival and ``overall`` (over every moment, not the mean of the buckets); ``None`` where there are none."""
    shown, to_actual = np.asarray(covered, dtype=bool), _floats(time_to_actual_s)
    out: dict[str, float | None] = {"overall": float(shown.mean()) if shown.size else None}
    for label, lo_min, hi_min, _, _ in ETA_BUCKETS:
        chosen = shown[(to_actual >= lo_min * 60.0) & (to_actual < hi_min * 60.0)]
        out[label] = float(chosen.mean()) if chosen.size else None
    return out


@dataclass(frozen=True)
class AccuracyReport:
    """Every figure of one predictor on one set of (prediction, observed arrival) pairs."""

    n: int
    eta_benchmark: dict[str, float | None]
    mae_s: dict[str, float | None]
    p90_abs_s: dict[str, float | None]
    early_rate: float | None
    interval_coverage: float | None

    def as_dict(self) -> dict[str, object]:
        return {"n": self.n, "eta_benchmark": self.eta_benchmark, "mae_s": self.mae_s,
                "p90_abs_s": self.p90_abs_s, "early_rate": self.early_rate,
                "interval_coverage": self.interval_coverage}


def score_predictions(made_at: npt.ArrayLike, predicted: npt.ArrayLike, actual: npt.ArrayLike,
                      lower: npt.ArrayLike | None = None, upper: npt.ArrayLike | None = None) -> AccuracyReport:
    """Score predictions made at ``made_at`` of arrival ``predicted`` against ``actual`` (all epoch seconds).

    ``lower``/``upper`` give the predicted interval; coverage is the share of actual arrivals inside it.
    Predictions whose actual arrival was already past when they were made are not scored.
    """
    made, pred, act = _floats(made_at), _floats(predicted), _floats(actual)
    keep = (act >= made) & np.isfinite(pred) & np.isfinite(act)
    made, pred, act = made[keep], pred[keep], act[keep]
    error = act - pred
    mae, p90 = error_by_horizon(error, pred - made)
    coverage = None
    if lower is not None and upper is not None and error.size:
        lo, hi = _floats(lower)[keep], _floats(upper)[keep]
        coverage = float(((act >= lo) & (act <= hi)).mean())
    return AccuracyReport(
        n=int(error.size), eta_benchmark=eta_benchmark(error, act - made), mae_s=mae, p90_abs_s=p90,
        early_rate=float((error < EARLY_S).mean()) if error.size else None, interval_coverage=coverage,
    )
