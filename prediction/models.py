"""Arrival predictors in scikit-learn's shape: a quantile gradient-boosting model and three baselines.

Every predictor takes the rows of ``LiveState.snapshot`` and predicts seconds from the snapshot time to the
arrival at the row's stop, so all four are scored by the same code.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted

from prediction.features import FEATURES

__all__ = ["BASELINES", "DeviationBaseline", "KalmanBaseline", "QuantileETAModel", "ScheduleBaseline",
           "make_predictor"]

FloatArray = npt.NDArray[np.float64]
HORIZON_EDGES_S = np.array([300.0, 600.0, 900.0, 1800.0])  # interval calibration buckets of the predicted ETA


class _Baseline(RegressorMixin, BaseEstimator):
    """Shaped like ``DummyRegressor``: ``fit`` learns nothing but marks the estimator fitted."""

    def fit(self, X: pd.DataFrame, y: npt.ArrayLike | None = None) -> _Baseline:
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: pd.DataFrame) -> FloatArray:
        check_is_fitted(self, "n_features_in_")
        return self._eta(X)

    def _eta(self, X: pd.DataFrame) -> FloatArray:
        raise NotImplementedError


class ScheduleBaseline(_Baseline):
    """The timetable only."""

    def _eta(self, X: pd.DataFrame) -> FloatArray:
        return X["sched_eta_s"].to_numpy(float)


class DeviationBaseline(_Baseline):
    """OneBusAway: the bus's current schedule deviation carried forward to every later stop (on the next trip of
    its block, what is left of it after the layover: ``block_deviation_s`` when the rows carry it)."""

    def _eta(self, X: pd.DataFrame) -> FloatArray:
        deviation = X["block_deviation_s"] if "block_deviation_s" in X else X["deviation_s"]
        return np.maximum(X["sched_eta_s"].to_numpy(float) + deviation.to_numpy(float), 0.0)


class KalmanBaseline(_Baseline):
    """TheTransitClock: historical segment times blended with the last vehicle's by a (steady-state) Kalman gain."""

    def _eta(self, X: pd.DataFrame) -> FloatArray:
        return X["kalman_eta_s"].to_numpy(float)


