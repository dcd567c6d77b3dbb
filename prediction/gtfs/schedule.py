"""Read a GTFS feed with gtfs-kit, check it, and normalise it into plain DataFrames ready to load.

This is the one module that imports gtfs_kit. Times become integer seconds of the service day,
frequency-based trips are expanded, trips without shapes get straight-line shapes, and the files
gtfs-kit does not read (translations.txt, Fares v2) are read from the feed directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from prediction.gtfs.faresv2 import parse_fares_v2
from prediction.gtfs.feedcheck import FeedInvalid, FeedIssue, IssueList, canonical_issues, check_required_columns
from prediction.gtfs.feedsource import FeedSource
from prediction.gtfs.shapes import generate_shapes, shape_points
from prediction.gtfs.stoptimes import build_stop_times, expand_frequencies, parse_frequencies
from prediction.gtfs.tablechecks import (
    check_agency,
    check_calendars,
    check_routes,
    check_shapes,
    check_stops,
    check_trips,
    parse_dates,
)

if TYPE_CHECKING:
    import gtfs_kit as gk

__all__ = ["REQUIRED_FILES", "ScheduleFeed", "read_schedule"]

REQUIRED_FILES = ("agency", "stops", "routes", "trips", "stop_times")
Progress = Callable[[str], None]


@dataclass
class ScheduleFeed:
    """A checked, normalised feed. Every frame uses GTFS column names plus our derived columns."""

    source: str
    sha256: str
    timezone: str
    feed_info: dict[str, object]
    agency: pd.DataFrame
    stops: pd.DataFrame
    routes: pd.DataFrame
    trips: pd.DataFrame
    stop_times: pd.DataFrame
    calendar: pd.DataFrame
    calendar_dates: pd.DataFrame
    shapes: pd.DataFrame  # one row per shape: shape_id, generated, length_m
    shape_points: pd.DataFrame
    frequencies: pd.DataFrame
    translations: pd.DataFrame
    fares: dict[str, pd.DataFrame] = field(default_factory=dict)
    warnings: list[FeedIssue] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        tables = {name: getattr(self, name) for name in (
            "agency", "stops", "routes", "trips", "stop_times", "calendar", "calendar_dates", "shapes",
            "shape_points", "frequencies", "translations")}
        tables.update(self.fares)
        return {name: len(frame) for name, frame in tables.items()}


def read_schedule(path: str | Path, *, canonical: bool = True, strict: bool = False,
                  progress: Progress | None = None) -> ScheduleFeed:
    """Read and check the feed at ``path``; raise ``FeedInvalid`` listing every error found.

    ``canonical`` adds MobilityData's rules (gtfs-guru) as warnings, or as errors with ``strict``.
    """
    step = progress or (lambda _msg: None)
    source = FeedSource(path)
    issues = IssueList()
    for table in REQUIRED_FILES:
        if not source.has(table):
            issues.add("error", "missing_required_file", f"required file {table}.txt is missing", f"{table}.txt")
    if not (source.has("calendar") or source.has("calendar_dates")):
        issues.add("error", "missing_calendar", "a feed needs calendar.txt or calendar_dates.txt", "calendar.txt")
    issues.raise_if_errors()
    step("reading with gtfs-kit")
    feed = _read_with_gtfs_kit(source)
    step("checking")
    timezone = _check_tables(issues, feed)
    issues.raise_if_errors()
    step("checking stop_times")
    stop_times = build_stop_times(issues, feed.stop_times, pd.Index(feed.trips["trip_id"]),
                                  pd.Index(feed.stops["stop_id"]))
    frequencies = _frequencies(issues, feed)
    translations = _translations(issues, source)
    fares = parse_fares_v2(issues, source.read_raw)
    if canonical:
        step("canonical rules (gtfs-guru)")
        issues.items.extend(canonical_issues(str(source.path), as_errors=strict))
    issues.raise_if_errors()
    if feed.fare_attributes is not None:
        issues.add("warning", "fares_v1_ignored", "fare_attributes.txt (Fares v1) is not imported; use Fares v2",
                   "fare_attributes.txt")
    step("normalising")
    trips, stop_times = expand_frequencies(_trips(feed.trips), stop_times, frequencies)
    trips = _trip_spans(trips, stop_times)
    trips, generated = generate_shapes(trips, stop_times, feed.stops)
    points, shapes = _all_shapes(feed.shapes, generated)
    assert timezone is not None  # _check_tables reported an error otherwise
    return ScheduleFeed(
        source=str(source.path), sha256=source.sha256(), timezone=timezone,
        feed_info=_feed_info(feed.feed_info, issues), agency=_agency(feed.agency),
        stops=_stops(feed.stops, translations), routes=_routes(feed.routes), trips=trips,
        stop_times=stop_times, calendar=_calendar(feed.calendar), calendar_dates=_calendar_dates(feed.calendar_dates),
        shapes=shapes, shape_points=points, frequencies=frequencies, translations=translations, fares=fares,
        warnings=issues.warnings,
    )


def _read_with_gtfs_kit(source: FeedSource) -> gk.Feed:
    # imported here, not at module top: gtfs-kit pulls in geopandas and shapely (about 1 s), and web
    # processes import this module only for ScheduleFeed
    import gtfs_kit as gk

    try:
        return gk.read_feed(source.path, dist_units="km")
    except (ValueError, TypeError) as exc:
        # pandas names neither the row nor the column of a cell it cannot convert: find it ourselves
        issues = IssueList()
        _locate_bad_cells(issues, source)
        if not issues.errors:
            issues.add("error", "unreadable_feed", f"gtfs-kit cannot read the feed: {exc}")
        raise FeedInvalid(issues.items) from exc


def _locate_bad_cells(issues: IssueList, source: FeedSource) -> None:
    import gtfs_kit as gk

    for table, dtypes in gk.DTYPES.items():
        raw = source.read_raw(table)
        if raw is None:
            continue
        for column, dtype in dtypes.items():
            if column not in raw.columns or dtype not in ("Int32", "Int64", "int", "float"):
                continue
            text = raw[column]
            numbers = pd.to_numeric(text.str.strip(), errors="coerce")
            bad = (numbers.isna() & text.notna()).to_numpy(dtype=bool)
            if dtype.startswith("Int"):
                bad = bad | (numbers.notna() & (numbers % 1 != 0)).to_numpy(dtype=bool)
            kind = "an integer" if dtype.startswith("Int") else "a number"
            issues.rows("error", "invalid_number", f"{table}.txt", column, bad, raw,
                        f"{column} {{value!r}} is not {kind}")


def _check_tables(issues: IssueList, feed: gk.Feed) -> str | None:
    timezone = check_agency(issues, feed.agency)
    check_stops(issues, feed.stops)
    check_routes(issues, feed.routes, feed.agency)
    service_ids = check_calendars(issues, feed.calendar, feed.calendar_dates)
    if feed.shapes is not None:
        check_shapes(issues, feed.shapes)
    check_trips(issues, feed.trips, feed.routes, service_ids, feed.shapes)
    return timezone


def _frequencies(issues: IssueList, feed: gk.Feed) -> pd.DataFrame:
    if feed.frequencies is None or feed.frequencies.empty:
        return pd.DataFrame(columns=["trip_id", "start_s", "end_s", "headway_secs", "exact_times"])
    return parse_frequencies(issues, feed.frequencies, pd.Index(feed.trips["trip_id"]))


def _translations(issues: IssueList, source: FeedSource) -> pd.DataFrame:
    columns = ["table_name", "field_name", "language", "translation", "record_id", "record_sub_id", "field_value"]
    raw = source.read_raw("translations")
    if raw is None:
        return pd.DataFrame(columns=columns)
    if not check_required_columns(issues, "translations.txt", raw,
                                  ["table_name", "field_name", "language", "translation"]):
        return pd.DataFrame(columns=columns)
    for column in columns:
        if column not in raw.columns:
            raw[column] = pd.Series(pd.NA, index=raw.index, dtype="string")
    raw["language"] = raw["language"].str.strip()
    return raw[columns]


def _trips(trips: pd.DataFrame) -> pd.DataFrame:
    frame = trips.copy()
    frame["frequency_template_id"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    return frame


def _trip_spans(trips: pd.DataFrame, stop_times: pd.DataFrame) -> pd.DataFrame:
    """Add each trip's first departure and last arrival; drop trips that have no stop_times."""
    grouped = stop_times.groupby("trip_id", sort=False)
    spans = pd.DataFrame({"start_s": grouped["departure_s"].min(), "end_s": grouped["arrival_s"].max()})
    merged = trips.merge(spans, left_on="trip_id", right_index=True, how="inner")
    return merged.reset_index(drop=True)


