"""Schedule deviation (actual minus timetabled arrival) and the summary a rider would notice: how often early or late.

A real city's buses are late more often than early: delays pile up along a route while running early is capped
by drivers holding at timepoints. ``docs/demo-lateness.md`` compares the simulator with real operations using
these functions (``bench/lateness.py``); ``tests/test_demo_lateness.py`` holds the simulated demo to that shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from prediction.network import Network
from prediction.sim.day import DayTruth

__all__ = ["Lateness", "summarise", "truth_deviation"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Lateness:
    """Shares of stop visits early by more than a minute and late by more than 1, 3 and 5 minutes; median (min)."""

    visits: int
    early_1: float
    late_1: float
    late_3: float
    late_5: float
    median_min: float

    def line(self) -> str:
        return (f"{self.visits} visits: early > 1 min {100 * self.early_1:.1f} %, late > 1 min "
                f"{100 * self.late_1:.1f} %, > 3 min {100 * self.late_3:.1f} %, > 5 min {100 * self.late_5:.1f} %, "
                f"median {self.median_min:+.1f} min")


def summarise(deviation_s: npt.ArrayLike) -> Lateness:
    """The summary of schedule deviations in seconds (positive = late)."""
    minutes = np.asarray(deviation_s, dtype=float) / 60.0
    if not len(minutes):
        raise ValueError("no deviations to summarise")
    return Lateness(len(minutes), float((minutes < -1).mean()), float((minutes > 1).mean()),
                    float((minutes > 3).mean()), float((minutes > 5).mean()), float(np.median(minutes)))


def truth_deviation(net: Network, truth: DayTruth) -> FloatArray:
    """Simulated arrival minus timetabled arrival at every stop visit after the first of its trip (seconds)."""
    first = np.zeros(len(truth.visit), dtype=bool)
    first[truth.visit_ptr[:-1]] = True
    deviation: FloatArray = (truth.arrival - net.visit_arr[truth.visit])[~first]
    return deviation
