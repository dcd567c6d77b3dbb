"""One full prediction cycle for an Almaty-scale city (~2,500 active buses, every downstream stop and the stops of
the next trip of each bus's block; online re-selection included) against the bare ``model.predict_quantiles`` on
the same rows. Prints
``cycle_s=<n> ratio_to_predict=<x>``.

    .venv/bin/python bench/predict_cycle.py [--routes 260] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from prediction.eta.backtest import training_set
from prediction.eta.features import prepare_events
from prediction.eta.models import CANDIDATES, QuantileETAModel
from prediction.eta.online import OnlineSelection, arrival_keys, candidate_etas, groups_of
from prediction.eta.snapshot import LiveState
from prediction.gtfs.schedule import read_schedule
from prediction.network import build_network
from prediction.sim.simulate import CitySimulator
from prediction.sim.synth import write_synthetic_feed

DAY = dt.date(2026, 3, 3)


def _epoch(text: pd.Series) -> np.ndarray:
    return (pd.to_datetime(text, format="ISO8601", utc=True) - pd.Timestamp("1970-01-01", tz="UTC")
            ).dt.total_seconds().to_numpy()


def _busy_selection() -> OnlineSelection:
    """A selection that has switched every group (the heavier path: every row takes a blend)."""
    online = OnlineSelection()
    online.choice[:] = CANDIDATES.index("model+kalman")
    online.offset[:] = 30.0
    return online


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--routes", type=int, default=260)  # ≈ 2,500 buses active at 08:00
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        write_synthetic_feed(Path(folder) / "city", routes=args.routes, seed=args.seed)
        net = build_network(read_schedule(Path(folder) / "city", canonical=False))
    day = CitySimulator(net, seed=args.seed).run_day(DAY, ping_interval_s=60.0)
    events = day.events.assign(arrival=_epoch(day.events["arrival_time"]),
                               departure=_epoch(day.events["departure_time"]))
    pings = day.pings.assign(t=_epoch(day.pings["timestamp"]))
    known = prepare_events(net, events, pings)
    peak = pd.Timestamp(dt.datetime.combine(DAY, dt.time(8)), tz=net.tz).timestamp()
    training = training_set(net, known, peak - 3600.0, step_s=600.0, max_rows=200_000)
    model = QuantileETAModel().fit(training.rows, training.target)
    cycles, bares = [], []
    recent = (known.known_at >= peak - 30.0) & (known.known_at < peak)
    for _ in range(5):  # a fresh state each time: the cycle includes taking in the last 30 s of events
        state = LiveState(net, training.history, known)
        state.advance(peak - 30.0)
        online = _busy_selection()
        started = time.perf_counter()
        rows = state.snapshot(peak)
        eta = model.predict_quantiles(rows)[1]
        # online re-selection as the worker runs it, on its heavier path: every group switched, and this
        # cycle's rows kept for scoring (the worker keeps one cycle in four) after the last 30 s are scored
        online.observe(arrival_keys(known.origin[recent], known.visit[recent], len(net.visit_seq)),
                       known.arrival[recent])
        group, etas = groups_of(rows), candidate_etas(rows, eta)
        online.apply(group, etas)
        online.record(peak, arrival_keys(rows["origin"].to_numpy(float), rows["visit"].to_numpy(np.int64),
                                         len(net.visit_seq)), group, etas)
        cycles.append(time.perf_counter() - started)
        started = time.perf_counter()
        model.predict_quantiles(rows)
        bares.append(time.perf_counter() - started)
    cycle, bare = float(np.median(cycles)), float(np.median(bares))
    current = rows["block_ahead"] == 0
    buses = len(np.unique(rows.loc[current, "run"]))
    print(f"active_buses={buses} rows={len(rows)} next_trip_rows={int((~current).sum())}")
    print(f"cycle_s={cycle:.3f} ratio_to_predict={cycle / bare:.2f}")


if __name__ == "__main__":
    main()
