"""One prediction pass: the live events → ``LiveState`` snapshot → the newest model (or the fallback baseline)
→ arrays of predicted arrivals, one per downstream stop of every active run this worker owns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator

from app.realtime.cycle import CyclePredictions
from app.worker.events import LiveEvents, RunTable, make_known_events
from prediction.eta.artifacts import LoadedPredictor, load_predictor
from prediction.eta.features import KnownEvents, SegmentHistory
from prediction.eta.models import QuantileETAModel
from prediction.eta.online import OnlineSelection, arrival_keys, candidate_etas, groups_of
from prediction.eta.snapshot import LiveState
from prediction.network import Network

__all__ = ["ModelWatcher", "Predictor", "load_worker_predictor", "schedule_history"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def schedule_history(net: Network) -> SegmentHistory:
    """Segment history from the timetable alone (no observed events), for the baseline without a model."""
    ints = ("run", "trip", "visit", "slot")
    empty = make_known_events({name: np.zeros(0, dtype=np.int64 if name in ints else float)
                               for name in KnownEvents.__dataclass_fields__})
    return SegmentHistory.fit(net, empty)


@dataclass
class Predictor:
    """What the worker predicts with: a name for the log, the estimator and its segment history."""

    name: str
    estimator: BaseEstimator
    history: SegmentHistory
    file: str | None = None  # the model file it came from (None: a baseline)

    def eta(self, rows: pd.DataFrame) -> tuple[FloatArray, FloatArray | None, FloatArray | None]:
        """Seconds to arrival (median) and, for the quantile model, the interval bounds."""
        if isinstance(self.estimator, QuantileETAModel):
            low, median, high = self.estimator.predict_quantiles(rows)
            return median, low, high
        return np.asarray(self.estimator.predict(rows), dtype=float), None, None


def load_worker_predictor(folder: Path, net: Network) -> tuple[Predictor, LoadedPredictor]:
    """The newest usable model for this feed in ``folder``, else the deviation baseline on schedule history."""
    loaded = load_predictor(folder, feed_sha256=net.feed.sha256)
    if loaded.history is not None:
        name = f"model-{loaded.metadata.get('created_at', '')}"[:32]
        return Predictor(name, loaded.estimator, loaded.history, file=loaded.metadata.get("file")), loaded
    return Predictor(loaded.name, loaded.estimator, schedule_history(net)), loaded


class ModelWatcher:
    """Notices a newly trained model in ``folder`` without a restart: at most every ``every_s`` it lists the model
    files, and when the newest one is not the one it last saw, loads the newest good model for this feed. A load
    that fails or gives nothing newer (the fallback baseline, the same file) keeps the current predictor; a broken
    file is not retried until a newer one appears."""

    def __init__(self, folder: Path, net: Network, current: Predictor, *, every_s: float = 60.0) -> None:
        self.folder, self.net, self.every_s = folder, net, every_s
        self.current = current
        self._checked = -np.inf
        self._newest = self._newest_file()
        self.errors: list[str] = []

    def _newest_file(self) -> str | None:
        files = sorted(self.folder.glob("model-*.joblib")) if self.folder.is_dir() else []
        return files[-1].name if files else None

    def check(self, now: float) -> Predictor | None:
        """The new predictor when a newer model file loaded, else ``None`` (keep the current one)."""
        if now - self._checked < self.every_s:
            return None
        self._checked = now
        newest = self._newest_file()
        if newest is None or newest == self._newest:
            return None
        self._newest = newest
        try:
            predictor, loaded = load_worker_predictor(self.folder, self.net)
        except Exception as exc:  # a half-written file, a full disk: keep predicting with what we have
            self.errors.append(f"{newest}: {type(exc).__name__}: {exc}")
            return None
        self.errors.extend(loaded.skipped)
        if predictor.file is None or predictor.file == self.current.file or \
                (self.current.file is not None and predictor.file < self.current.file):
            return None
        self.current = predictor
        return predictor


def predict_cycle(net: Network, events: LiveEvents, predictor: Predictor, now: float, *,
                  max_ahead_s: float, online: OnlineSelection | None = None) -> CyclePredictions:
    """Predict every downstream stop (up to ``max_ahead_s`` of schedule ahead) of the owned active runs; with
    ``online``, what it serves per group is re-chosen hourly from the arrivals seen (``prediction/eta/online.py``)."""
    arrived = events.drain_arrivals()
    if online is not None:
        online.refresh(now)
        online.observe(arrival_keys(arrived[0], arrived[1], len(net.visit_seq)), arrived[2])
    known, runs = events.known_events(now)
    run_keys = events.known_runs()
    if not len(runs.trip):
        return _empty(now, run_keys)
    state = LiveState(net, predictor.history, known, stale_s=events.stale_s, recent_s=events.recent_s)
    rows = state.snapshot(now, max_ahead_s=max_ahead_s)
    rows = rows[rows["run"].to_numpy() < len(runs.trip)].reset_index(drop=True)  # segment-only runs: never
    if rows.empty:
        return _empty(now, run_keys)
    eta, low, high = predictor.eta(rows)
    if online is not None:
        eta, low, high = _online(net, runs, rows, now, online, eta, low, high)
    return _arrays(net, runs, rows, now, eta, low, high, run_keys)


def _online(net: Network, runs: RunTable, rows: pd.DataFrame, now: float, online: OnlineSelection,
            eta: FloatArray, low: FloatArray | None, high: FloatArray | None
            ) -> tuple[FloatArray, FloatArray | None, FloatArray | None]:
    """The served ETAs (the interval moved with them), and the cycle's candidates kept for scoring."""
    if not online.active() and not online.due(now):
        return eta, low, high  # nothing switched, nothing to keep: most cycles
    group = groups_of(rows)
    etas = candidate_etas(rows, eta)
    served = online.apply(group, etas)
    origin = _origins(runs, rows)
    online.record(now, arrival_keys(origin, rows["visit"].to_numpy(np.int64), len(net.visit_seq)), group, etas)
    shift = served - eta
    return served, None if low is None else low + shift, None if high is None else high + shift


