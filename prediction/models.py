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
    """OneBusAway: the bus's current schedule deviation carried forward to every later stop."""

    def _eta(self, X: pd.DataFrame) -> FloatArray:
        return np.maximum(X["sched_eta_s"].to_numpy(float) + X["deviation_s"].to_numpy(float), 0.0)


class KalmanBaseline(_Baseline):
    """TheTransitClock: historical segment times blended with the last vehicle's by a (steady-state) Kalman gain."""

    def _eta(self, X: pd.DataFrame) -> FloatArray:
        return X["kalman_eta_s"].to_numpy(float)


class QuantileETAModel(RegressorMixin, BaseEstimator):
    """Gradient boosting with quantile losses on the residual of the Kalman estimate.

    ``predict`` gives the median ETA; ``predict_interval`` the (low, high) quantiles.
    """

    def __init__(self, quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9), max_iter: int = 200,
                 learning_rate: float = 0.1, max_leaf_nodes: int = 31, min_samples_leaf: int = 40,
                 random_state: int = 0) -> None:
        self.quantiles = quantiles
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: npt.ArrayLike) -> QuantileETAModel:
        features = X[list(FEATURES)]
        residual = np.asarray(y, dtype=float) - X["kalman_eta_s"].to_numpy(float)
        routes = int(np.nanmax(features["route"])) + 1 if len(features) else 0
        categorical = ["route"] if routes < 250 else None
        self.estimators_ = [
            HistGradientBoostingRegressor(
                loss="quantile", quantile=q, max_iter=self.max_iter, learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
                categorical_features=categorical, random_state=self.random_state,
            ).fit(features, residual)
            for q in self.quantiles
        ]
        self.feature_names_in_ = np.array(FEATURES, dtype=object)
        self.n_features_in_ = len(FEATURES)
        return self

    def predict_quantiles(self, X: pd.DataFrame) -> list[FloatArray]:
        """ETA (s) at every quantile of ``quantiles``, in order, never crossing."""
        check_is_fitted(self, "estimators_")
        base = X["kalman_eta_s"].to_numpy(float)
        features = X[list(FEATURES)]
        stacked = np.sort([base + est.predict(features) for est in self.estimators_], axis=0)  # no crossing
        return list(np.maximum(stacked, 0.0))

    def predict(self, X: pd.DataFrame) -> FloatArray:
        return self.predict_quantiles(X)[len(self.quantiles) // 2]

    def predict_interval(self, X: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
        low, *_, high = self.predict_quantiles(X)
        return low, high


BASELINES = {"schedule": ScheduleBaseline, "deviation": DeviationBaseline, "kalman": KalmanBaseline}


def make_predictor(name: str) -> BaseEstimator:
    """A fresh, unfitted predictor by name: ``model`` or one of ``BASELINES``."""
    if name == "model":
        return QuantileETAModel()
    if name not in BASELINES:
        raise KeyError(f"unknown predictor {name!r}; choose model, {', '.join(BASELINES)}")
    return BASELINES[name]()
