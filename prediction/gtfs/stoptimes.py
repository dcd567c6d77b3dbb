"""stop_times.txt and frequencies.txt: checks, integer times, interpolation and frequency expansion."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.gtfs.feedcheck import IssueList, check_references, check_required_columns
from prediction.gtfs.gtfstime import MISSING, format_gtfs_time, parse_gtfs_times
from prediction.gtfs.tablechecks import check_ids_unique

__all__ = ["build_stop_times", "expand_frequencies", "parse_frequencies"]

FILE = "stop_times.txt"
IntArray = npt.NDArray[np.int64]


def build_stop_times(issues: IssueList, raw: pd.DataFrame, trip_ids: pd.Index, stop_ids: pd.Index) -> pd.DataFrame:
    """Check stop_times and return them sorted by trip and sequence with ``arrival_s``/``departure_s``
    (interpolated where the feed leaves them empty) and ``_line`` (the row's line in the file)."""
    if not check_required_columns(issues, FILE, raw, ["trip_id", "stop_id", "stop_sequence"]):
        return raw
    for column in ("arrival_time", "departure_time"):
        if column not in raw.columns:
            issues.add("error", "missing_required_column", f"required column {column} is missing", FILE, 1, column)
            return raw
    check_references(issues, FILE, raw, "trip_id", trip_ids, "trips.txt")
    check_references(issues, FILE, raw, "stop_id", stop_ids, "stops.txt")
    negative = (raw["stop_sequence"] < 0).fillna(False).to_numpy(dtype=bool)
    issues.rows("error", "negative_sequence", FILE, "stop_sequence", negative, raw, "stop_sequence {value} is negative")
    check_ids_unique(issues, FILE, raw, ["trip_id", "stop_sequence"])
    arrival, bad_arrival = parse_gtfs_times(raw["arrival_time"])
    departure, bad_departure = parse_gtfs_times(raw["departure_time"])
    issues.rows("error", "bad_time", FILE, "arrival_time", bad_arrival, raw, "arrival_time {value!r} is not H:MM:SS")
    issues.rows("error", "bad_time", FILE, "departure_time", bad_departure, raw,
                "departure_time {value!r} is not H:MM:SS")
    if issues.errors:
        return raw
    frame = raw.assign(_line=np.arange(len(raw), dtype=np.int64) + 2)
    arrival = np.where(arrival == MISSING, departure, arrival)
    departure = np.where(departure == MISSING, arrival, departure)
    frame["arrival_s"] = arrival
    frame["departure_s"] = departure
    frame = _sorted(frame)
    _check_trip_times(issues, frame)
    if issues.errors:
        return frame
    if (frame["arrival_s"].to_numpy() == MISSING).any():
        frame = _interpolate(frame)
    return frame


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by (trip_id, stop_sequence) unless the file already is grouped and ordered (the usual case)."""
    trip = frame["trip_id"].to_numpy()
    seq = frame["stop_sequence"].to_numpy(dtype=np.int64)
    change = np.concatenate([[True], trip[1:] != trip[:-1]])
    grouped = int(change.sum()) == len(pd.unique(trip))
    increasing = bool(((seq[1:] > seq[:-1]) | change[1:]).all())
    if grouped and increasing:
        return frame.reset_index(drop=True)
    return frame.sort_values(["trip_id", "stop_sequence"], kind="stable").reset_index(drop=True)


def _trip_bounds(frame: pd.DataFrame) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    trip = frame["trip_id"].to_numpy()
    first = np.concatenate([[True], trip[1:] != trip[:-1]])
    last = np.concatenate([trip[1:] != trip[:-1], [True]])
    return first, last


def _check_trip_times(issues: IssueList, frame: pd.DataFrame) -> None:
    first, last = _trip_bounds(frame)
    arrival = frame["arrival_s"].to_numpy()
    departure = frame["departure_s"].to_numpy()
    missing = arrival == MISSING
    issues.rows("error", "missing_trip_edge_time", FILE, "arrival_time", (first | last) & missing, frame,
                "the first and last stop of a trip need a time")
    issues.rows("error", "departure_before_arrival", FILE, "departure_time",
                (departure < arrival) & ~missing, frame, "departure_time {value} is before arrival_time")
    # the last known departure before each row, within the same trip
    known_dep = pd.Series(np.where(missing, np.nan, departure.astype(float)))
    trip_start = np.cumsum(first)
    shifted = known_dep.groupby(trip_start).shift(1)
    previous = shifted.groupby(trip_start).ffill().to_numpy()
    backwards = ~missing & ~np.isnan(previous) & (arrival < np.nan_to_num(previous, nan=-1))
    issues.rows("error", "time_travels_backwards", FILE, "arrival_time", backwards, frame,
                "arrival_time {value} is before the previous stop's departure")


def _interpolate(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill stops without times linearly between timepoints, by shape distance when the feed gives it,
    else by stop order."""
    first, _ = _trip_bounds(frame)
    trip_key = np.cumsum(first)
    if "shape_dist_traveled" in frame.columns and frame["shape_dist_traveled"].notna().all():
        position = frame["shape_dist_traveled"].astype(float).to_numpy()
    else:
        position = np.arange(len(frame), dtype=float)
    arrival = frame["arrival_s"].to_numpy()
    known = arrival != MISSING
    times = pd.Series(np.where(known, arrival, np.nan).astype(float))
    pos_known = pd.Series(np.where(known, position, np.nan))
    groups = pd.Series(trip_key)
    t0 = times.groupby(groups).ffill().to_numpy()
    t1 = times.groupby(groups).bfill().to_numpy()
    p0 = pos_known.groupby(groups).ffill().to_numpy()
    p1 = pos_known.groupby(groups).bfill().to_numpy()
    span = np.where(p1 - p0 > 0, p1 - p0, 1.0)
    filled = np.rint(t0 + (t1 - t0) * (position - p0) / span)
    result = np.where(known, arrival, filled).astype(np.int64)
    frame = frame.copy()
    frame["arrival_s"] = result
    departure = frame["departure_s"].to_numpy()
    frame["departure_s"] = np.where(departure == MISSING, result, departure)
    frame["timepoint"] = np.where(known, 1, 0)
    return frame


def parse_frequencies(issues: IssueList, raw: pd.DataFrame, trip_ids: pd.Index) -> pd.DataFrame:
    file = "frequencies.txt"
    if not check_required_columns(issues, file, raw, ["trip_id", "start_time", "end_time", "headway_secs"]):
        return raw
    check_references(issues, file, raw, "trip_id", trip_ids, "trips.txt")
    start, bad_start = parse_gtfs_times(raw["start_time"])
    end, bad_end = parse_gtfs_times(raw["end_time"])
    issues.rows("error", "bad_time", file, "start_time", bad_start, raw, "start_time {value!r} is not H:MM:SS")
    issues.rows("error", "bad_time", file, "end_time", bad_end, raw, "end_time {value!r} is not H:MM:SS")
    headway = raw["headway_secs"].astype("Int64")
    issues.rows("error", "invalid_headway", file, "headway_secs", (headway <= 0).fillna(False).to_numpy(dtype=bool),
                raw, "headway_secs {value} must be positive")
    issues.rows("error", "end_before_start", file, "end_time", (end <= start) & ~bad_start & ~bad_end, raw,
                "end_time {value} is not after start_time")
    exact = raw["exact_times"].fillna(0).astype("Int64") if "exact_times" in raw else pd.Series(0, raw.index)
    return pd.DataFrame({"trip_id": raw["trip_id"], "start_s": start, "end_s": end,
                         "headway_secs": headway.fillna(0).astype(np.int64), "exact_times": exact.astype(np.int64)})


def expand_frequencies(trips: pd.DataFrame, stop_times: pd.DataFrame,
                       frequencies: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replace each headway-based trip by concrete trips, one per departure in its frequency windows.

    A concrete trip is named ``<template trip_id>@<HH:MM:SS start>`` and keeps the template's
    travel times; ``frequency_template_id`` records where it came from.
    """
    if frequencies.empty:
        return trips, stop_times
    templates = set(frequencies["trip_id"])
    new_trips: list[pd.DataFrame] = []
    new_times: list[pd.DataFrame] = []
    by_trip = stop_times[stop_times["trip_id"].isin(templates)].groupby("trip_id", sort=False)
    trip_rows = trips.set_index("trip_id", drop=False)
    for template, windows in frequencies.groupby("trip_id", sort=False):
        pattern = by_trip.get_group(template)
        offset = int(pattern["departure_s"].to_numpy()[0])
        # pandas-stubs types itertuples fields as any pandas scalar; these columns are integer seconds
        starts = np.concatenate([np.arange(w.start_s, w.end_s, w.headway_secs, dtype=np.int64)  # type: ignore[arg-type,misc]
                                 for w in windows.itertuples(index=False)])
        names = [f"{template}@{format_gtfs_time(int(start))}" for start in starts]
        tiled = pattern.iloc[np.tile(np.arange(len(pattern)), len(starts))].reset_index(drop=True)
        shift = np.repeat(starts - offset, len(pattern))
        tiled["trip_id"] = np.repeat(names, len(pattern))
        tiled["arrival_s"] = tiled["arrival_s"].to_numpy() + shift
        tiled["departure_s"] = tiled["departure_s"].to_numpy() + shift
        new_times.append(tiled)
        rows = trip_rows.loc[[template] * len(starts)].reset_index(drop=True)
        new_trips.append(rows.assign(trip_id=names, frequency_template_id=template))
    kept_trips = trips[~trips["trip_id"].isin(templates)]
    kept_times = stop_times[~stop_times["trip_id"].isin(templates)]
    trips_out = pd.concat([kept_trips, *new_trips], ignore_index=True)
    times_out = pd.concat([kept_times, *new_times], ignore_index=True)
    return trips_out, times_out
