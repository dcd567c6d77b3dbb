"""The city simulator: service days of any GTFS feed as AVL pings, card taps and the true stop events.

``simulate_days`` writes, per day, ``pings_<date>.csv``, ``taps_<date>.csv`` and ``truth_stop_events_<date>.csv``
(times ISO-8601 with the agency's offset). Deterministic for a seed: every random draw comes from a generator
seeded by (seed, day, purpose), so a day's output does not depend on which other days were simulated with it —
except for the weather-like day factor, which is a chain starting at ``start``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.avl.avlio import iso_times, write_csv
from prediction.gtfs.schedule import ScheduleFeed
from prediction.gtfs.servicedays import service_day_start
from prediction.network import Network, build_network
from prediction.sim.day import DayTruth, simulate_day
from prediction.sim.pace import route_pace
from prediction.sim.params import SimParams
from prediction.sim.pings import SimPings, generate_pings
from prediction.sim.taps import RiderPopulation, generate_taps

__all__ = ["CitySimulator", "SimulatedDay", "simulate_days"]

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class SimulatedDay:
    """One day's output as frames ready to write (times as epoch seconds in ``t``-style float columns too)."""

    day: dt.date
    truth: DayTruth
    pings: pd.DataFrame
    taps: pd.DataFrame
    events: pd.DataFrame


class CitySimulator:
    """Simulates days of one feed; persistent city traits (corridor speeds, busy stops, riders) come from ``seed``."""

    def __init__(self, feed: ScheduleFeed | Network, *, seed: int = 0, params: SimParams | None = None) -> None:
        self.net = feed if isinstance(feed, Network) else build_network(feed)
        self.seed = seed
        self.params = params or SimParams()
        rng = np.random.default_rng([seed, 1])
        p = self.params
        self.corridor = np.exp(rng.normal(0.0, p.corridor_sigma, self.net.segment_count) - p.corridor_sigma ** 2 / 2)
        self.popularity = np.exp(rng.normal(0.0, 0.7, len(self.net.stop_ids)) - 0.245)
        self.riders = RiderPopulation.draw(p, seed)
        self.pace = (route_pace(self.net, self._free_running_day, p.timetable_percentile)
                     if p.timetable_pace else None)

    def _free_running_day(self, day: dt.date) -> DayTruth:
        """A day at free speed with no holding at timepoints: the running times the timetable is matched to."""
        free = replace(self.params, hold_early_s=np.inf)
        return simulate_day(self.net, day, free, seed=self.seed, day_factor=1.0, corridor=self.corridor,
                            popularity=self.popularity)

    def day_factors(self, start: dt.date, days: int) -> FloatArray:
        """Weather-like city-wide travel-time factors: an AR(1) chain of log-normal shocks from ``start``."""
        rng = np.random.default_rng([self.seed, start.toordinal(), 3])
        p = self.params
        z = np.zeros(days)
        for i in range(days):
            shock = rng.normal(0.0, p.day_sigma)
            z[i] = p.day_ar * z[i - 1] + np.sqrt(1 - p.day_ar ** 2) * shock if i else shock
        return np.exp(z)

    def run_day(self, day: dt.date, *, day_factor: float = 1.0, ping_interval_s: float = 20.0) -> SimulatedDay:
        truth = simulate_day(self.net, day, self.params, seed=self.seed, day_factor=day_factor,
                             corridor=self.corridor, popularity=self.popularity, pace=self.pace)
        pings = generate_pings(truth, self.net, self.params, ping_interval_s, seed=self.seed)
        taps = generate_taps(truth, self.net, self.riders, self.params, seed=self.seed)
        origin = service_day_start(day, self.net.tz).timestamp()
        return SimulatedDay(day, truth, self._ping_frame(truth, pings, origin), self._tap_frame(taps, origin),
                            self._event_frame(truth, origin))

    def _ping_frame(self, truth: DayTruth, pings: SimPings, origin: float) -> pd.DataFrame:
        trips = truth.trips[pings.trip]
        frame = pd.DataFrame({
            "vehicle_id": _vehicle_names(pings.vehicle), "timestamp": iso_times(origin + pings.t, self.net.tz),
            "latitude": np.round(pings.lat, 6), "longitude": np.round(pings.lon, 6),
            "trip_id": self.net.trip_ids[trips], "route_id": self.net.route_ids[self.net.trip_route[trips]],
            "start_date": truth.day.strftime("%Y%m%d"), "bearing": np.round(pings.bearing, 1),
            "speed": np.round(pings.speed, 2),
        })
        frame.loc[pings.parked, ["trip_id", "route_id", "start_date"]] = None  # a parked bus serves no trip
        return frame

    def _tap_frame(self, taps: pd.DataFrame, origin: float) -> pd.DataFrame:
        frame = taps.drop(columns=["t", "vehicle"])
        frame.insert(0, "tap_time", iso_times(origin + taps["t"].to_numpy(), self.net.tz))
        frame.insert(4, "vehicle_id", _vehicle_names(taps["vehicle"].to_numpy()))
        return frame

    def _event_frame(self, truth: DayTruth, origin: float) -> pd.DataFrame:
        trip_of = np.repeat(truth.trips, np.diff(truth.visit_ptr))
        return pd.DataFrame({
            "trip_id": self.net.trip_ids[trip_of], "start_date": truth.day.strftime("%Y%m%d"),
            "stop_sequence": self.net.visit_seq[truth.visit],
            "stop_id": self.net.stop_ids[self.net.visit_stop[truth.visit]],
            "arrival_time": iso_times(origin + truth.arrival, self.net.tz),
            "departure_time": iso_times(origin + truth.departure, self.net.tz),
        })


def _vehicle_names(numbers: npt.ArrayLike) -> npt.NDArray[np.str_]:
    return np.char.add("bus-", np.char.zfill(np.asarray(numbers).astype(str), 4))


def simulate_days(feed: ScheduleFeed | Network, start: dt.date, days: int, out: Path, *, seed: int = 0,
                  ping_interval_s: float = 20.0, params: SimParams | None = None,
                  progress: Progress | None = None) -> dict[str, int]:
    """Simulate ``days`` service days from ``start`` and write the three files per day into ``out``."""
    sim = CitySimulator(feed, seed=seed, params=params)
    factors = sim.day_factors(start, days)
    totals = {"days": 0, "pings": 0, "taps": 0, "stop_events": 0}
    for i in range(days):
        day = start + dt.timedelta(days=i)
        result = sim.run_day(day, day_factor=float(factors[i]), ping_interval_s=ping_interval_s)
        stamp = day.isoformat()
        write_csv(result.pings, out / f"pings_{stamp}.csv")
        write_csv(result.taps, out / f"taps_{stamp}.csv")
        write_csv(result.events, out / f"truth_stop_events_{stamp}.csv")
        totals["days"] += 1
        totals["pings"] += len(result.pings)
        totals["taps"] += len(result.taps)
        totals["stop_events"] += len(result.events)
        if progress is not None:
            progress(f"{stamp}: {len(result.pings)} pings, {len(result.taps)} taps, {len(result.events)} stop events")
    return totals
