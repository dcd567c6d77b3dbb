"""Backtest: train strictly before a cutoff, then replay the rest as the live service would and score it.

Every ``step`` seconds a ``LiveState`` takes in only the stop events known by then (``known_at`` = the first ping
of the vehicle after the departure), every active trip gets a row per downstream stop and per stop of the next
trip of its block, and each predictor's ETA is scored against the observed arrival with ``prediction.metrics``.
Where the events come from (a temporary database in ``qala backtest``) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator

from prediction.features import KnownEvents, SegmentHistory
from prediction.metrics import score_predictions
from prediction.models import BASELINES, QuantileETAModel
from prediction.predict_snapshot import LiveState
from prediction.sim_network import SimNetwork

__all__ = ["Predictions", "TrainingSet", "backtest", "fit_predictors", "format_table", "replay", "score_all",
           "training_set"]

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[Iterable[float]], Iterable[float]]
# made_at, actual arrival, predicted arrival per predictor, interval low, high (epoch s), block_ahead
_Chunk = tuple[FloatArray, FloatArray, dict[str, FloatArray], FloatArray | None, FloatArray | None, FloatArray]


@dataclass
class TrainingSet:
    rows: pd.DataFrame
    target: FloatArray
    history: SegmentHistory


def _truth(known: KnownEvents, net: SimNetwork) -> pd.Series:
    return pd.Series(known.arrival, index=known.run * len(net.visit_seq) + known.visit)


def _labelled(frame: pd.DataFrame, truth: pd.Series, net: SimNetwork) -> tuple[pd.DataFrame, FloatArray]:
    key = frame["run"].to_numpy() * len(net.visit_seq) + frame["visit"].to_numpy()
    actual = truth.reindex(key).to_numpy(float)
    keep = np.isfinite(actual) & (actual >= frame["made_at"].to_numpy(float))
    return frame[keep].reset_index(drop=True), actual[keep]


def _times(known: KnownEvents, start: float, end: float, step: float) -> FloatArray:
    return np.arange(np.ceil(start / step) * step, end, step)


def training_set(net: SimNetwork, known: KnownEvents, cutoff: float, *, step_s: float = 300.0,
                 max_rows: int = 400_000, seed: int = 0) -> TrainingSet:
    """Snapshot rows every ``step_s`` before ``cutoff``, labelled by arrivals before ``cutoff`` only."""
    past = known.select((known.known_at < cutoff) & (known.arrival < cutoff))
    history = SegmentHistory.fit(net, past)
    state, truth = LiveState(net, history, past), _truth(past, net)
    parts, targets = [], []
    for now in _times(past, float(past.known_at.min()), cutoff, step_s):
        frame, actual = _labelled(state.snapshot(float(now), max_ahead_s=3600.0), truth, net)
        parts.append(frame)
        targets.append(actual - frame["made_at"].to_numpy(float))
    rows = pd.concat(parts, ignore_index=True)
    target = np.concatenate(targets)
    if len(rows) > max_rows:
        pick = np.sort(np.random.default_rng(seed).choice(len(rows), max_rows, replace=False))
        rows, target = rows.iloc[pick].reset_index(drop=True), target[pick]
    return TrainingSet(rows=rows, target=target, history=history)


@dataclass
class Predictions:
    """Scored predictions of one replay: per predictor the predicted arrival (epoch s), plus the interval."""

    made_at: FloatArray
    actual: FloatArray
    predicted: dict[str, FloatArray]
    lower: FloatArray | None
    upper: FloatArray | None
    block_ahead: FloatArray  # 1 for rows of the next trip of the bus's block


def _predict_all(predictors: dict[str, BaseEstimator], frame: pd.DataFrame
                 ) -> tuple[dict[str, FloatArray], FloatArray | None, FloatArray | None]:
    now = frame["made_at"].to_numpy(float)
    out, lower, upper = {}, None, None
    for name, predictor in predictors.items():
        if isinstance(predictor, QuantileETAModel):
            quantiles = predictor.predict_quantiles(frame)  # once: the median and the interval
            out[name] = now + quantiles[len(quantiles) // 2]
            lower, upper = now + quantiles[0], now + quantiles[-1]
        else:
            out[name] = now + predictor.predict(frame)
    return out, lower, upper


def replay(net: SimNetwork, known: KnownEvents, history: SegmentHistory, predictors: dict[str, BaseEstimator],
           start: float, end: float, *, step_s: float = 30.0, progress: Progress | None = None,
           batch_rows: int = 200_000) -> Predictions:
    """Predict every ``step_s`` in [start, end) from what was known at each moment; keep the scorable rows."""
    state, truth = LiveState(net, history, known), _truth(known, net)
    times: Iterable[float] = _times(known, start, end, step_s)
    if progress is not None:
        times = progress(times)
    pending: list[pd.DataFrame] = []
    chunks: list[_Chunk] = []

    def flush() -> None:
        if pending:
            frame, actual = _labelled(pd.concat(pending, ignore_index=True), truth, net)
            chunks.append((frame["made_at"].to_numpy(float), actual, *_predict_all(predictors, frame),
                           frame["block_ahead"].to_numpy(float)))
            pending.clear()

    buffered = 0
    for now in times:
        rows = state.snapshot(float(now), max_ahead_s=3600.0)
        pending.append(rows)
        buffered += len(rows)
        if buffered >= batch_rows:
            flush()
            buffered = 0
    flush()
    return _merge(chunks, list(predictors))


def _merge(chunks: list[_Chunk], names: list[str]) -> Predictions:
    def cat(arrays: list[FloatArray]) -> FloatArray:
        return np.concatenate(arrays) if arrays else np.zeros(0)

    lowers = [c[3] for c in chunks if c[3] is not None]
    uppers = [c[4] for c in chunks if c[4] is not None]
    return Predictions(
        made_at=cat([c[0] for c in chunks]), actual=cat([c[1] for c in chunks]),
        predicted={n: cat([c[2][n] for c in chunks]) for n in names},
        lower=cat(lowers) if lowers else None, upper=cat(uppers) if uppers else None,
        block_ahead=cat([c[5] for c in chunks]),
    )


def fit_predictors(training: TrainingSet, model: QuantileETAModel | None = None) -> dict[str, BaseEstimator]:
    """The model (fitted on the training rows) and the three baselines, in report order."""
    fitted: dict[str, BaseEstimator] = {"model": (model or QuantileETAModel()).fit(training.rows, training.target)}
    for name, cls in BASELINES.items():
        fitted[name] = cls().fit(training.rows, training.target)
    return fitted


def backtest(net: SimNetwork, known: KnownEvents, cutoff: float, *, step_s: float = 30.0,
             train_step_s: float = 300.0, progress: Progress | None = None,
             model: QuantileETAModel | None = None) -> dict[str, object]:
    """Train before ``cutoff`` (snapshots every ``train_step_s``), replay after it every ``step_s``, and return
    the report in the issue's JSON shape (plus ``current_trips`` / ``next_trips`` splits when a feed has blocks)."""
    training = training_set(net, known, cutoff, step_s=train_step_s)
    predictors = fit_predictors(training, model)
    end = float(known.known_at.max()) + step_s
    result = replay(net, known, training.history, predictors, cutoff, end, step_s=step_s, progress=progress)
    tz = net.tz
    observed = int(((known.arrival >= cutoff)).sum())
    report: dict[str, object] = {
        "train_until": pd.Timestamp(cutoff, unit="s", tz="UTC").tz_convert(tz).isoformat(),
        "test_from": pd.Timestamp(cutoff, unit="s", tz="UTC").tz_convert(tz).isoformat(),
        "test_to": pd.Timestamp(end, unit="s", tz="UTC").tz_convert(tz).isoformat(),
        "arrivals_observed": observed, "training_rows": len(training.rows), "kalman_gain": training.history.gain,
        "predictors": {},
    }
    report["predictors"] = score_all(result)
    following = result.block_ahead == 1
    if following.any():
        report["next_trips"] = score_all(result, following)
        report["current_trips"] = score_all(result, ~following)
    return report


