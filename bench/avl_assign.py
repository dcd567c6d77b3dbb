"""Trip assignment without trip ids: how often ``assign_trips`` finds the true trip, route and direction.

Simulate a day first, e.g. ``qala simulate --feed gtfs_data/almaty --start 2026-03-16 --days 1 --seed 1
--out /tmp/sim``, then ``python bench/avl_assign.py /tmp/sim/pings_2026-03-16.csv --hours 0.5``: the pings of the
chosen window (from 06:00 local) lose their trip ids, are assigned again, and are compared with the simulator's.
Prints ``trip_correct=<x> route_dir_correct=<x>`` on its last line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd

from prediction.avlio import read_pings
from prediction.matching import assign_trips
from prediction.schedule import read_schedule
from prediction.servicedays import service_day_start
from prediction.sim_network import build_network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pings", type=Path, help="a simulated pings_<date>.csv")
    parser.add_argument("--feed", type=Path, default=Path("gtfs_data/almaty"))
    parser.add_argument("--hours", type=float, default=0.5, help="window length from 06:00 local")
    args = parser.parse_args()

    feed = read_schedule(args.feed, canonical=False)
    net = build_network(feed)
    day = dt.date.fromisoformat(args.pings.stem.removeprefix("pings_"))
    pings = read_pings([args.pings]).pings
    begin = service_day_start(day, net.tz).timestamp() + 6 * 3600
    pings = pings[(pings["t"] >= begin) & (pings["t"] < begin + args.hours * 3600)].reset_index(drop=True)
    truth = pings["trip_id"].astype(str).to_numpy()

    parts, starts = [], {}
    for d in (day - dt.timedelta(days=1), day):
        running = net.trips_on(d)
        key = d.strftime("%Y%m%d")
        starts[key] = service_day_start(d, net.tz).timestamp()
        first, last = net.visit_ptr[running], net.visit_ptr[running + 1] - 1
        parts.append(pd.DataFrame({"trip_id": net.trip_ids[running], "shape_id": net.trip_shape[running], "day": key,
                                   "start_s": net.visit_dep[first], "end_s": net.visit_arr[last]}))
    began = time.perf_counter()
    got = assign_trips(pings.assign(trip_id=pd.NA), pd.concat(parts, ignore_index=True), net.lines, starts)
    seconds = time.perf_counter() - began
    got_ids = got.astype(object).where(got.notna(), None).to_numpy()

    trips = feed.trips.set_index("trip_id")
    route_dir = (trips["route_id"].astype(str) + "/" + trips["direction_id"].astype(str)).to_dict()
    assigned = np.array([g is not None for g in got_ids])
    trip_ok = np.array([g is not None and str(g) == t for g, t in zip(got_ids, truth, strict=True)])
    rd_ok = np.array([g is not None and route_dir.get(str(g)) == route_dir.get(t)
                      for g, t in zip(got_ids, truth, strict=True)])
    print(f"pings={len(pings)} vehicles={pings['vehicle_id'].nunique()} assigned={assigned.mean():.3f} "
          f"in {seconds:.1f} s")
    print(f"trip_correct={trip_ok.mean():.3f} route_dir_correct={rd_ok.mean():.3f}")


if __name__ == "__main__":
    main()
