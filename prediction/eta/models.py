"""Arrival predictors in scikit-learn's shape: the production predictor and three baselines.

Every predictor takes the rows of ``LiveState.snapshot`` and predicts seconds from the snapshot time to the
arrival at the row's stop, so all four are scored by the same code. The production predictor
(``QuantileETAModel``) corrects the Kalman estimate with a booster, but per group of rows it serves whatever its
out-of-fold validation found best, baselines included: it is never knowingly worse than the best of them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted

from prediction.eta.features import FEATURES

__all__ = ["BASELINES", "BLENDED", "CANDIDATES", "OFFSETS_S", "DeviationBaseline", "KalmanBaseline",
           "QuantileETAModel", "ScheduleBaseline", "group_count", "group_of", "groups_of", "hits_by_offset",
           "make_predictor", "stack_candidates"]

FloatArray = npt.NDArray[np.float64]


class _Baseline(RegressorMixin, BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no type hints
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
    its block, what is left of it after the layover). Rows from ``LiveState.snapshot`` carry it ready as
    ``deviation_eta_s`` (the deviation grows while the bus is overdue at its next stop, as OneBusAway's does);
    rows without it get the last observed deviation (``block_deviation_s`` or ``deviation_s``) added to the
    schedule."""

    def _eta(self, X: pd.DataFrame) -> FloatArray:
        eta: FloatArray
        if "deviation_eta_s" in X:
            eta = np.maximum(X["deviation_eta_s"].to_numpy(float), 0.0)
            return eta
        deviation = X["block_deviation_s"] if "block_deviation_s" in X else X["deviation_s"]
        eta = np.maximum(X["sched_eta_s"].to_numpy(float) + deviation.to_numpy(float), 0.0)
        return eta


class KalmanBaseline(_Baseline):
    """TheTransitClock: historical segment times blended with the last vehicle's by a (steady-state) Kalman gain."""

    def _eta(self, X: pd.DataFrame) -> FloatArray:
        return X["kalman_eta_s"].to_numpy(float)


