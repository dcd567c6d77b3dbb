"""TheTransitClock's Kalman filter for a stop path's run time, over many stop paths at once.

Read in TheTransitClock (github.com/Transitime/core, ``transitclock/src/main/java/org/transitclock/core/``):
``predictiongenerator/kalman/KalmanPrediction.java`` (the filter),
``predictiongenerator/scheduled/traveltime/kalman/KalmanPredictionGeneratorImpl.java`` (when it is used, the error
cache) and ``predictiongenerator/HistoricalPredictionLibrary.java`` (``getLastVehicleTravelTime``,
``lastDaysTimes``). For each stop path (segment) ahead of a bus:

- *historical*: the same trip's run time on that stop path on its last days (at most ``maxdays`` = 3, looked for
  over ``maxdaystoseach`` = 21 days); ``mean`` and population ``variance`` of those;
- *last vehicle*: the run time of the last other vehicle, the same day, that departed the previous stop and
  arrived at this one (any trip through both stops);
- *error*: the filter error stored (``KalmanErrorCache``, keyed by trip and stop path) when the prediction for
  that last vehicle's trip on this stop path was made; ``initialerrorvalue`` = 100 when there is none. So the error
  is carried from vehicle to vehicle along a stop path, not from one stop path to the next;
- ``gain = (error + variance) / (error + 2·variance)``, ``prediction = (1 − gain)·last + gain·mean``, and the new
  error ``variance · gain`` is stored under this trip and stop path.

It is used only with a last vehicle and at least ``mindays`` = 3 days of the trip; otherwise the default generator's
historical average (ours: the segment's mean run time for the hour, falling back to the schedule). Dwell times are
the default generator's (historical) ones. Not carried over: TheTransitClock's travel-time outlier filter.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["INITIAL_ERROR", "MIN_DAYS", "kalman_run"]

FloatArray = npt.NDArray[np.float64]

INITIAL_ERROR = 100.0  # transitclock.prediction.data.kalman.initialerrorvalue
MIN_DAYS = 3  # transitclock.prediction.data.kalman.mindays


def kalman_run(last_s: FloatArray, mean_s: FloatArray, variance_s2: FloatArray, error: FloatArray
               ) -> tuple[FloatArray, FloatArray]:
    """(predicted run seconds, the filter error to store) per stop path. Where error and variance are both 0 the
    gain is 0/0 in TheTransitClock; here it is 1 (the days agree exactly and the filter has no doubt left)."""
    denominator = error + 2.0 * variance_s2
    safe = np.where(denominator > 0, denominator, 1.0)
    gain = np.where(denominator > 0, (error + variance_s2) / safe, 1.0)
    return (1.0 - gain) * last_s + gain * mean_s, variance_s2 * gain
