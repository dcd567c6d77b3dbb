"""The prediction log: a sample of what the worker published — each trip's downstream stops at most once per
``every_s`` — written in bulk by a background thread so that database latency never delays a cycle."""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.models import PredictionLog
from app.realtime.catalog import StaticCatalog
from app.worker.predict import CyclePredictions
from prediction.sim_network import SimNetwork

__all__ = ["PredictionLogSampler"]


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(round(float(epoch), 3), dt.UTC)


class PredictionLogSampler:
    """Chooses which predictions to log and stores them; ``flush`` waits until everything queued is written."""

    def __init__(self, session_factory: Callable[[], Session], *, every_s: float = 60.0,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.session_factory, self.every_s = session_factory, every_s
        self.on_error = on_error
        self._last: dict[tuple[int, str], float] = {}
        self._queue: queue.Queue[list[dict[str, Any]] | None] = queue.Queue(maxsize=100)
        self._thread = threading.Thread(target=self._drain, name="prediction-log", daemon=True)
        self._thread.start()
        self.written = 0
        self.failed = 0

    def offer(self, net: SimNetwork, catalog: StaticCatalog, p: CyclePredictions, predictor: str) -> int:
        """Queue the predictions of trips not logged in the last ``every_s``; returns how many rows."""
        if not len(p):
            return 0
        now = p.made_at
        keys = list(zip(p.trip.tolist(), p.start_date.tolist(), strict=True))
        due = {k for k in set(keys) if now - self._last.get(k, -np.inf) >= self.every_s}
        if not due:
            return 0
        for k in due:
            self._last[k] = now
        self._last = {k: t for k, t in self._last.items() if now - t < 4 * 3600}
        made_at = _utc(now)
        rows = []
        for i, key in enumerate(keys):
            if key not in due:
                continue
            trip_id = str(net.trip_ids[key[0]])
            trip = catalog.trips.get(trip_id)
            if trip is None:
                continue
            day = key[1]
            visit = int(p.visit[i])
            rows.append({
                "made_at": made_at, "service_date": dt.date(int(day[:4]), int(day[4:6]), int(day[6:8])),
                "trip_id": trip_id, "route_id": trip.route_id, "stop_id": str(net.stop_ids[net.visit_stop[visit]]),
                "stop_sequence": int(net.visit_seq[visit]),
                "vehicle_id": None if p.vehicle_id[i] is None else str(p.vehicle_id[i]), "predictor": predictor,
                "predicted_at": _utc(p.predicted[i]),
                "lower_at": None if p.lower is None else _utc(p.lower[i]),
                "upper_at": None if p.upper is None else _utc(p.upper[i]),
            })
        if rows:
            try:
                self._queue.put_nowait(rows)
            except queue.Full:
                self.failed += len(rows)  # the database is far behind: drop a sample rather than stall cycles
                return 0
        return len(rows)

    def _drain(self) -> None:
        while True:
            rows = self._queue.get()
            try:
                if rows is None:
                    return
                with self.session_factory() as session:
                    session.execute(insert(PredictionLog), rows)
                    session.commit()
                self.written += len(rows)
            except Exception as exc:  # the log is a sample: a failed batch is counted and reported, not fatal
                self.failed += len(rows or [])
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
