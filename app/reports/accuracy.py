"""Prediction accuracy over time: logged predictions scored against the observed stop events, rolled up.

Each prediction in ``prediction_log`` is paired with the stop event of the same call (service date, trip,
stop sequence) and classified with the ETA Accuracy Benchmark's own rules (``prediction.eta.metrics``): its
bucket of time to the actual arrival and whether the error fell inside that bucket's window. The rollup
keeps counts and sums per (day, route, predictor, bucket), so the benchmark, the MAE, the early rate and
interval coverage of any grouping are exact sums. Rebuilding a day replaces its rows, so a refresh and a
rebuild are the same code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.models import AccuracyDay, PredictionLog, StopEvent
from app.reports.facts import day_type
from prediction.eta.metrics import EARLY_S, ETA_BUCKETS

__all__ = ["BEYOND", "ScoredCalls", "benchmark", "rebuild_accuracy", "score_calls"]

BEYOND = len(ETA_BUCKETS)  # bucket index of predictions 15 min or more before the arrival
FloatArray = npt.NDArray[np.float64]


class ScoredCalls:
    """Per prediction: bucket (``-1`` = not scored: made after the bus came), accurate, early, |error|,
    whether it carried an interval and whether the arrival fell inside it."""

    def __init__(self, bucket: npt.NDArray[np.int64], accurate: npt.NDArray[np.bool_], early: npt.NDArray[np.bool_],
                 abs_error_s: npt.NDArray[np.int64], with_interval: npt.NDArray[np.bool_],
                 in_interval: npt.NDArray[np.bool_]) -> None:
        self.bucket, self.accurate, self.early = bucket, accurate, early
        self.abs_error_s, self.with_interval, self.in_interval = abs_error_s, with_interval, in_interval


def score_calls(made: FloatArray, predicted: FloatArray, actual: FloatArray, lower: FloatArray,
                upper: FloatArray) -> ScoredCalls:
    """Classify each prediction (epoch seconds; NaN bounds = no interval) by the benchmark's buckets."""
    error, to_actual = actual - predicted, actual - made
    bucket = np.full(error.shape, BEYOND, dtype=np.int64)
    accurate = np.zeros(error.shape, dtype=bool)
    for index, (_label, lo_min, hi_min, early_s, late_s) in reversed(list(enumerate(ETA_BUCKETS))):
        inside = (to_actual >= lo_min * 60.0) & (to_actual < hi_min * 60.0)
        bucket[inside] = index
        accurate[inside] = (error[inside] >= early_s) & (error[inside] <= late_s)
    bucket[to_actual < 0] = -1  # the bus had already come: metrics.score_predictions leaves these out too
    with_interval = np.isfinite(lower) & np.isfinite(upper)
    in_interval = with_interval & (actual >= np.nan_to_num(lower)) & (actual <= np.nan_to_num(upper))
    return ScoredCalls(bucket, accurate, error < EARLY_S, np.rint(np.abs(error)).astype(np.int64), with_interval,
                       in_interval)


def _epoch(values: Iterable[dt.datetime | None]) -> FloatArray:
    return np.array([np.nan if v is None else (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).timestamp()
                     for v in values], dtype=np.float64)


def _calls(session: Session, day: dt.date) -> list[Any]:
    return list(session.execute(
        select(PredictionLog.route_id, PredictionLog.predictor, PredictionLog.made_at, PredictionLog.predicted_at,
               PredictionLog.lower_at, PredictionLog.upper_at, StopEvent.arrival_at)
        .join(StopEvent, (StopEvent.service_date == PredictionLog.service_date)
              & (StopEvent.trip_id == PredictionLog.trip_id)
              & (StopEvent.stop_sequence == PredictionLog.stop_sequence))
        .where(PredictionLog.service_date == day)))


def rebuild_accuracy(session: Session, dates: Iterable[dt.date]) -> int:
    """Re-score every logged prediction of ``dates`` that has an observed arrival; returns rollup rows."""
    written = 0
    for day in sorted(set(dates)):
        session.execute(delete(AccuracyDay).where(AccuracyDay.service_date == day))
        rows = _calls(session, day)
        if not rows:
            continue
        scored = score_calls(_epoch(r.made_at for r in rows), _epoch(r.predicted_at for r in rows),
                             _epoch(r.arrival_at for r in rows), _epoch(r.lower_at for r in rows),
                             _epoch(r.upper_at for r in rows))
        cells: dict[tuple[str, str, int], list[int]] = {}
        for i, row in enumerate(rows):
            bucket = int(scored.bucket[i])
            if bucket < 0:
                continue
            cell = cells.setdefault((row.route_id, row.predictor, bucket), [0, 0, 0, 0, 0, 0])
            for j, value in enumerate((1, scored.accurate[i], scored.early[i], scored.abs_error_s[i],
                                       scored.with_interval[i], scored.in_interval[i])):
                cell[j] += int(value)
        session.add_all(AccuracyDay(service_date=day, route_id=route, predictor=predictor, bucket=bucket,
                                    day_type=day_type(day), predictions=c[0], accurate=c[1], early=c[2],
                                    abs_error_s=c[3], with_interval=c[4], in_interval=c[5])
                        for (route, predictor, bucket), c in cells.items())
        written += len(cells)
    session.flush()
    return written


def benchmark(accurate_by_bucket: dict[int, tuple[int, int]]) -> tuple[dict[str, float | None], float | None]:
    """Bucket accuracies (accurate ÷ predictions, ``None`` when empty) and their mean over the buckets that
    have predictions — the benchmark's overall score, as ``prediction.eta.metrics.eta_benchmark`` defines it."""
    shares: dict[str, float | None] = {}
    for index, (label, *_window) in enumerate(ETA_BUCKETS):
        accurate, total = accurate_by_bucket.get(index, (0, 0))
        shares[label] = round(accurate / total, 4) if total else None
    scored = [v for v in shares.values() if v is not None]
    return shares, (round(sum(scored) / len(scored), 4) if scored else None)
