"""Simulator parameters: speeds, time-of-day profiles, demand, rider mix, GPS quality — one frozen dataclass.

The time-of-day travel-time profiles are fitted to real Astana trip durations (``prediction.eta.calibration``,
``qala simulate calibrate``); everything else is a plausible default documented in ``docs/simulator.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["ALMATY_RIDER_MIX", "DEMO_PARAMS", "SimParams", "demand_factor", "hourly_factor"]

FloatArray = npt.NDArray[np.float64]

# Travel-time multiplier by hour of the service day (index = hour, 0..29), relative to free-ish flow.
# Fitted from Astana CTS 2024 median trip duration by start hour (see docs/simulator.md).
_WEEKDAY = (0.84, 0.84, 0.84, 0.84, 0.84, 0.88, 0.95, 1.02, 1.03, 0.96, 0.98, 1.00, 1.03, 1.02, 1.03, 1.05,
            1.09, 1.15, 1.18, 1.12, 1.02, 0.95, 0.88, 0.85, 0.84, 0.84, 0.84, 0.84, 0.84, 0.84)
_WEEKEND = (0.84, 0.84, 0.84, 0.84, 0.84, 0.86, 0.88, 0.89, 0.89, 0.93, 0.96, 0.97, 0.95, 0.94, 0.94, 0.97,
            1.00, 1.01, 0.98, 0.94, 0.92, 0.90, 0.87, 0.85, 0.84, 0.84, 0.84, 0.84, 0.84, 0.84)

# Share of riders by Onay fare category (Almaty; categories as in the demo feed's rider_categories.txt).
ALMATY_RIDER_MIX: dict[str, float] = {
    "standard": 0.62, "student": 0.12, "school": 0.08, "pensioner": 0.10, "pensioner_75": 0.03,
    "large_family": 0.03, "veteran": 0.005, "disability": 0.015,
}


@dataclass(frozen=True)
class SimParams:
    """Everything the simulator draws from; the same params and seed give the same city, day by day."""

    free_speed_kmh: float = 27.0  # running speed between stops off-peak, before corridor factors
    # scale each route's speed so the timetable's running time falls at timetable_percentile of the simulated ones
    # (prediction/sim/pace.py): the demo's city (DEMO_PARAMS: `qala simulate --pace-to-timetable`, the live city of
    # `qala worker --simulate`) runs late more often than early, as a real city does. Off by default: the
    # benchmarks' and docs' figures were measured on the free-speed city, and the Astana calibration fits with it
    timetable_pace: bool = False
    timetable_percentile: float = 40.0  # of simulated running times, where the timetable's falls (pace.py)
    stop_penalty_s: float = 9.0  # braking and pulling out when a bus serves a stop
    weekday_profile: tuple[float, ...] = _WEEKDAY
    weekend_profile: tuple[float, ...] = _WEEKEND
    corridor_sigma: float = 0.18  # persistent per-segment speed factor (log-normal)
    day_sigma: float = 0.06  # day-to-day, weather-like, city-wide factor
    day_ar: float = 0.5  # autocorrelation of the day factor (bad weather lasts)
    trip_sigma: float = 0.10  # per trip (driver, vehicle); widened to approach Astana's p10–p90 spread
    segment_sigma: float = 0.20  # per segment traversal (signals, traffic)
    incidents_per_route_day: float = 0.4
    incident_minutes: tuple[float, float] = (10.0, 40.0)
    incident_slowdown: tuple[float, float] = (1.8, 3.5)  # travel-time multiplier on the blocked segment
    boardings_per_min_peak: float = 0.35  # at an average stop at peak, per minute of headway
    boarding_s: float = 2.2  # per rider: card tap at the validator
    alighting_s: float = 1.0
    door_s: float = 5.0
    min_layover_s: float = 180.0
    timepoint_every: int = 5  # every fifth stop of a trip is a timepoint (feeds rarely mark them) ...
    hold_early_s: float = float("inf")  # ... where a bus more than this ahead of the timetable waits (inf: never)
    pull_out_s: float = 600.0  # a vehicle stands at its first stop this long before its first trip
    max_headway_s: float = 1800.0
    bunching_iterations: int = 3
    gps_sigma_m: float = 6.0
    gps_outlier_share: float = 0.005
    missed_ping_share: float = 0.03
    delayed_ping_share: float = 0.02
    duplicate_ping_share: float = 0.005
    riders: int = 200_000
    pass_share: float = 0.15
    transfer_share: float = 0.18
    rider_mix: dict[str, float] = field(default_factory=lambda: dict(ALMATY_RIDER_MIX))


_DEMAND = np.array([0.05, 0.02, 0.01, 0.01, 0.02, 0.15, 0.45, 0.95, 1.00, 0.70, 0.50, 0.50, 0.55, 0.55, 0.55, 0.60,
                    0.75, 0.95, 1.00, 0.75, 0.50, 0.35, 0.25, 0.15, 0.08, 0.05, 0.05, 0.05, 0.05, 0.05])


def hourly_factor(profile: tuple[float, ...], seconds: FloatArray) -> FloatArray:
    """A profile (one value per hour of the service day) evaluated at GTFS seconds, linear between hour centres."""
    table = np.asarray(profile, dtype=float)
    hours = np.clip(np.asarray(seconds, dtype=float) / 3600.0 - 0.5, 0.0, len(table) - 1.0)
    factor: FloatArray = np.interp(hours, np.arange(len(table)), table)
    return factor


def demand_factor(seconds: FloatArray, weekend: bool) -> FloatArray:
    """Relative boarding demand by time of day (weekends flatter and lower)."""
    base = hourly_factor(tuple(_DEMAND), seconds)
    return 0.55 * np.sqrt(base) if weekend else base


# the city `make demo` simulates and streams: paced to its timetable (docs/demo-lateness.md)
DEMO_PARAMS = SimParams(timetable_pace=True)
