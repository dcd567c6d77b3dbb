"""Trip assignment without trip ids: how often ``prediction.avl.assign`` finds the true trip, route and direction.

Simulate a day first, e.g. ``qala simulate --feed gtfs_data/almaty --start 2026-03-16 --days 1 --seed 5
--ping-interval 30 --out /tmp/sim``, then ``python bench/avl_assign.py /tmp/sim/pings_2026-03-16.csv``: the pings
(the whole day, or ``--hours`` from ``--from-hour``) lose their trip ids, are assigned again — in batch (each
vehicle's best path traced back, as ``qala avl events``) and live (each ping labelled as it arrives, as ingest) —
and are compared with the simulator's. A parked bus's pings carry no trip: leaving them unassigned is correct.
Prints ``trip_correct=<x> route_dir_correct=<x> live_trip_correct=<x> ...`` on its last line.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prediction.avl.assign import AssignSettings, TripAssigner, assign_pings
from prediction.avl.avlio import read_pings
from prediction.avl.events import derive_events
from prediction.gtfs.schedule import read_schedule
from prediction.gtfs.servicedays import service_day_start
from prediction.network import Network, build_network


def _scores(got: pd.Series, truth: pd.Series, route_dir: dict[str, str]) -> tuple[float, float]:
    g = got.astype(object).where(got.notna(), None).to_numpy()
    w = truth.astype(object).where(truth.notna(), None).to_numpy()
    trip_ok = np.array([a == b for a, b in zip(g, w, strict=True)])
    rd_ok = np.array([(a is None and b is None) or (a is not None and b is not None
                                                    and route_dir.get(a) == route_dir.get(b))
                      for a, b in zip(g, w, strict=True)])
    return float(trip_ok.mean()), float(rd_ok.mean())


def _same_run(got: pd.Series, truth: pd.Series, net: Network) -> float:
    """Share of pings whose trip is the true one or an identical run of the feed (same shape and first departure)."""
    run = {str(t): (s, int(d)) for t, s, d in zip(net.trip_ids, net.trip_shape, net.visit_dep[net.visit_ptr[:-1]],
                                                   strict=True)}
    g = got.astype(object).where(got.notna(), None).to_numpy()
    w = truth.astype(object).where(truth.notna(), None).to_numpy()
    return float(np.mean([a == b or (a is not None and b is not None and run.get(a) == run.get(b))
                          for a, b in zip(g, w, strict=True)]))


def _event_scores(events: pd.DataFrame, truth: pd.DataFrame) -> tuple[float, float]:
    """Share of true stop visits with a derived event, and the mean absolute arrival error of those."""
    both = truth.merge(events, on=["trip_id", "start_date", "stop_sequence"], how="left")
    true_arrival = (pd.to_datetime(both["arrival_time"], format="ISO8601", utc=True)
                    - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    found = both["arrival"].notna()
    return float(found.mean()), float((both["arrival"] - true_arrival)[found].abs().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pings", type=Path, help="a pings_<date>.csv with trip ids (simulated, or a real feed's)")
    parser.add_argument("--feed", type=Path, default=Path("gtfs_data/almaty"))
    parser.add_argument("--from-hour", type=float, default=0.0, help="window start, hours after service day start")
    parser.add_argument("--hours", type=float, default=None, help="window length (default: the whole file)")
    parser.add_argument("--events", action="store_true",
                        help="also derive stop events from the assigned pings (batch and live) and score them "
                             "against truth_stop_events_<date>.csv next to the pings (and from the true trip ids)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override an AssignSettings field, e.g. --set block=3.0")
    args = parser.parse_args()
    fields = {f.name: f.type for f in dataclasses.fields(AssignSettings)}
    overrides = dict(item.split("=", 1) for item in args.set)
    values: dict[str, Any] = {k: int(v) if fields[k] in (int, "int") else float(v) for k, v in overrides.items()}
    settings = dataclasses.replace(AssignSettings(), **values)

    net = build_network(read_schedule(args.feed, canonical=False))
    day = dt.date.fromisoformat(args.pings.stem.removeprefix("pings_"))
    pings = read_pings([args.pings]).pings
    if args.hours is not None:
        begin = service_day_start(day, net.tz).timestamp() + args.from_hour * 3600
        pings = pings[(pings["t"] >= begin) & (pings["t"] < begin + args.hours * 3600)]
    unknown = pings["trip_id"].notna() & ~pings["trip_id"].isin(set(net.trip_ids))
    pings = pings[~unknown].reset_index(drop=True)  # a real feed's pings may name trips its GTFS lacks
    truth = pings["trip_id"].astype("string")
    hidden = pings.assign(trip_id=pd.NA, start_date=pd.NA)
    trips = net.feed.trips.set_index("trip_id")
    direction = trips["direction_id"] if "direction_id" in trips else trips["shape_id"]  # else the shape
    route_dir = (trips["route_id"].astype(str) + "/" + direction.astype(str)).to_dict()

    began = time.perf_counter()
    batch = assign_pings(TripAssigner(net, settings), hidden, smooth=True)
    batch_s = time.perf_counter() - began
    began = time.perf_counter()
    live = assign_pings(TripAssigner(net, settings), hidden, smooth=False)
    live_s = time.perf_counter() - began
    trip_ok, rd_ok = _scores(batch["trip_id"], truth, route_dir)
    live_trip, live_rd = _scores(live["trip_id"], truth, route_dir)
    if unknown.any():
        print(f"{int(unknown.sum())} pings dropped: their trip id is not in the feed")
    route = trips["route_id"].astype(str).to_dict()
    print(f"route only: batch {_scores(batch['trip_id'], truth, route)[1]:.3f}, "
          f"live {_scores(live['trip_id'], truth, route)[1]:.3f}")
    print(f"identical runs (same shape and scheduled start, e.g. duplicated trips) counted as one: batch "
          f"{_same_run(batch['trip_id'], truth, net):.3f}, live {_same_run(live['trip_id'], truth, net):.3f}")
    print(f"pings={len(pings)} vehicles={pings['vehicle_id'].nunique()} parked={truth.isna().mean():.3f} "
          f"assigned={batch['trip_id'].notna().mean():.3f} batch_pings_per_s={len(pings) / batch_s:.0f} "
          f"live_pings_per_s={len(pings) / live_s:.0f}")
    if args.events:
        truth_events = pd.read_csv(args.pings.with_name(f"truth_stop_events_{day.isoformat()}.csv"),
                                   dtype={"trip_id": str, "start_date": str, "stop_id": str})
        truth_events = truth_events[truth_events["trip_id"].isin(set(truth.dropna()))]  # runs in the window
        for label, frame in (("true trip ids", pings), ("batch-assigned trip ids", hidden.assign(**batch)),
                             ("live-assigned trip ids", hidden.assign(**live))):
            recovered, mae = _event_scores(derive_events(net, frame), truth_events)
            print(f"stop events from {label}: {recovered:.4f} of true visits recovered, arrival MAE {mae:.2f} s")
    print(f"trip_correct={trip_ok:.3f} route_dir_correct={rd_ok:.3f} "
          f"live_trip_correct={live_trip:.3f} live_route_dir_correct={live_rd:.3f}")


if __name__ == "__main__":
    main()