def _all_shapes(raw: pd.DataFrame | None, generated: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = []
    if raw is not None and not raw.empty:
        frames.append(shape_points(raw).assign(generated=False))
    if not generated.empty:
        frames.append(shape_points(generated).assign(generated=True))
    if not frames:
        empty = pd.DataFrame(columns=["shape_id", "shape_pt_sequence", "shape_pt_lat", "shape_pt_lon", "dist_m"])
        return empty, pd.DataFrame(columns=["shape_id", "generated", "length_m"])
    points = pd.concat(frames, ignore_index=True)
    shapes = points.groupby("shape_id", sort=False).agg(generated=("generated", "first"), length_m=("dist_m", "max"))
    return points.drop(columns=["generated"]), shapes.reset_index()


def _stops(stops: pd.DataFrame, translations: pd.DataFrame) -> pd.DataFrame:
    """Stops with ``search_text``: casefolded name, code and every translation of the name."""
    frame = stops.copy()
    names = translations[(translations["table_name"] == "stops") & (translations["field_name"] == "stop_name")]
    by_id = names.dropna(subset=["record_id"]).groupby("record_id")["translation"].agg(" ".join)
    by_value = names.dropna(subset=["field_value"]).groupby("field_value")["translation"].agg(" ".join)
    parts = [frame[c].astype("string").fillna("") for c in ("stop_name", "stop_code") if c in frame.columns]
    parts.append(frame["stop_id"].map(by_id).astype("string").fillna(""))
    if "stop_name" in frame.columns:
        parts.append(frame["stop_name"].map(by_value).astype("string").fillna(""))
    text = parts[0]
    for part in parts[1:]:
        text = text + " " + part
    frame["search_text"] = [" ".join(t.casefold().split()) for t in text]
    return frame


def _routes(routes: pd.DataFrame) -> pd.DataFrame:
    """Routes with malformed colours dropped (they were reported as warnings)."""
    frame = routes.copy()
    for column in ("route_color", "route_text_color"):
        if column in frame.columns:
            color = frame[column].astype("string").str.strip().str.upper()
            # pandas-stubs: Series.where's ``other`` does not admit pd.NA
            frame[column] = color.where(color.str.fullmatch(r"[0-9A-F]{6}").fillna(False), pd.NA)  # type: ignore[call-overload]
    return frame


def _agency(agency: pd.DataFrame) -> pd.DataFrame:
    frame = agency.copy()
    if "agency_id" not in frame.columns or frame["agency_id"].isna().all():
        frame["agency_id"] = "default"  # single-agency feeds may omit the id
    return frame


def _calendar(calendar: pd.DataFrame | None) -> pd.DataFrame:
    if calendar is None:
        return pd.DataFrame(columns=["service_id", "monday", "tuesday", "wednesday", "thursday", "friday",
                                     "saturday", "sunday", "start_date", "end_date"])
    frame = calendar.copy()
    for column in ("start_date", "end_date"):
        frame[column] = pd.to_datetime(frame[column], format="%Y%m%d").dt.date
    return frame


def _calendar_dates(calendar_dates: pd.DataFrame | None) -> pd.DataFrame:
    if calendar_dates is None:
        return pd.DataFrame(columns=["service_id", "date", "exception_type"])
    frame = calendar_dates.copy()
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d").dt.date
    return frame


def _feed_info(feed_info: pd.DataFrame | None, issues: IssueList) -> dict[str, object]:
    if feed_info is None or feed_info.empty:
        return {}
    row = feed_info.iloc[0]
    info: dict[str, object] = {str(k): (None if pd.isna(v) else v) for k, v in row.items()}  # column names are str
    for column in ("feed_start_date", "feed_end_date"):
        if column in feed_info.columns:
            parsed = parse_dates(issues, "feed_info.txt", feed_info, column, required=False)
            info[column] = None if pd.isna(parsed.iloc[0]) else parsed.iloc[0].date()
    return info

