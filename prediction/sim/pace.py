"""Route pace: the simulated city runs at the speed its timetable was written for.

An operator writes running times from the running times it observes, so a real city's buses keep to the
timetable in the middle of the distribution and stray late more than early: delays pile up (incidents, crowded
stops, a late previous trip) while running early is bounded. A feed authored by hand (the demo's) or synthesised
has running times that need not match the simulator's free speed — the demo's ran 3.9 min early at the median.
So, for any feed, one pilot day is simulated at free speed and each route's running time (between its stops,
dwell left out) is scaled so that the timetable's running time falls at ``SimParams.timetable_percentile`` of
the simulated ones (below the median: timetables lag behind the traffic they were written for; the value is
calibrated so that the demo's deviation matches the real one, docs/demo-lateness.md). What remains of the
deviation is what the simulator models: noise, incidents, bunching and late starts — see docs/demo-lateness.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.network import Network
from prediction.sim.day import DayTruth

__all__ = ["pilot_day", "route_pace"]

FloatArray = npt.NDArray[np.float64]
PACE_BOUNDS = (0.4, 2.5)  # a timetable further off than this from the simulated streets is the feed's problem
PILOT_SPAN_DAYS = 14


def pilot_day(net: Network) -> dt.date | None:
    """The busiest service day within two weeks of the feed's first calendar date (None for a feed without one)."""
    starts = [rule.start_date for rule in net.calendar.rules] + list(net.calendar.exceptions)
    if not starts:
        return None
    first = min(starts)
    days = [first + dt.timedelta(days=i) for i in range(PILOT_SPAN_DAYS)]
    return max(days, key=lambda day: len(net.trips_on(day)))


def route_pace(net: Network, simulate: Callable[[dt.date], DayTruth], percentile: float) -> FloatArray:
    """A running-time multiplier per route from a pilot day simulated at free speed by ``simulate``, such that
    the timetable's running time is that ``percentile`` of the route's simulated ones; routes that do not run
    that day get the median multiplier of those that do."""
    pace = np.full(len(net.route_ids), np.nan)
    day = pilot_day(net)
    if day is not None and len(net.trips_on(day)):
        truth = simulate(day)
        ratios = _trip_ratios(net, truth)
        by_route = ratios.groupby(net.trip_route[truth.trips]).quantile(1.0 - percentile / 100.0)
        pace[by_route.index.to_numpy()] = by_route.to_numpy()
    known = np.isfinite(pace)
    fill = float(np.median(pace[known])) if known.any() else 1.0
    return np.clip(np.where(known, pace, fill), *PACE_BOUNDS)


def _trip_ratios(net: Network, truth: DayTruth) -> pd.Series:
    """Per trip: (timetabled duration − simulated dwell) / simulated running time, the factor that makes the
    simulated trip last as long as the timetable."""
    first, last = truth.visit_ptr[:-1], truth.visit_ptr[1:] - 1
    dwell = truth.departure - truth.arrival
    trip_dwell = np.add.reduceat(dwell, first) - dwell[first] - dwell[last]
    simulated = truth.arrival[last] - truth.departure[first] - trip_dwell
    timetabled = (net.visit_arr[truth.visit[last]] - net.visit_dep[truth.visit[first]]).astype(float)
    ratio = (timetabled - trip_dwell) / np.where(simulated > 0, simulated, np.nan)
    return pd.Series(ratio).where(np.isfinite(ratio) & (ratio > 0))