def score_all(result: Predictions, rows: npt.NDArray[np.bool_] | None = None) -> dict[str, object]:
    """Every predictor's AccuracyReport (as a dict) on ``rows`` of the replay (all rows when None)."""
    pick = np.ones(len(result.made_at), dtype=bool) if rows is None else rows
    out: dict[str, object] = {}
    for name, predicted in result.predicted.items():
        low, high = (result.lower, result.upper) if name == "model" else (None, None)
        out[name] = score_predictions(result.made_at[pick], predicted[pick], result.actual[pick],
                                      None if low is None else low[pick], None if high is None else high[pick]
                                      ).as_dict()
    return out


def _pct(value: object) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"  # type: ignore[arg-type]


def _sec(value: object) -> str:
    return "—" if value is None else f"{float(value):.0f}"  # type: ignore[arg-type]


def format_table(report: Mapping[str, Any]) -> str:
    """A plain-text table: ETA benchmark per bucket, MAE per horizon, early rate and coverage per predictor."""
    head = (f"{'predictor':<10}{'n':>9}{'ETA':>8}{'0-3':>7}{'3-6':>7}{'6-10':>7}{'10-15':>7}"
            f"{'MAE0-5':>8}{'5-10':>6}{'10-15':>6}{'15-30':>6}{'P90 0-5':>8}{'early':>7}{'cover':>7}")
    lines = [head]
    for name, p in report["predictors"].items():
        eta, mae = p["eta_benchmark"], p["mae_s"]
        lines.append(
            f"{name:<10}{p['n']:>9}{_pct(eta['overall']):>8}" + "".join(f"{_pct(eta[b]):>7}" for b in
                                                                       ("0-3", "3-6", "6-10", "10-15"))
            + f"{_sec(mae['0-5']):>8}" + "".join(f"{_sec(mae[b]):>6}" for b in ("5-10", "10-15", "15-30"))
            + f"{_sec(p['p90_abs_s']['0-5']):>8}{_pct(p['early_rate']):>7}{_pct(p['interval_coverage']):>7}")
    return "\n".join(lines)
