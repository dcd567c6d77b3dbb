"""Backtest: train strictly before a cutoff, then replay the rest as the live service would and score it.

Every ``step`` seconds a ``LiveState`` takes in only the stop events known by then (``known_at``: when the live
service had the event), every active trip gets a row per downstream stop and per stop of the next
trip of its block, and each predictor's ETA is scored against the observed arrival with ``prediction.eta.metrics``.
Where the events come from (a temporary database in ``qala backtest``) is the caller's business.

A rider looks at a stop whether or not a prediction is shown, so the headline figures score every observed
arrival, not only the predictions made: each replay moment in the 15 minutes before an arrival is a *slot*. A
slot is scored on what the stop board showed then: the predictor's live prediction; else, as
``app/realtime/compose.py`` fills boards, the timetable's time when the run had emitted no event yet, the
predictor had nothing for the run and the scheduled time was not past; else nothing, which is inaccurate.
``eta_benchmark_live`` counts live predictions only, and ``coverage`` is the share of slots with one
(TheTransitClock monitors the share of active blocks with a predictable vehicle; this is that share per minute
before each arrival). A slot exists once the bus has been seen on the trip: from the first observed
arrival of the trip itself, or of the trip before it in the block (then it is a next-trip slot) — whether or not
the event was known yet, since the rider at the next stop waits all the same. A trip's first stop has no slot:
its arrival is the bus reaching the terminal, which the previous trip's last stop already scores, and no
predictor is asked for it. ``history_hours`` keeps only the last hours of history before the cutoff: a new city.
The model's predictions are re-chosen online hour by hour as the worker does (``serve_online``); the report keeps
the model file's own choice as ``model_file_only``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator

from prediction.eta.features import KnownEvents, SegmentHistory
from prediction.eta.metrics import eta_benchmark, prediction_coverage, score_predictions
from prediction.eta.models import BASELINES, COLD_START, QuantileETAModel, group_of
from prediction.eta.online import OnlineSelection, arrival_keys, etas_from_baselines
from prediction.eta.snapshot import LiveState
from prediction.gtfs.blocks import blocks_inferred, next_trips
from prediction.network import Network

__all__ = ["COLD_START_BASELINE", "ArrivalSlots", "Predictions", "TrainingSet", "arrival_slots", "backtest",
           "fit_predictors", "format_table", "recent_history", "replay", "score_all", "score_arrivals",
           "serve_online", "training_set"]

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[Iterable[float]], Iterable[float]]
IntArray = npt.NDArray[np.int64]
# made_at, actual arrival, predicted arrival per predictor, interval low, high (epoch s), block_ahead, arrival key
_Chunk = tuple[FloatArray, FloatArray, dict[str, FloatArray], FloatArray | None, FloatArray | None, FloatArray,
               IntArray]
SLOT_HORIZON_S = 900.0  # a rider's slot: a replay moment at most this long before an observed arrival
_MOMENTS = 10**9  # run × this + replay moment (epoch / step) names a run at a moment
# the production predictor's stand-in when a model passed in cannot be fitted on no rows: the one
# ``QuantileETAModel`` serves itself then (OneBusAway's deviation, which needs no history)
COLD_START_BASELINE = COLD_START


@dataclass
class TrainingSet:
    rows: pd.DataFrame
    target: FloatArray
    history: SegmentHistory


def _truth(known: KnownEvents, net: Network) -> pd.Series:
    return pd.Series(known.arrival, index=known.run * len(net.visit_seq) + known.visit)


def recent_history(known: KnownEvents, cutoff: float, history_hours: float | None) -> KnownEvents:
    """The events of a city that has only the last ``history_hours`` of its history before ``cutoff`` (all if
    None), counted back from the last event known before it: a gap between history and test days (Austin's 19
    days) is not history a new city would have spent."""
    if history_hours is None:
        return known
    before = known.known_at < cutoff
    last = float(known.known_at[before].max()) if before.any() else cutoff
    return known.select(~before | (known.known_at > last - 3600.0 * history_hours))


def _labelled(frame: pd.DataFrame, truth: pd.Series, net: Network) -> tuple[pd.DataFrame, FloatArray]:
    key = frame["run"].to_numpy() * len(net.visit_seq) + frame["visit"].to_numpy()
    actual = truth.reindex(key).to_numpy(float)
    keep = np.isfinite(actual) & (actual >= frame["made_at"].to_numpy(float))
    return frame[keep].reset_index(drop=True), actual[keep]


def _times(known: KnownEvents, start: float, end: float, step: float) -> FloatArray:
    return np.arange(np.ceil(start / step) * step, end, step)


def training_set(net: Network, known: KnownEvents, cutoff: float, *, step_s: float = 300.0,
                 max_rows: int = 400_000, seed: int = 0) -> TrainingSet:
    """Snapshot rows every ``step_s`` before ``cutoff``, labelled by arrivals before ``cutoff`` only.

    The segment history behind each service day's rows is fitted on the *other* days (cross-fitted by day).
    Fitted on every day, a day's historical run times would hold that day's own traversals: the model would learn
    to trust them more than they deserve on a new day, and its out-of-fold validation would flatter it.
    ``history``, which the service then predicts with, is fitted on every day."""
    past = known.select((known.known_at < cutoff) & (known.arrival < cutoff))
    history = SegmentHistory.fit(net, past)
    truth = _truth(past, net)
    first = float(past.known_at.min()) if len(past) else cutoff  # no history: no moment to learn from
    moments = _times(past, first, cutoff, step_s)
    day, event_day = _service_day(moments, net), _service_day(past.arrival, net)
    parts, targets = [], []
    for d in np.unique(day):
        others = event_day != d
        crossed = SegmentHistory.fit(net, past.select(others)) if others.any() and not others.all() else history
        state = LiveState(net, crossed, past)
        for now in moments[day == d]:
            frame, actual = _labelled(state.snapshot(float(now), max_ahead_s=3600.0), truth, net)
            parts.append(frame)
            targets.append(actual - frame["made_at"].to_numpy(float))
    if not parts:  # a state without events has no bus: its snapshot is the empty frame with every column
        parts, targets = [LiveState(net, history, past).snapshot(cutoff)], [np.zeros(0)]
    rows = pd.concat(parts, ignore_index=True)
    target = np.concatenate(targets)
    if len(rows) > max_rows:
        pick = np.sort(np.random.default_rng(seed).choice(len(rows), max_rows, replace=False))
        rows, target = rows.iloc[pick].reset_index(drop=True), target[pick]
    return TrainingSet(rows=rows, target=target, history=history)


def _service_day(epoch: FloatArray, net: Network) -> IntArray:
    """Local service day number of each moment (a service day runs from 03:00 to 03:00)."""
    local = pd.DatetimeIndex(pd.to_datetime(epoch, unit="s", utc=True)).tz_convert(net.tz) - pd.Timedelta(hours=3)
    return ((local.tz_localize(None) - pd.Timestamp(0)) // pd.Timedelta(days=1)).to_numpy(np.int64)


@dataclass
class Predictions:
    """Scored predictions of one replay: per predictor the predicted arrival (epoch s), plus the interval."""

    made_at: FloatArray
    actual: FloatArray
    predicted: dict[str, FloatArray]
    lower: FloatArray | None
    upper: FloatArray | None
    block_ahead: FloatArray  # 1 for rows of the next trip of the bus's block
    arrival_key: IntArray  # run × visits + visit: which observed arrival the row predicts


def _predict_all(predictors: dict[str, BaseEstimator], frame: pd.DataFrame
                 ) -> tuple[dict[str, FloatArray], FloatArray | None, FloatArray | None]:
    now = frame["made_at"].to_numpy(float)
    out, lower, upper = {}, None, None
    for name, predictor in predictors.items():
        if hasattr(predictor, "predict_quantiles"):
            quantiles = predictor.predict_quantiles(frame)  # once: the median and the interval
            out[name] = now + quantiles[len(quantiles) // 2]
            lower, upper = now + quantiles[0], now + quantiles[-1]
        else:
            out[name] = now + predictor.predict(frame)
    return out, lower, upper


def replay(net: Network, known: KnownEvents, history: SegmentHistory, predictors: dict[str, BaseEstimator],
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
            key = frame["run"].to_numpy(np.int64) * len(net.visit_seq) + frame["visit"].to_numpy(np.int64)
            chunks.append((frame["made_at"].to_numpy(float), actual, *_predict_all(predictors, frame),
                           frame["block_ahead"].to_numpy(float), key))
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
    def cat(arrays: list[Any]) -> Any:
        return np.concatenate(arrays) if arrays else np.zeros(0)

    lowers = [c[3] for c in chunks if c[3] is not None]
    uppers = [c[4] for c in chunks if c[4] is not None]
    return Predictions(
        made_at=cat([c[0] for c in chunks]), actual=cat([c[1] for c in chunks]),
        predicted={n: cat([c[2][n] for c in chunks]) for n in names},
        lower=cat(lowers) if lowers else None, upper=cat(uppers) if uppers else None,
        block_ahead=cat([c[5] for c in chunks]), arrival_key=cat([c[6] for c in chunks]).astype(np.int64),
    )


def fit_predictors(training: TrainingSet, model: BaseEstimator | None = None) -> dict[str, BaseEstimator]:
    """The model (fitted on the training rows) and the three baselines, in report order.

    With no training rows at all (a city with no history) a model that cannot be fitted on nothing is replaced
    by ``COLD_START_BASELINE``, which needs no history: the production slot still answers every rider."""
    estimator = model if model is not None else QuantileETAModel()
    fitted: dict[str, BaseEstimator] = {}
    try:
        fitted["model"] = estimator.fit(training.rows, training.target)
    except ValueError:
        if len(training.rows):
            raise
        fitted["model"] = BASELINES[COLD_START_BASELINE]().fit(training.rows, training.target)
    for name, cls in BASELINES.items():
        fitted[name] = cls().fit(training.rows, training.target)
    return fitted


def serve_online(net: Network, known: KnownEvents, result: Predictions, start: float, step_s: float,
                 selection: OnlineSelection | None = None) -> OnlineSelection:
    """Replace the model's predictions in ``result`` by what the service serves with online re-selection
    (``prediction/eta/online.py``), driving the selection as the worker does: at each hour's start ``refresh``, the
    hour's rows ``apply``-ed, a whole replay moment ``record``-ed once per ``sample_s``, and the arrivals
    ``observe``-d as their events become known. The interval moves with the served estimate."""
    selection = selection if selection is not None else OnlineSelection()
    if not len(result.made_at):
        return selection
    width = len(net.visit_seq)
    runs = int(known.run.max()) + 1
    origin = np.zeros(runs)
    origin[known.run] = known.origin
    run = result.arrival_key // width
    keys = arrival_keys(origin[run], result.arrival_key % width, width)
    made = result.made_at
    etas = etas_from_baselines(result.predicted["model"] - made,
                               {name: result.predicted[name] - made for name in ("kalman", "deviation", "schedule")})
    group = group_of(result.predicted["kalman"] - made, result.block_ahead == 1)
    event_keys = arrival_keys(known.origin, known.visit, width)
    order = np.argsort(made, kind="stable")
    served = result.predicted["model"].copy()
    hour = start
    while hour <= made[order[-1]]:
        selection.refresh(hour)
        lo, hi = np.searchsorted(made[order], [hour, hour + selection.every_s])
        rows = order[lo:hi]
        if len(rows):
            served[rows] = made[rows] + selection.apply(group[rows], etas[:, rows])
            sampled = np.floor((made[rows] - start) / selection.sample_s) != np.floor(
                (made[rows] - step_s - start) / selection.sample_s)  # the first moment of each sample period
            take = rows[sampled]
            selection.record(hour, keys[take], group[take], etas[:, take], made[take], force=True)
        learnt = (known.known_at >= hour) & (known.known_at < hour + selection.every_s)
        selection.observe(event_keys[learnt], known.arrival[learnt])
        hour += selection.every_s
    shift = served - result.predicted["model"]
    result.predicted["model"] = served
    if result.lower is not None and result.upper is not None:
        result.lower, result.upper = result.lower + shift, result.upper + shift
    return selection


@dataclass
class ArrivalSlots:
    """Every (observed arrival, replay moment) pair a rider could have looked at, one array entry per slot."""

    arrival_key: IntArray  # per arrival with slots: run × visits + visit, as ``Predictions.arrival_key``
    arrival: IntArray  # per slot: index into ``arrival_key``
    moment: IntArray  # per slot: replay moment as a multiple of the step
    to_actual: FloatArray  # per slot: seconds from the moment to the arrival, in [0, SLOT_HORIZON_S)
    next_trip: npt.NDArray[np.bool_]  # per slot: the bus was known on the trip before only (its block)
    first_stops: int  # observed arrivals at a trip's first stop, left out
    scheduled: FloatArray | None = None  # per slot: the timetable's arrival (epoch s)
    heard: npt.NDArray[np.bool_] | None = None  # per slot: an event of the run had been emitted by then


def _known_from(net: Network, known: KnownEvents) -> tuple[FloatArray, FloatArray]:
    """Per run: when the bus was first seen on it (its first observed arrival), and when on the previous trip of
    its block (inf when never, or when the trip has none)."""
    runs = int(known.run.max()) + 1 if len(known) else 0
    own = np.full(runs, np.inf)
    np.minimum.at(own, known.run, known.arrival)
    trip, origin = np.zeros(runs, dtype=np.int64), np.zeros(runs)
    trip[known.run], origin[known.run] = known.trip, known.origin
    following = next_trips(net)
    previous = np.full(len(net.trip_ids), -1, dtype=np.int64)
    previous[following[following >= 0]] = np.flatnonzero(following >= 0)
    keys = origin.astype(np.int64) * len(net.trip_ids) + trip
    keys[~np.isfinite(own)] = -1 - np.flatnonzero(~np.isfinite(own))  # runs without events: unique, unmatched
    keys = pd.Index(keys)
    before = keys.get_indexer(origin.astype(np.int64) * len(net.trip_ids) + previous[trip])
    before[previous[trip] < 0] = -1
    return own, np.where(before >= 0, own[np.maximum(before, 0)], np.inf)


def arrival_slots(net: Network, known: KnownEvents, start: float, end: float, step_s: float) -> ArrivalSlots:
    """The slots of every arrival observed from ``start``: the replay moments (multiples of ``step_s`` in
    [start, end)) less than ``SLOT_HORIZON_S`` before it at which its bus had been seen on the trip or on the
    one before it in the block. Numpy only: Almaty's week holds 8.5 million."""
    first_stop = np.zeros(len(net.visit_seq), dtype=bool)
    first_stop[net.visit_ptr[:-1]] = True
    observed = known.arrival >= start
    pick = np.flatnonzero(observed & ~first_stop[known.visit])
    arrival = known.arrival[pick]
    low = np.maximum(np.floor((arrival - SLOT_HORIZON_S) / step_s) + 1, np.ceil(start / step_s)).astype(np.int64)
    high = np.minimum(np.floor(arrival / step_s), np.ceil(end / step_s) - 1).astype(np.int64)
    counts = np.maximum(high - low + 1, 0)
    owner = np.repeat(np.arange(len(pick)), counts)
    moment = np.repeat(low, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    own, before = _known_from(net, known)
    run, at = known.run[pick][owner], moment * step_s
    current = own[run] <= at
    keep = current | (before[run] <= at)
    owner, moment, run, at = owner[keep], moment[keep], run[keep], at[keep]
    heard = np.full(len(own), np.inf)
    np.minimum.at(heard, known.run, known.known_at)
    origin = np.zeros(len(own))
    origin[known.run] = known.origin
    return ArrivalSlots(
        arrival_key=known.run[pick] * len(net.visit_seq) + known.visit[pick], arrival=owner, moment=moment,
        to_actual=arrival[owner] - at, next_trip=~current[keep],
        first_stops=int((observed & first_stop[known.visit]).sum()),
        scheduled=origin[run] + net.visit_arr[known.visit[pick][owner]], heard=heard[run] <= at)


def _slot_rows(result: Predictions, slots: ArrivalSlots, step_s: float) -> tuple[IntArray, IntArray]:
    """(slot, prediction row) pairs: the row made at each slot's moment for its arrival."""
    if not len(slots.moment):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    first, width = int(slots.moment.min()), int(slots.moment.max() - slots.moment.min()) + 1
    ids = slots.arrival * width + (slots.moment - first)  # ascending: slots are built arrival by arrival
    near = np.flatnonzero(result.actual - result.made_at < SLOT_HORIZON_S)  # most rows are further ahead
    owner = pd.Index(slots.arrival_key).get_indexer(result.arrival_key[near])  # type: ignore[arg-type]  # any array-like
    moment = np.rint(result.made_at[near] / step_s).astype(np.int64) - first
    valid = (owner >= 0) & (moment >= 0) & (moment < width)
    row = near[valid]
    wanted = owner[valid] * width + moment[valid]
    pos = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    hit = ids[pos] == wanted
    return pos[hit], row[hit]


def _timetable_shown(result: Predictions, slots: ArrivalSlots, step_s: float, predicted: FloatArray,
                     width: int) -> npt.NDArray[np.bool_]:
    """Per slot: whether the stop board showed the timetable's time for it, as ``app/realtime/compose.py``
    builds boards: the run had emitted no event yet, the predictor had no row for the run at that moment, and
    the scheduled arrival was not yet past."""
    if slots.scheduled is None or slots.heard is None:
        return np.zeros(len(slots.moment), dtype=bool)
    made = np.isfinite(predicted)
    run_moment = (result.arrival_key[made] // width) * _MOMENTS + np.rint(result.made_at[made] / step_s)
    slot_run = slots.arrival_key[slots.arrival] // width
    predicted_run = np.isin(slot_run * _MOMENTS + slots.moment, run_moment.astype(np.int64))
    return ~slots.heard & ~predicted_run & (slots.scheduled >= slots.moment * step_s)


def score_arrivals(result: Predictions, slots: ArrivalSlots, step_s: float,
                   parts: Mapping[str, npt.NDArray[np.bool_] | None], *, visits: int = 0
                   ) -> dict[str, dict[str, dict[str, Any]]]:
    """Per part of the slots (``None``: all of them) and per predictor: the ETA benchmark over every slot as the
    stop board showed it (the predictor's live prediction, else the timetable's row where the board showed one,
    else nothing = inaccurate), the same over live predictions alone, the coverage (slots with a live
    prediction), and how many slots there were. ``visits`` (the feed's stop visits) numbers runs for the
    timetable rule; 0 leaves the timetable out."""
    slot, row = _slot_rows(result, slots, step_s)
    out: dict[str, dict[str, dict[str, Any]]] = {part: {} for part in parts}
    actual = slots.moment * step_s + slots.to_actual
    for name, predicted in result.predicted.items():
        error = np.full(len(slots.moment), np.nan)
        error[slot] = result.actual[row] - predicted[row]  # NaN stays where the predictor abstained
        shown = error.copy()
        if visits and slots.scheduled is not None:
            board = _timetable_shown(result, slots, step_s, predicted, visits) & ~np.isfinite(error)
            shown[board] = actual[board] - slots.scheduled[board]
        for part, pick in parts.items():
            chosen = slice(None) if pick is None else pick
            err, to_actual = error[chosen], slots.to_actual[chosen]
            out[part][name] = {"eta_benchmark": eta_benchmark(shown[chosen], to_actual),
                               "eta_benchmark_live": eta_benchmark(err, to_actual),
                               "coverage": prediction_coverage(np.isfinite(err), to_actual),
                               "timetable_shown": prediction_coverage(
                                   np.isfinite(shown[chosen]) & ~np.isfinite(err), to_actual),
                               "slots": len(err)}
    return out


def backtest(net: Network, known: KnownEvents, cutoff: float, *, step_s: float = 30.0,
             train_step_s: float = 300.0, progress: Progress | None = None,
             model: BaseEstimator | None = None, history_hours: float | None = None, online: bool = True
             ) -> dict[str, object]:
    """Train before ``cutoff`` (snapshots every ``train_step_s``), replay after it every ``step_s``, and return
    the report in the issue's JSON shape (plus ``current_trips`` / ``next_trips`` splits when a feed has blocks).

    ``history_hours`` keeps only the events of the last that many hours before ``cutoff`` (0: none, a new
    city), for training, the segment history and the replay alike. Per predictor, ``eta_benchmark`` scores every
    slot of every observed arrival as the board showed it, ``eta_benchmark_live`` and ``coverage`` the live
    predictions among them, ``eta_benchmark_predictions_only`` the predictions made. With ``online`` the
    model's predictions are re-chosen hourly from the arrivals seen, as the worker does."""
    known = recent_history(known, cutoff, history_hours)
    training = training_set(net, known, cutoff, step_s=train_step_s)
    predictors = fit_predictors(training, model)
    end = float(known.known_at.max()) + step_s
    result = replay(net, known, training.history, predictors, cutoff, end, step_s=step_s, progress=progress)
    file_only = result.predicted["model"].copy()
    selection = serve_online(net, known, result, cutoff, step_s) if online else None
    slots = arrival_slots(net, known, cutoff, end, step_s)
    stand_in = isinstance(predictors["model"], BASELINES[COLD_START_BASELINE])
    tz = net.tz
    report: dict[str, object] = {
        "train_until": pd.Timestamp(cutoff, unit="s", tz="UTC").tz_convert(tz).isoformat(),
        "test_from": pd.Timestamp(cutoff, unit="s", tz="UTC").tz_convert(tz).isoformat(),
        "test_to": pd.Timestamp(end, unit="s", tz="UTC").tz_convert(tz).isoformat(),
        "history_hours": history_hours, "model_estimator": type(predictors["model"]).__name__,
        "model_cold_start": COLD_START_BASELINE if stand_in else None,
        "arrivals_observed": int((known.arrival >= cutoff).sum()),
        "arrivals_with_slots": len(np.unique(slots.arrival)), "first_stops_left_out": slots.first_stops,
        "training_rows": len(training.rows), "kalman_gain": training.history.gain,
        "blocks": "inferred" if blocks_inferred(net) else "feed",
    }
    if isinstance(predictors["model"], QuantileETAModel):
        report["model_selection"] = predictors["model"].selection_table()
    if selection is not None:
        report["online_selection"] = selection.table()
        file_rows = Predictions(result.made_at, result.actual, {"model": file_only}, None, None, result.block_ahead,
                                result.arrival_key)
        report["model_file_only"] = score_arrivals(file_rows, slots, step_s, {"all": None},
                                                   visits=len(net.visit_seq))["all"]["model"]
    following = result.block_ahead == 1
    split = bool(following.any() or slots.next_trip.any())
    parts: dict[str, npt.NDArray[np.bool_] | None] = {"predictors": None}
    if split:
        parts |= {"next_trips": slots.next_trip, "current_trips": ~slots.next_trip}
    riders = score_arrivals(result, slots, step_s, parts, visits=len(net.visit_seq))
    made = {"predictors": score_all(result)}
    if split:
        made |= {"next_trips": score_all(result, following), "current_trips": score_all(result, ~following)}
    for part, scores in made.items():
        report[part] = {name: _with_slots(figures, riders[part][name]) for name, figures in scores.items()}
    return report


def _with_slots(made: Any, riders: dict[str, object]) -> dict[str, object]:
    """A predictor's figures on its predictions, with the benchmark over every slot in front."""
    return {**made, "eta_benchmark": riders["eta_benchmark"], "eta_benchmark_live": riders["eta_benchmark_live"],
            "eta_benchmark_predictions_only": made["eta_benchmark"], "coverage": riders["coverage"],
            "timetable_shown": riders["timetable_shown"], "slots": riders["slots"]}


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
    """A plain-text table per predictor: the ETA benchmark over every slot as the board showed it (overall and
    per bucket), over every slot counting live predictions only, over the predictions made only, the share of
    slots with a live prediction, MAE per horizon, early rate and interval coverage."""
    head = (f"{'predictor':<10}{'slots':>9}{'ETA':>7}{'0-3':>7}{'3-6':>7}{'6-10':>7}{'10-15':>7}{'live':>7}{'made':>7}"
            f"{'shown':>7}{'MAE0-5':>8}{'5-10':>6}{'10-15':>6}{'15-30':>6}{'early':>7}{'int80':>7}")
    lines = [head]
    for name, p in report["predictors"].items():
        eta, mae = p["eta_benchmark"], p["mae_s"]
        lines.append(
            f"{name:<10}{p.get('slots', p['n']):>9}{_pct(eta['overall']):>7}"
            + "".join(f"{_pct(eta[b]):>7}" for b in ("0-3", "3-6", "6-10", "10-15"))
            + f"{_pct(p.get('eta_benchmark_live', eta)['overall']):>7}"
            + f"{_pct(p.get('eta_benchmark_predictions_only', eta)['overall']):>7}"
            + f"{_pct(p.get('coverage', {}).get('overall')):>7}{_sec(mae['0-5']):>8}"
            + "".join(f"{_sec(mae[b]):>6}" for b in ("5-10", "10-15", "15-30"))
            + f"{_pct(p['early_rate']):>7}{_pct(p['interval_coverage']):>7}")
    return "\n".join(lines)
