"""The prediction log: a sample of what the worker published — each trip's downstream stops at most once per
``every_s`` — written in bulk by a background thread so that database latency never delays a cycle."""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.models import PredictionLog
from app.realtime.catalog import StaticCatalog
from app.realtime.cycle import CyclePredictions
from prediction.network import Network

__all__ = ["PredictionLogSampler"]


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(round(float(epoch), 3), dt.UTC)


@dataclass(frozen=True)
class _Sample:
    """One cycle's sampled predictions as arrays; ``rows`` turns them into ``prediction_log`` rows."""

    made_at: float
    predictor: str
    trip: npt.NDArray[np.int64]
    start_date: npt.NDArray[np.object_]
    visit: npt.NDArray[np.int64]
    vehicle_id: npt.NDArray[np.object_]
    predicted: npt.NDArray[np.float64]
    lower: npt.NDArray[np.float64] | None
    upper: npt.NDArray[np.float64] | None
    net: Network
    catalog: StaticCatalog

    def rows(self) -> list[dict[str, Any]]:
        net, made_at = self.net, _utc(self.made_at)
        out = []
        for i, (trip, day, visit) in enumerate(zip(self.trip.tolist(), self.start_date.tolist(),
                                                   self.visit.tolist(), strict=True)):
            trip_id = str(net.trip_ids[trip])
            vehicle = self.vehicle_id[i]
            out.append({
                "made_at": made_at, "service_date": dt.date(int(day[:4]), int(day[4:6]), int(day[6:8])),
                "trip_id": trip_id, "route_id": self.catalog.trips[trip_id].route_id,
                "stop_id": str(net.stop_ids[net.visit_stop[visit]]), "stop_sequence": int(net.visit_seq[visit]),
                "vehicle_id": None if vehicle is None else str(vehicle), "predictor": self.predictor,
                "predicted_at": _utc(self.predicted[i]),
                "lower_at": None if self.lower is None else _utc(self.lower[i]),
                "upper_at": None if self.upper is None else _utc(self.upper[i]),
            })
        return out


class PredictionLogSampler:
    """Chooses which predictions to log and stores them; ``flush`` waits until everything queued is written."""

    def __init__(self, session_factory: Callable[[], Session], *, every_s: float = 60.0,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.session_factory, self.every_s = session_factory, every_s
        self.on_error = on_error
        self._last: dict[tuple[int, str], float] = {}
        self._queue: queue.Queue[_Sample | None] = queue.Queue(maxsize=100)
        self._thread = threading.Thread(target=self._drain, name="prediction-log", daemon=True)
        self._thread.start()
        self.written = 0
        self.failed = 0

    def offer(self, net: Network, catalog: StaticCatalog, p: CyclePredictions, predictor: str) -> int:
        """Queue the predictions of trips not logged in the last ``every_s``; returns how many rows."""
        if not len(p):
            return 0
        now = p.made_at
        days, day_code = np.unique(p.start_date.astype(str), return_inverse=True)
        run = p.trip * len(days) + day_code.reshape(-1)
        runs, first = np.unique(run, return_index=True)
        keys = list(zip(p.trip[first].tolist(), days[day_code.reshape(-1)[first]].tolist(), strict=True))
        due = np.array([now - self._last.get(k, -np.inf) >= self.every_s for k in keys], dtype=bool)
        if not due.any():
            return 0
        for k, d in zip(keys, due.tolist(), strict=True):
            if d:
                self._last[k] = now
        self._last = {k: t for k, t in self._last.items() if now - t < 4 * 3600}
        chosen = np.flatnonzero(np.isin(run, runs[due]))
        known = np.array([catalog.trips.get(t) is not None for t in net.trip_ids[p.trip[chosen]].tolist()],
                         dtype=bool)
        chosen = chosen[known]
        if not len(chosen):
            return 0
        # the rows themselves are built by the writer thread: the cycle only hands over arrays
        batch = _Sample(made_at=now, predictor=predictor, trip=p.trip[chosen], start_date=p.start_date[chosen],
                        visit=p.visit[chosen], vehicle_id=p.vehicle_id[chosen], predicted=p.predicted[chosen],
                        lower=None if p.lower is None else p.lower[chosen],
                        upper=None if p.upper is None else p.upper[chosen], net=net, catalog=catalog)
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            self.failed += len(chosen)  # the database is far behind: drop a sample rather than stall cycles
            return 0
        return len(chosen)

    def _drain(self) -> None:
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                rows = batch.rows()
                with self.session_factory() as session:
                    session.execute(insert(PredictionLog), rows)
                    session.commit()
                self.written += len(rows)
            except Exception as exc:  # the log is a sample: a failed batch is counted and reported, not fatal
                self.failed += len(batch.trip) if batch is not None else 0
                if self.on_error is not None:
                    self.on_error(exc)
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        self._queue.join()

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._thread.join(timeout=10)