def _origins(runs: RunTable, rows: pd.DataFrame) -> FloatArray:
    """Service-day origin of each row's trip (a block's next trip names its own)."""
    if "origin" in rows:
        return rows["origin"].to_numpy(float)
    run = rows["run"].to_numpy(np.int64)
    return runs.origin[np.where(run >= 0, run, 0)]


def _arrays(net: Network, runs: RunTable, rows: pd.DataFrame, now: float, eta: FloatArray,
            low: FloatArray | None, high: FloatArray | None, run_keys: set[tuple[int, str]]) -> CyclePredictions:
    run = rows["run"].to_numpy(np.int64)
    visit = rows["visit"].to_numpy(np.int64)
    seen = run >= 0  # rows of a block's next trip that has no event yet carry run -1
    safe = np.where(seen, run, 0)
    # newer snapshots name each row's trip and service-day origin (a bus also predicts its block's next trip)
    trip = rows["trip"].to_numpy(np.int64) if "trip" in rows else runs.trip[safe]
    origin = rows["origin"].to_numpy(float) if "origin" in rows else runs.origin[safe]
    vehicles = runs.vehicle_id[safe]
    vehicles[~seen] = None
    origins, where = np.unique(origin, return_inverse=True)
    dates = {o: d for o, d in zip(runs.origin.tolist(), runs.start_date.tolist(), strict=True)}
    start_date = np.array([dates.get(o) or _service_date(net, o) for o in origins.tolist()],
                          dtype=object)[where.reshape(-1)]
    return CyclePredictions(
        made_at=now, trip=trip, start_date=start_date, visit=visit,
        scheduled=origin + net.visit_arr[visit], predicted=now + eta,
        lower=None if low is None else now + low, upper=None if high is None else now + high,
        vehicle_id=vehicles, observed_at=np.where(seen, runs.known_at[safe], now),
        run_keys=run_keys, stalled_s=rows["stalled_s"].to_numpy(float) if "stalled_s" in rows else None,
        # the snapshot counts from the bus's last stop seen, the row's own stop included: OneBusAway's
        # numberOfStopsAway leaves it out
        stops_away=np.maximum(rows["remaining_stops"].to_numpy(np.int64) - 1, 0),
        distance_m=np.maximum(rows["remaining_dist_m"].to_numpy(float), 0.0),
    )


def _service_date(net: Network, origin: float) -> str:
    """YYYYMMDD of the service day whose GTFS time 0 is ``origin`` (noon minus 12 h, local)."""
    return (dt.datetime.fromtimestamp(origin + 12 * 3600, net.tz)).strftime("%Y%m%d")


def _empty(now: float, run_keys: set[tuple[int, str]]) -> CyclePredictions:
    none = np.zeros(0)
    return CyclePredictions(now, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64),
                            none, none, None, None, np.zeros(0, dtype=object), none, run_keys)
