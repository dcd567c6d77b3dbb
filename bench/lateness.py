"""Schedule deviation of the demo city against real cities (the figures in docs/demo-lateness.md).

Real, with a timetable: Austin CapMetro 2016 — stop events derived from the real 4-minute pings (as
``qala avl events``) minus the timetabled arrival. Real, without a timetable: Astana CTS 2024 has observed trip
start and end times only, so its figure is each trip's duration minus the median of its route, direction, day
type and start hour (how far a trip strays from the running time a timetable would use). Simulated: the demo
feed's days as the demo streams them (day factor 1) and a week with the weather-like day factor.

    .venv/bin/python bench/lateness.py [--data ../shared/data] [--skip-austin]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prediction.avl.avlio import read_pings  # noqa: E402
from prediction.avl.events import derive_events  # noqa: E402
from prediction.gtfs.schedule import read_schedule  # noqa: E402
from prediction.gtfs.servicedays import service_day_start  # noqa: E402
from prediction.network import Network, build_network  # noqa: E402
from prediction.sim.lateness import summarise, truth_deviation  # noqa: E402
from prediction.sim.params import DEMO_PARAMS  # noqa: E402
from prediction.sim.simulate import CitySimulator  # noqa: E402


def _timetable(net: Network) -> pd.DataFrame:
    trip = net.visit_trip
    return pd.DataFrame({"trip_id": net.trip_ids[trip].astype(str), "stop_sequence": net.visit_seq,
                         "scheduled": net.visit_arr, "first": np.r_[True, trip[1:] != trip[:-1]]})


def austin(data: Path) -> None:
    net = build_network(read_schedule(data / "gtfs" / "austin_capmetro_2016.zip", canonical=False))
    timetable = _timetable(net)
    parts = []
    for path in sorted((data / "avl" / "austin_capmetro_2016").glob("pings_*.csv")):
        pings = read_pings([path]).pings
        events = derive_events(net, pings[pings["trip_id"].isin(set(net.trip_ids))])
        events = events.assign(trip_id=events["trip_id"].astype(str)).merge(timetable, on=["trip_id", "stop_sequence"])
        events = events[~events["first"]]
        origin = events["start_date"].astype(str).map(
            lambda d: service_day_start(dt.date(int(d[:4]), int(d[4:6]), int(d[6:])), net.tz).timestamp())
        deviation = events["arrival"] - origin - events["scheduled"]
        print(f"austin real {path.stem[6:]}: {summarise(deviation).line()}")
        parts.append(deviation)
    print(f"austin real, all days: {summarise(pd.concat(parts)).line()}")


def astana(data: Path) -> None:
    trips = pd.read_csv(data / "astana_cts_2024" / "trips.txt")
    seconds = {c: pd.to_timedelta(trips[c]).dt.total_seconds() for c in ("start_time", "end_time")}
    day = pd.to_datetime(trips["service_id"].str.removeprefix("service_"))
    frame = pd.DataFrame({"route": trips["route_id"], "direction": trips["direction_id"],
                          "weekend": day.dt.day_of_week >= 5, "hour": seconds["start_time"] // 3600,
                          "duration": seconds["end_time"] - seconds["start_time"]})
    typical = frame.groupby(["route", "direction", "weekend", "hour"])["duration"].transform("median")
    deviation = frame["duration"] - typical
    spread = deviation.quantile([0.1, 0.9]) / 60
    print(f"astana real trip ends vs the route-hour median: {summarise(deviation).line().replace('visits', 'trips')}"
          f"; p10 {spread[0.1]:+.1f}, p90 {spread[0.9]:+.1f} min")


def demo(feed: Path, start: dt.date, seed: int) -> None:
    net = build_network(read_schedule(feed, canonical=False))
    sim = CitySimulator(net, seed=seed, params=DEMO_PARAMS)
    factors = sim.day_factors(start, 7)
    typical, week = [], []
    for i, factor in enumerate(factors):
        day = start + dt.timedelta(days=i)
        typical.append(truth_deviation(net, sim.run_day(day, ping_interval_s=3600).truth))
        week.append(truth_deviation(net, sim.run_day(day, day_factor=float(factor), ping_interval_s=3600).truth))
        print(f"demo {day} day factor 1: {summarise(typical[-1]).line()}")
        print(f"demo {day} day factor {factor:.3f}: {summarise(week[-1]).line()}")
    print(f"demo week, day factor 1 (as `make demo` streams): {summarise(np.concatenate(typical)).line()}")
    print(f"demo week, weather-like day factors: {summarise(np.concatenate(week)).line()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feed", type=Path, default=ROOT / "gtfs_data" / "almaty")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 3, 2))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--skip-austin", action="store_true")
    args = parser.parse_args()
    astana(args.data)
    if not args.skip_austin:
        austin(args.data)
    demo(args.feed, args.start, args.seed)


if __name__ == "__main__":
    main()
