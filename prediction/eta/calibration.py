"""Calibration: simulated trip durations against real Astana CTS 2024 trips, by start hour and day type.

Astana's data has observed start/end times of 19,769 trips but no stop times or shapes, so the comparison uses
a synthetic straight route whose length is fitted so that the weekday midday median matches Astana's; what is
compared is then the *shape* of the day (peaks, evening) and the spread (p10–p90), which the length cannot fake.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from prediction.gtfs.gtfstime import format_gtfs_time
from prediction.gtfs.schedule import read_schedule
from prediction.sim.params import SimParams
from prediction.sim.simulate import CitySimulator

__all__ = ["astana_durations", "compare_with_astana", "format_table", "simulated_durations"]

_MIDDAY = (10, 11, 12, 13, 14)
_HOURS = tuple(range(6, 23))


def astana_durations(folder: Path) -> pd.DataFrame:
    """Real trips: start hour, weekend flag and duration in minutes (clearly broken records removed)."""
    trips = pd.read_csv(folder / "trips.txt", dtype=str)
    start = pd.to_timedelta(trips["start_time"]).dt.total_seconds()
    end = pd.to_timedelta(trips["end_time"]).dt.total_seconds()
    minutes = ((end - start) % 86_400) / 60.0
    day = pd.to_datetime(trips["service_id"].str.removeprefix("service_"), format="%Y-%m-%d")
    frame = pd.DataFrame({"hour": (start // 3600).astype(int), "weekend": day.dt.dayofweek >= 5,
                          "minutes": minutes, "route": trips["route_id"]})
    return frame[(frame["minutes"] >= 15) & (frame["minutes"] <= 300)]


def _route_feed(folder: Path, length_m: float) -> Path:
    """A one-route feed, 400 m between stops, every 10 minutes 06:00–23:00 both directions, every day."""
    n = max(3, round(length_m / 400.0) + 1)
    lat = 51.128 + np.arange(n) * 400.0 / 111_320.0
    stops = "\n".join(f"S{i},Stop {i},{la:.6f},71.43" for i, la in enumerate(lat))
    trips, times = [], []
    for direction in (0, 1):
        order = list(range(n)) if direction == 0 else list(range(n))[::-1]
        for k, dep in enumerate(range(6 * 3600, 23 * 3600, 600)):
            trip = f"T{direction}-{k}"
            trips.append(f"R,ALL,{trip},{direction}")
            times += [f"{trip},{format_gtfs_time(dep + i * 70)},{format_gtfs_time(dep + i * 70)},S{s},{i + 1}"
                      for i, s in enumerate(order)]
    files = {
        "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,Calibration,https://example.kz,Asia/Almaty\n",
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\n" + stops + "\n",
        "routes.txt": "route_id,agency_id,route_short_name,route_type\nR,A,1,3\n",
        "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                        "ALL,1,1,1,1,1,1,1,20240101,20301231\n",
        "trips.txt": "route_id,service_id,trip_id,direction_id\n" + "\n".join(trips) + "\n",
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n" + "\n".join(times) + "\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def simulated_durations(length_m: float, *, days: int, seed: int, start: dt.date = dt.date(2024, 7, 29)
                        ) -> pd.DataFrame:
    """Simulated trips of a straight route of ``length_m``: start hour, weekend flag, minutes."""
    with tempfile.TemporaryDirectory() as tmp:
        feed = read_schedule(_route_feed(Path(tmp), length_m), canonical=False)
    # the probe route's timetable is made up: run at free speed, no pace to match it, no holding at timepoints
    sim = CitySimulator(feed, seed=seed, params=SimParams(timetable_pace=False, hold_early_s=math.inf))
    factors = sim.day_factors(start, days)
    rows = []
    for i in range(days):
        day = start + dt.timedelta(days=i)
        truth = sim.run_day(day, day_factor=float(factors[i]), ping_interval_s=3600).truth
        first, last = truth.visit_ptr[:-1], truth.visit_ptr[1:] - 1
        rows.append(pd.DataFrame({"hour": (truth.departure[first] // 3600).astype(int), "weekend": day.weekday() >= 5,
                                  "minutes": (truth.arrival[last] - truth.departure[first]) / 60.0}))
    return pd.concat(rows, ignore_index=True)


def _by_hour(frame: pd.DataFrame) -> pd.DataFrame:
    grouped = frame[frame["hour"].isin(_HOURS)].groupby(["weekend", "hour"])["minutes"]
    # pandas-stubs: GroupBy.quantile takes a list of quantiles too
    return grouped.quantile([0.1, 0.5, 0.9]).unstack().rename(  # type: ignore[arg-type]
        columns={0.1: "p10", 0.5: "median", 0.9: "p90"})


def compare_with_astana(folder: Path, *, days: int = 28, seed: int = 0) -> pd.DataFrame:
    """Side by side by (weekend, hour): real and simulated median, p10 and p90 trip minutes."""
    real = astana_durations(folder)
    target = real[~real["weekend"] & real["hour"].isin(_MIDDAY)]["minutes"].median()
    probe = simulated_durations(10_000.0, days=7, seed=seed)
    probe_mid = probe[~probe["weekend"] & probe["hour"].isin(_MIDDAY)]["minutes"].median()
    length = 10_000.0 * float(target) / float(probe_mid)  # durations scale with length at a given pace
    sim = simulated_durations(length, days=days, seed=seed)
    table = _by_hour(real).add_prefix("astana_").join(_by_hour(sim).add_prefix("sim_"), how="outer")
    table.attrs["route_length_km"] = round(length / 1000.0, 1)
    return table


def format_table(table: pd.DataFrame) -> str:
    """A fixed-width text table (minutes), weekday block then weekend block."""
    lines = [f"simulated route length fitted to Astana's weekday midday median: "
             f"{table.attrs.get('route_length_km', '?')} km",
             f"{'day':<8}{'hour':>4}  {'astana p10':>10} {'median':>7} {'p90':>7}   {'sim p10':>8} {'median':>7} "
             f"{'p90':>7}"]
    weekend: bool
    hour: int
    for (weekend, hour), row in table.iterrows():  # type: ignore[misc]  # pandas-stubs: the index is (weekend, hour)
        lines.append(f"{'weekend' if weekend else 'weekday':<8}{hour:>4}  {row['astana_p10']:>10.1f} "
                     f"{row['astana_median']:>7.1f} {row['astana_p90']:>7.1f}   {row['sim_p10']:>8.1f} "
                     f"{row['sim_median']:>7.1f} {row['sim_p90']:>7.1f}")
    return "\n".join(lines)
