"""One prediction cycle's output, as the worker hands it to the board composer, the GTFS-rt encoder and the
prediction log: parallel arrays, one entry per predicted stop call. It lives here, below both the worker that
makes it and the realtime code that reads it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["CyclePredictions"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CyclePredictions:
    """Predicted arrivals of one cycle as parallel arrays (epoch seconds)."""

    made_at: float
    trip: IntArray  # index into net.trip_ids
    start_date: npt.NDArray[np.object_]
    visit: IntArray  # index into net visits
    scheduled: FloatArray
    predicted: FloatArray
    lower: FloatArray | None
    upper: FloatArray | None
    vehicle_id: npt.NDArray[np.object_]
    observed_at: FloatArray
    run_keys: set[tuple[int, str]]  # runs with events (predicted or finished): no timetable rows for them
    stalled_s: FloatArray | None = None  # how long each row's bus has been overdue at its next stop (0: moving)
    stops_away: IntArray | None = None  # stops between each row's bus (its last stop seen) and the row's stop
    distance_m: FloatArray | None = None  # along the shape from the bus's last stop seen to the row's stop
    occupancy: npt.NDArray[np.object_] | None = None  # GTFS-rt OccupancyStatus names, None where unknown
    skipped: npt.NDArray[np.bool_] | None = None  # the bus passes the row's stop without stopping
    cancelled: frozenset[tuple[int, str]] = frozenset()  # (trip, start date) runs called off: their rows say so

    def __len__(self) -> int:
        return len(self.trip)
