"""Accuracy and coverage of observed stop events (the figures in docs/avl.md).

Simulated: one Almaty weekday at 20 s and 4-minute pings, events derived statelessly (``derive_events``, as
``qala avl events``) and compared with the simulator's truth: arrival MAE, p90 and share of true visits recovered.
Real: each day of the Austin CapMetro 2016 pings: trip runs seen (≥ 1 ping with a trip id of the feed), runs with
events, runs with a single ping, and whether times are monotone along every run.

    .venv/bin/python bench/avl_events.py [--skip-austin] [--skip-almaty]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prediction.avl.avlio import read_pings  # noqa: E402
from prediction.avl.events import derive_events, resolve_start_dates  # noqa: E402
from prediction.gtfs.schedule import read_schedule  # noqa: E402
from prediction.network import build_network  # noqa: E402
from prediction.sim.simulate import CitySimulator  # noqa: E402

EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def _seconds(text: pd.Series) -> pd.Series:
    return (pd.to_datetime(text, format="ISO8601", utc=True) - EPOCH).dt.total_seconds()


def almaty(feed: Path, day: dt.date, seed: int) -> None:
    net = build_network(read_schedule(feed, canonical=False))
    for interval in (20.0, 240.0):
        sim = CitySimulator(net, seed=seed).run_day(day, ping_interval_s=interval)
        pings = sim.pings.assign(t=_seconds(sim.pings["timestamp"]))
        started = time.perf_counter()
        events = derive_events(net, pings)
        elapsed = time.perf_counter() - started
        truth = sim.events.assign(true_arrival=_seconds(sim.events["arrival_time"]))
        both = truth.merge(events, on=["trip_id", "start_date", "stop_sequence"], how="left")
        found = both["arrival"].notna()
        error = (both["arrival"] - both["true_arrival"])[found].abs()
        print(f"almaty {day} pings every {interval:.0f} s: {truth['trip_id'].nunique()} trips, {len(truth)} visits, "
              f"{len(pings)} pings; arrival MAE {error.mean():.2f} s, p90 {error.quantile(0.9):.1f} s, "
              f"recovered {100 * found.mean():.2f} %; derive {elapsed:.1f} s")


def austin(data: Path) -> None:
    net = build_network(read_schedule(data / "gtfs" / "austin_capmetro_2016.zip", canonical=False))
    total_seen = total_derived = 0
    for path in sorted((data / "avl" / "austin_capmetro_2016").glob("pings_*.csv")):
        pings = read_pings([path]).pings
        pings = pings[pings["trip_id"].isin(set(net.trip_ids))]
        runs = pings["trip_id"].astype(str) + "/" + resolve_start_dates(pings, net).astype(str)
        counts = runs.value_counts()
        events = derive_events(net, pings)
        keys = set(events["trip_id"].astype(str) + "/" + events["start_date"].astype(str))
        monotone = all((np.diff(np.column_stack([g["arrival"], g["departure"]]).ravel()) >= 0).all()
                       for _, g in events.groupby(["trip_id", "start_date"]))
        single = set(counts[counts == 1].index)
        total_seen, total_derived = total_seen + len(counts), total_derived + len(keys)
        print(f"austin {path.name}: {len(counts)} trip runs seen, events for {len(keys)} "
              f"({100 * len(keys) / len(counts):.1f} %); {len(single)} runs have one ping, "
              f"{len(single & keys)} of them at a stop; monotone: {monotone}")
    print(f"austin all days: events for {total_derived} of {total_seen} trip runs seen "
          f"({100 * total_derived / max(total_seen, 1):.1f} %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feed", type=Path, default=ROOT / "gtfs_data" / "almaty")
    parser.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 3, 2))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--skip-almaty", action="store_true")
    parser.add_argument("--skip-austin", action="store_true")
    args = parser.parse_args()
    if not args.skip_almaty:
        almaty(args.feed, args.day, args.seed)
    if not args.skip_austin:
        austin(args.data)


if __name__ == "__main__":
    main()
