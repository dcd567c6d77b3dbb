"""Shape points with distance along the shape, and straight-line shapes for trips that have none."""

from __future__ import annotations

import numpy as np
import pandas as pd

from prediction.geo import haversine_m

__all__ = ["GENERATED_PREFIX", "generate_shapes", "shape_points"]

GENERATED_PREFIX = "qala-line-"


def shape_points(shapes: pd.DataFrame) -> pd.DataFrame:
    """Sorted shape points with ``dist_m``, metres from the shape's first point."""
    frame = shapes[["shape_id", "shape_pt_sequence", "shape_pt_lat", "shape_pt_lon"]].copy()
    frame = frame.sort_values(["shape_id", "shape_pt_sequence"], kind="stable").reset_index(drop=True)
    lat = frame["shape_pt_lat"].to_numpy(dtype=float)
    lon = frame["shape_pt_lon"].to_numpy(dtype=float)
    shape = frame["shape_id"].to_numpy()
    steps = np.zeros(len(frame))
    if len(frame) > 1:
        steps[1:] = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
        steps[1:][shape[1:] != shape[:-1]] = 0.0
    frame["dist_m"] = pd.Series(steps).groupby(frame["shape_id"].to_numpy()).cumsum().to_numpy()
    frame["shape_pt_sequence"] = frame["shape_pt_sequence"].astype(np.int64)
    return frame


def _stop_patterns(stop_times: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """Each trip's stop ids in order (stop_times arrive sorted by trip and sequence)."""
    trips = stop_times["trip_id"].astype(str).to_numpy(dtype=object)
    stops = stop_times["stop_id"].astype(str).to_numpy(dtype=object)
    starts = np.flatnonzero(np.concatenate([[True], trips[1:] != trips[:-1]]))
    ends = np.append(starts[1:], len(trips))
    return {str(trips[a]): tuple(stops[a:b]) for a, b in zip(starts, ends, strict=True)}


def generate_shapes(trips: pd.DataFrame, stop_times: pd.DataFrame,
                    stops: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give every trip without a shape a straight-line shape through its stops.

    Trips that visit the same stops in the same order share one shape. Returns the updated
    trips and the generated shape points (with ``dist_m``).
    """
    has_shape = trips["shape_id"].notna() if "shape_id" in trips else pd.Series(False, trips.index)
    needing = trips.loc[~has_shape, "trip_id"]
    if needing.empty:
        return trips, pd.DataFrame(columns=["shape_id", "shape_pt_sequence", "shape_pt_lat", "shape_pt_lon"])
    times = stop_times[stop_times["trip_id"].isin(needing)]
    patterns = _stop_patterns(times)
    numbers: dict[tuple[str, ...], int] = {}
    for pattern in patterns.values():
        numbers.setdefault(pattern, len(numbers))
    uniques = list(numbers)
    shape_of_trip = pd.Series({trip: f"{GENERATED_PREFIX}{numbers[p] + 1}" for trip, p in patterns.items()})
    coords = stops.set_index("stop_id")[["stop_lat", "stop_lon"]]
    frames = []
    for number, pattern in enumerate(uniques):
        points = coords.loc[list(pattern)]
        frames.append(pd.DataFrame({
            "shape_id": f"{GENERATED_PREFIX}{number + 1}",
            "shape_pt_sequence": np.arange(len(pattern), dtype=np.int64),
            "shape_pt_lat": points["stop_lat"].to_numpy(dtype=float),
            "shape_pt_lon": points["stop_lon"].to_numpy(dtype=float),
        }))
    trips = trips.copy()
    if "shape_id" not in trips:
        trips["shape_id"] = pd.Series(pd.NA, index=trips.index, dtype="string")
    fill = trips["trip_id"].map(shape_of_trip)
    trips["shape_id"] = trips["shape_id"].astype("string").fillna(fill.astype("string"))
    return trips, pd.concat(frames, ignore_index=True)