class QuantileETAModel(RegressorMixin, BaseEstimator):
    """Median gradient boosting on the residual of the Kalman estimate, with a conformal interval around it.

    ``predict`` gives the median ETA (one ``HistGradientBoostingRegressor`` with the quantile loss at the middle
    of ``quantiles``); ``predict_interval`` the (low, high) ETAs at the outer ``quantiles``. The interval is
    split-conformal, not two more boosters: the booster's residuals (actual − median), divided by the scale
    ``sqrt(median + 60 s)`` so that one bucket's far and near stops share a distribution, have their outer
    quantiles taken per bucket of predicted ETA (0–5, 5–10, 10–15, 15–30, 30+ min). When the rows carry
    ``made_at`` those residuals come from the latest ``calibration_share`` of the training window, held out from
    the fit (``refit`` then fits the booster again on everything, at twice the training time); otherwise from the
    training rows themselves, which gives an over-confident interval. Held-out residuals are what make the
    interval hold its share on later days (in-sample quantiles covered 73 % / 56 % for a nominal 80 %), and one
    booster instead of three makes a prediction cycle a third as costly.
    """

    def __init__(self, quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9), max_iter: int = 200,
                 learning_rate: float = 0.1, max_leaf_nodes: int = 31, min_samples_leaf: int = 40,
                 calibration_share: float = 0.15, refit: bool = False, random_state: int = 0) -> None:
        self.quantiles = quantiles
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.calibration_share = calibration_share
        self.refit = refit
        self.random_state = random_state

    def _booster(self, X: pd.DataFrame, y: FloatArray) -> HistGradientBoostingRegressor:
        features = X[list(FEATURES)]
        residual = y - X["kalman_eta_s"].to_numpy(float)
        routes = int(np.nanmax(features["route"])) + 1 if len(features) else 0
        return HistGradientBoostingRegressor(
            loss="quantile", quantile=self.quantiles[len(self.quantiles) // 2], max_iter=self.max_iter,
            learning_rate=self.learning_rate, max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf, categorical_features=["route"] if routes < 250 else None,
            random_state=self.random_state,
        ).fit(features, residual)

    def fit(self, X: pd.DataFrame, y: npt.ArrayLike) -> QuantileETAModel:
        target = np.asarray(y, dtype=float)
        self.feature_names_in_ = np.array(FEATURES, dtype=object)
        self.n_features_in_ = len(FEATURES)
        held = self._held_out(X)
        if not (held.any() and (~held).any()):
            self.estimator_ = self._booster(X, target)
            self.interval_offsets_ = self._offsets(X, target)
            self.calibrated_ = False
            return self
        self.estimator_ = self._booster(X[~held], target[~held])
        self.interval_offsets_ = self._offsets(X[held], target[held])
        self.calibrated_ = True
        if self.refit:
            self.estimator_ = self._booster(X, target)
        return self

    def _held_out(self, X: pd.DataFrame) -> npt.NDArray[np.bool_]:
        """The rows of the latest ``calibration_share`` of the training window (none without ``made_at``)."""
        if self.calibration_share <= 0 or "made_at" not in X or len(X) < 200:
            return np.zeros(len(X), dtype=bool)
        made = X["made_at"].to_numpy(float)
        cut = made.min() + (1.0 - self.calibration_share) * (made.max() - made.min())
        return made > cut

    def _offsets(self, X: pd.DataFrame, y: FloatArray) -> FloatArray:
        """Per horizon bucket, the (low, high) quantiles of the scaled residual: shape (2, buckets)."""
        median = self._median(X)
        scaled = (y - median) / _scale(median)
        bucket = np.searchsorted(HORIZON_EDGES_S, median, side="right")
        low_q, high_q = self.quantiles[0], self.quantiles[-1]
        everything = _outer(scaled, low_q, high_q)
        offsets = np.repeat(everything[:, None], len(HORIZON_EDGES_S) + 1, axis=1)
        for b in range(offsets.shape[1]):
            chosen = scaled[bucket == b]
            if len(chosen) >= 50:
                offsets[:, b] = _outer(chosen, low_q, high_q)
        return offsets

    def _median(self, X: pd.DataFrame) -> FloatArray:
        base = X["kalman_eta_s"].to_numpy(float)
        if not len(base):  # scikit-learn refuses zero rows; a quiet moment has none
            return base
        return base + self.estimator_.predict(X[list(FEATURES)])

    def predict_quantiles(self, X: pd.DataFrame) -> list[FloatArray]:
        """ETA (s) at the low, middle and high quantile, never crossing and never negative."""
        check_is_fitted(self, "estimator_")
        median = self._median(X)
        offsets = self.interval_offsets_[:, np.searchsorted(HORIZON_EDGES_S, median, side="right")]
        scale = _scale(median)
        low = median + np.minimum(offsets[0], 0.0) * scale
        high = median + np.maximum(offsets[1], 0.0) * scale
        return [np.maximum(low, 0.0), np.maximum(median, 0.0), np.maximum(high, 0.0)]

    def predict(self, X: pd.DataFrame) -> FloatArray:
        check_is_fitted(self, "estimator_")
        return np.maximum(self._median(X), 0.0)

    def predict_interval(self, X: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
        low, _, high = self.predict_quantiles(X)
        return low, high


def _scale(median: FloatArray) -> FloatArray:
    """How the residual's spread grows with the predicted ETA (s): the interval is offset × this."""
    return np.sqrt(np.maximum(median, 0.0) + 60.0)


def _outer(scaled: FloatArray, low_q: float, high_q: float) -> FloatArray:
    """The finite-sample conformal (low, high) quantiles of scaled residuals: each side holds its share."""
    n = len(scaled)
    if n == 0:
        return np.zeros(2)
    low_level = max(np.floor((n + 1) * low_q) / n, 0.0)
    high_level = min(np.ceil((n + 1) * high_q) / n, 1.0)
    return np.array([np.quantile(scaled, low_level), np.quantile(scaled, high_level)])


BASELINES = {"schedule": ScheduleBaseline, "deviation": DeviationBaseline, "kalman": KalmanBaseline}


def make_predictor(name: str) -> BaseEstimator:
    """A fresh, unfitted predictor by name: ``model`` or one of ``BASELINES``."""
    if name == "model":
        return QuantileETAModel()
    if name not in BASELINES:
        raise KeyError(f"unknown predictor {name!r}; choose model, {', '.join(BASELINES)}")
    return BASELINES[name]()