class QuantileETAModel(RegressorMixin, BaseEstimator):  # type: ignore[misc]  # as _Baseline
    """The production predictor: a gradient-boosted correction of the Kalman estimate, and per group of rows the
    estimate that validation shows best — the booster, a baseline or a blend — shifted for the benchmark's windows.

    Three parts, all fitted in ``fit``:

    - **The booster**: one ``HistGradientBoostingRegressor`` (quantile loss at the middle of ``quantiles``)
      predicting the residual of ``kalman_eta_s`` from ``FEATURES``.
    - **The selection**: the training rows are cut into ``folds`` groups of whole service days (two halves of the
      window when it holds less than two days); each fold is predicted by a booster fitted without it, so every
      row has an out-of-fold estimate from the booster and from each baseline. Rows are grouped by next trip or
      current trip and by the Kalman ETA's bucket (0–3, 3–6, 6–10, 10–15, 15–30, 30+ min); per group, the
      candidate (``model``, ``kalman``, ``deviation``, ``schedule`` or an even blend of the booster with one of
      the last three) and the offset (−180…+180 s) that put the most out-of-fold rows inside the ETA Accuracy
      Benchmark's windows win. The windows forgive lateness three times more than earliness, so the best point
      is not the median, and on a city whose history is short or unlike its present a baseline can beat the
      booster: then the baseline is what riders get. A group with fewer than ``min_group_rows`` rows takes its
      trip kind's choice, then the overall one. With fewer than ``min_rows`` training rows (a new city) there is
      no booster and the choice is among the baselines alone, or ``COLD_START`` (deviation) with no rows at all.
    - **The interval**: split-conformal on the same out-of-fold rows: the residuals (actual − chosen estimate)
      divided by ``sqrt(estimate + 60 s)``, their outer ``quantiles`` per group. Out-of-fold means on days the
      booster did not see, so the interval keeps its share on new days (in-sample residuals covered 56–73 %
      for a nominal 80 %).

    Service and backtest call the same ``predict_quantiles``, and ``selection_`` (saved in the model file's
    metadata) says what each group uses.
    """

    def __init__(self, quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9), max_iter: int = 200,
                 learning_rate: float = 0.1, max_leaf_nodes: int = 31, min_samples_leaf: int = 40,
                 folds: int = 3, min_rows: int = 500, min_group_rows: int = 300, random_state: int = 0) -> None:
        self.quantiles = quantiles
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.folds = folds
        self.min_rows = min_rows
        self.min_group_rows = min_group_rows
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
        fold = _folds(X, self.folds) if len(X) >= self.min_rows else np.zeros(len(X), dtype=np.int64)
        crossed = len(X) >= self.min_rows and len(np.unique(fold)) > 1
        self.estimator_: HistGradientBoostingRegressor | None = None
        booster: FloatArray | None = None
        if crossed:  # out-of-fold estimates, then the booster the service uses, fitted on every row
            booster = np.full(len(X), np.nan)
            for k in np.unique(fold):
                held = fold == k
                booster[held] = self._booster(X[~held], target[~held]).predict(X.loc[held, list(FEATURES)])
            booster += X["kalman_eta_s"].to_numpy(float)
        if len(X) >= self.min_rows:
            self.estimator_ = self._booster(X, target)
            if booster is None:  # too little to cut: in-sample estimates, and ``calibrated_`` says so
                booster = self._median(X)
        self.calibrated_ = crossed
        estimates = _candidates(X, booster)
        group = groups_of(X)
        self.selection_ = _select(estimates, target, group, self.min_group_rows)
        chosen = _apply(estimates, self.selection_, group)
        self.interval_offsets_ = _interval_offsets(chosen, target, group, self.quantiles, self.min_group_rows)
        return self

    def _median(self, X: pd.DataFrame) -> FloatArray:
        base = X["kalman_eta_s"].to_numpy(float)
        if self.estimator_ is None or not len(base):  # scikit-learn refuses zero rows; a quiet moment has none
            return base
        median: FloatArray = base + self.estimator_.predict(X[list(FEATURES)])
        return median

    def predict_quantiles(self, X: pd.DataFrame) -> list[FloatArray]:
        """ETA (s) at the low, middle and high quantile, never crossing and never negative."""
        check_is_fitted(self, "selection_")
        group = groups_of(X)
        booster = self._median(X) if self.estimator_ is not None else None
        middle = _apply(_candidates(X, booster), self.selection_, group)
        offsets = self.interval_offsets_[:, group] if len(group) else np.zeros((2, 0))
        scale = _scale(middle)
        low = middle + np.minimum(offsets[0], 0.0) * scale
        high = middle + np.maximum(offsets[1], 0.0) * scale
        return [np.maximum(low, 0.0), np.maximum(middle, 0.0), np.maximum(high, 0.0)]

    def predict(self, X: pd.DataFrame) -> FloatArray:
        return self.predict_quantiles(X)[1]

    def predict_interval(self, X: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
        low, _, high = self.predict_quantiles(X)
        return low, high

    def selection_table(self) -> list[dict[str, object]]:
        """What each group of rows uses, for the model file's metadata and the backtest report."""
        check_is_fitted(self, "selection_")
        out: list[dict[str, object]] = []
        for g, (candidate, offset, rows, hits) in enumerate(zip(*self.selection_, strict=True)):
            out.append({"trips": "next" if g >= len(_GROUP_EDGES_S) + 1 else "current",
                        "kalman_eta_min": _GROUP_LABELS[g % (len(_GROUP_EDGES_S) + 1)],
                        "uses": CANDIDATES[int(candidate)], "offset_s": float(offset), "rows": int(rows),
                        "validation_accuracy": None if not np.isfinite(hits) else round(float(hits), 4)})
        return out


# --- the selection ------------------------------------------------------------------------------------------------

# with nothing to validate on (a new city), OneBusAway's deviation: it needs no history at all, where the Kalman
# estimate without history is the timetable's run times from wherever the bus is
COLD_START = "deviation"
CANDIDATES = ("model", "kalman", "deviation", "schedule", "model+kalman", "model+deviation", "model+schedule")
OFFSETS_S = np.arange(-180.0, 181.0, 10.0)
_GROUP_EDGES_S = np.array([180.0, 360.0, 600.0, 900.0, 1800.0])  # of the Kalman ETA: the benchmark's buckets and on
_GROUP_LABELS = ("0-3", "3-6", "6-10", "10-15", "15-30", "30+")
# accurate windows (early, late) of the ETA Accuracy Benchmark by time to the actual arrival; later than 15 min,
# the 10–15 min window
_WINDOW_EDGES_S = np.array([180.0, 360.0, 600.0])
_WINDOW_EARLY = np.array([-30.0, -60.0, -60.0, -90.0])
_WINDOW_LATE = np.array([90.0, 150.0, 210.0, 270.0])
Selection = tuple[npt.NDArray[np.int64], FloatArray, npt.NDArray[np.int64], FloatArray]  # candidate, offset, n, hit


def _folds(X: pd.DataFrame, folds: int) -> npt.NDArray[np.int64]:
    """Fold of each row: whole local service days dealt round-robin into ``folds``; with fewer than two days in
    the window (or no ``made_at``), its earlier and later halves."""
    if "made_at" not in X or not len(X):
        return np.zeros(len(X), dtype=np.int64)
    made = X["made_at"].to_numpy(float)
    # local midnight from the local hour the rows carry; a service day runs to 03:00, so shift by 3 hours
    day = np.floor((made - (X["hour"].to_numpy(float) - 3.0) * 3600.0) / 3600.0 + 0.5).astype(np.int64)
    ranks = np.unique(day, return_inverse=True)[1].astype(np.int64)
    if ranks.max() + 1 >= 2:
        fold: npt.NDArray[np.int64] = ranks % max(min(folds, int(ranks.max()) + 1), 1)
        return fold
    half: npt.NDArray[np.int64] = (made > np.median(made)).astype(np.int64)
    return half


def group_count() -> int:
    return 2 * (len(_GROUP_EDGES_S) + 1)


def group_of(kalman_eta_s: FloatArray, ahead: npt.NDArray[np.bool_] | None) -> npt.NDArray[np.int64]:
    """Group of each row: current (0–5) or next trip (6–11) × bucket of the Kalman ETA."""
    bucket = np.searchsorted(_GROUP_EDGES_S, kalman_eta_s, side="right")
    if ahead is None:
        ahead = np.zeros(len(kalman_eta_s), dtype=bool)
    return (bucket + ahead * (len(_GROUP_EDGES_S) + 1)).astype(np.int64)


def groups_of(X: pd.DataFrame) -> npt.NDArray[np.int64]:
    """The group of each snapshot row (see ``group_of``)."""
    return group_of(X["kalman_eta_s"].to_numpy(float),
                    X["block_ahead"].to_numpy(float) > 0 if "block_ahead" in X else None)


BLENDED = ("kalman", "deviation", "schedule")  # the baselines among CANDIDATES, in their order


def stack_candidates(model: FloatArray, baselines: list[FloatArray]) -> FloatArray:
    """ETA (s) by every candidate, shape (candidates, rows), from the model's and ``BLENDED``'s ETAs."""
    stacked: FloatArray = np.vstack([model, *baselines, *[(model + b) / 2.0 for b in baselines]])
    return stacked


def _candidates(X: pd.DataFrame, booster: FloatArray | None) -> FloatArray:
    """ETA (s) by every candidate, shape (candidates, rows); NaN where there is no booster."""
    model = np.full(len(X), np.nan) if booster is None else booster
    return stack_candidates(model, [BASELINES[name]()._eta(X) for name in BLENDED])


def hits_by_offset(estimate: FloatArray, actual: FloatArray) -> FloatArray:
    """1.0 where ``estimate`` + each offset (rows of the result) falls in the benchmark's window of ``actual``
    (both seconds from the moment of prediction), else 0.0: shape (offsets, rows)."""
    window = np.searchsorted(_WINDOW_EDGES_S, actual, side="right")
    early, late = _WINDOW_EARLY[window], _WINDOW_LATE[window]
    error = actual[None, :] - (estimate[None, :] + OFFSETS_S[:, None])
    return ((error >= early) & (error <= late)).astype(np.float64)


def _hits(estimate: FloatArray, actual: FloatArray) -> FloatArray:
    """Hit rate of each offset of ``estimate`` under the benchmark's windows."""
    rate: FloatArray = hits_by_offset(estimate, actual).mean(axis=1)
    return rate


def _best(estimates: FloatArray, actual: FloatArray) -> tuple[int, float, float]:
    """(candidate, offset, hit rate) with the most hits; the booster wins ties, then the earlier candidate."""
    best = (1, 0.0, -1.0)
    for c in range(len(estimates)):
        if np.isnan(estimates[c]).any():
            continue
        rates = _hits(np.maximum(estimates[c], 0.0), actual)
        k = int(np.argmax(rates))
        if rates[k] > best[2] + 1e-9:
            best = (c, float(OFFSETS_S[k]), float(rates[k]))
    return best


def _select(estimates: FloatArray, target: FloatArray, group: npt.NDArray[np.int64], min_rows: int) -> Selection:
    groups = group_count()
    candidate = np.full(groups, CANDIDATES.index(COLD_START), dtype=np.int64)
    offset, hits = np.zeros(groups), np.full(groups, np.nan)
    count = np.bincount(group, minlength=groups)[:groups]
    overall = _best(estimates, target) if len(target) else None
    half = len(_GROUP_EDGES_S) + 1
    for kind in (0, 1):
        rows = (group >= half) if kind else (group < half)
        fallback = _best(estimates[:, rows], target[rows]) if rows.sum() >= min_rows else overall
        for g in range(kind * half, (kind + 1) * half):
            pick = group == g
            chosen = _best(estimates[:, pick], target[pick]) if count[g] >= min_rows else fallback
            if chosen is not None:
                candidate[g], offset[g], hits[g] = chosen
    return candidate, offset, count.astype(np.int64), hits


def _apply(estimates: FloatArray, selection: Selection, group: npt.NDArray[np.int64]) -> FloatArray:
    candidate, offset = selection[0][group], selection[1][group]
    return estimates[candidate, np.arange(len(group))] + offset  # never a booster estimate it did not have


def _interval_offsets(middle: FloatArray, y: FloatArray, group: npt.NDArray[np.int64],
                      quantiles: tuple[float, ...], min_rows: int) -> FloatArray:
    """Per group, the (low, high) conformal quantiles of the scaled residual: shape (2, groups). Without rows, a
    wide interval (±2 × the scale, about ±4 min at 15 min) rather than none."""
    groups = group_count()
    scaled = (y - np.maximum(middle, 0.0)) / _scale(middle)
    low_q, high_q = quantiles[0], quantiles[-1]
    everything = _outer(scaled, low_q, high_q) if len(y) >= 50 else np.array([-2.0, 2.0])
    offsets = np.repeat(everything[:, None], groups, axis=1)
    half = len(_GROUP_EDGES_S) + 1
    for kind in (0, 1):
        rows = (group >= half) if kind else (group < half)
        kind_offsets = _outer(scaled[rows], low_q, high_q) if rows.sum() >= min_rows else everything
        for g in range(kind * half, (kind + 1) * half):
            chosen = scaled[group == g]
            offsets[:, g] = _outer(chosen, low_q, high_q) if len(chosen) >= min_rows else kind_offsets
    return offsets


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
