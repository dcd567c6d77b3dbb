"""Per-file GTFS rules that our loader and queries rely on; each reports file, row and field."""

from __future__ import annotations

import zoneinfo

import pandas as pd

from prediction.gtfs.feedcheck import IssueList, check_references, check_required_columns

__all__ = [
    "check_agency",
    "check_calendars",
    "check_ids_unique",
    "check_routes",
    "check_shapes",
    "check_stops",
    "check_trips",
    "parse_dates",
]


def check_ids_unique(issues: IssueList, file: str, frame: pd.DataFrame, columns: list[str]) -> None:
    if not all(c in frame.columns for c in columns):
        return
    dup = frame.duplicated(subset=columns, keep="first").to_numpy(dtype=bool)
    issues.rows("error", "duplicate_key", file, columns[-1], dup, frame,
                f"duplicate {'/'.join(columns)} {{value!r}}")


def parse_dates(issues: IssueList, file: str, frame: pd.DataFrame, column: str,
                required: bool = True) -> pd.Series:
    """Parse a YYYYMMDD column into ``datetime64``; bad cells are errors."""
    if column not in frame.columns:
        if required:
            issues.add("error", "missing_required_column", f"required column {column} is missing", file, 1,
                       column)
        return pd.Series(pd.NaT, index=frame.index)
    text = frame[column].astype("string").str.strip()
    parsed = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    bad = (parsed.isna() & text.notna()).to_numpy(dtype=bool)
    issues.rows("error", "invalid_date", file, column, bad, frame, f"{column} {{value!r}} is not a YYYYMMDD date")
    return parsed


def check_agency(issues: IssueList, agency: pd.DataFrame) -> str | None:
    """Returns the agency timezone (all agencies must share one)."""
    file = "agency.txt"
    if not check_required_columns(issues, file, agency, ["agency_name", "agency_timezone"]):
        return None
    zones = agency["agency_timezone"].astype("string").str.strip()
    for pos, zone in enumerate(zones):
        if zone is pd.NA:  # type: ignore[comparison-overlap]  # pandas-stubs: a "string" Series yields pd.NA too
            continue
        try:
            zoneinfo.ZoneInfo(str(zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            issues.add("error", "invalid_timezone", f"agency_timezone {zone!r} is not an IANA time zone", file,
                       pos + 2, "agency_timezone")
    distinct = zones.dropna().unique()
    if len(distinct) > 1:
        issues.add("error", "inconsistent_agency_timezone",
                   f"agencies use different time zones: {', '.join(map(str, distinct))}", file, None,
                   "agency_timezone")
    if len(agency) > 1 and "agency_id" not in agency.columns:
        issues.add("error", "missing_required_column", "agency_id is required when there are several agencies",
                   file, 1, "agency_id")
    return str(distinct[0]) if len(distinct) else None


def check_stops(issues: IssueList, stops: pd.DataFrame) -> None:
    file = "stops.txt"
    if not check_required_columns(issues, file, stops, ["stop_id"]):
        return
    check_ids_unique(issues, file, stops, ["stop_id"])
    location_type = stops["location_type"].fillna(0) if "location_type" in stops else pd.Series(0, stops.index)
    bad_type = ~location_type.isin([0, 1, 2, 3, 4]).to_numpy(dtype=bool)
    issues.rows("error", "invalid_location_type", file, "location_type", bad_type, stops,
                "location_type {value!r} must be 0-4")
    needs_position = location_type.isin([0, 1, 2]).to_numpy(dtype=bool)
    for column, limit in (("stop_lat", 90.0), ("stop_lon", 180.0)):
        if column not in stops.columns:
            issues.add("error", "missing_required_column", f"required column {column} is missing", file, 1,
                       column)
            continue
        values = stops[column].astype("Float64")
        missing = needs_position & values.isna().to_numpy(dtype=bool)
        issues.rows("error", "missing_coordinates", file, column, missing, stops, f"{column} is empty")
        out = (values.abs() > limit).fillna(False).to_numpy(dtype=bool)
        issues.rows("error", "bad_coordinates", file, column, out, stops,
                    f"{column} {{value}} is out of range (|value| ≤ {limit:g})")
    if {"stop_lat", "stop_lon"} <= set(stops.columns):
        null_island = ((stops["stop_lat"] == 0) & (stops["stop_lon"] == 0)).fillna(False).to_numpy(dtype=bool)
        issues.rows("error", "bad_coordinates", file, "stop_lat", null_island & needs_position, stops,
                    "stop is at 0,0 (missing coordinates)")
    if "parent_station" in stops.columns:
        check_references(issues, file, stops, "parent_station", pd.Index(stops["stop_id"]), "stops.txt")


def check_routes(issues: IssueList, routes: pd.DataFrame, agency: pd.DataFrame) -> None:
    file = "routes.txt"
    if not check_required_columns(issues, file, routes, ["route_id", "route_type"]):
        return
    check_ids_unique(issues, file, routes, ["route_id"])
    if "agency_id" in routes.columns and "agency_id" in agency.columns:
        check_references(issues, file, routes, "agency_id", pd.Index(agency["agency_id"]), "agency.txt")
    for column in ("route_color", "route_text_color"):
        if column in routes.columns:
            color = routes[column].astype("string")
            bad = (color.notna() & ~color.str.fullmatch(r"[0-9A-Fa-f]{6}").fillna(False)).to_numpy(dtype=bool)
            issues.rows("warning", "invalid_color", file, column, bad, routes,
                        f"{column} {{value!r}} is not a 6-digit hex colour (ignored)")


def check_trips(issues: IssueList, trips: pd.DataFrame, routes: pd.DataFrame, service_ids: pd.Index,
                shapes: pd.DataFrame | None) -> None:
    file = "trips.txt"
    if not check_required_columns(issues, file, trips, ["route_id", "service_id", "trip_id"]):
        return
    check_ids_unique(issues, file, trips, ["trip_id"])
    check_references(issues, file, trips, "route_id", pd.Index(routes["route_id"]), "routes.txt")
    check_references(issues, file, trips, "service_id", service_ids, "calendar.txt or calendar_dates.txt")
    if "shape_id" in trips.columns:
        known = pd.Index(shapes["shape_id"].unique()) if shapes is not None else pd.Index([])
        check_references(issues, file, trips, "shape_id", known, "shapes.txt")


def check_calendars(issues: IssueList, calendar: pd.DataFrame | None,
                    calendar_dates: pd.DataFrame | None) -> pd.Index:
    """Checks both calendar files; returns every service_id they define."""
    ids: list[str] = []
    if calendar is None and calendar_dates is None:
        issues.add("error", "missing_calendar", "a feed needs calendar.txt or calendar_dates.txt", "calendar.txt")
        return pd.Index([])
    if calendar is not None:
        file = "calendar.txt"
        days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        if check_required_columns(issues, file, calendar, ["service_id", *days, "start_date", "end_date"]):
            check_ids_unique(issues, file, calendar, ["service_id"])
            for day in days:
                bad = ~calendar[day].isin([0, 1]).to_numpy(dtype=bool)
                issues.rows("error", "invalid_day_flag", file, day, bad, calendar, f"{day} {{value!r}} must be 0 or 1")
            start = parse_dates(issues, file, calendar, "start_date")
            end = parse_dates(issues, file, calendar, "end_date")
            issues.rows("error", "end_before_start", file, "end_date", (end < start).to_numpy(dtype=bool),
                        calendar, "end_date {value} is before start_date")
            ids.extend(calendar["service_id"].dropna().astype(str))
    if calendar_dates is not None:
        file = "calendar_dates.txt"
        if check_required_columns(issues, file, calendar_dates, ["service_id", "date", "exception_type"]):
            parse_dates(issues, file, calendar_dates, "date")
            bad = ~calendar_dates["exception_type"].isin([1, 2]).to_numpy(dtype=bool)
            issues.rows("error", "invalid_exception_type", file, "exception_type", bad, calendar_dates,
                        "exception_type {value!r} must be 1 or 2")
            check_ids_unique(issues, file, calendar_dates, ["service_id", "date"])
            ids.extend(calendar_dates["service_id"].dropna().astype(str))
    return pd.Index(sorted(set(ids)))


def check_shapes(issues: IssueList, shapes: pd.DataFrame) -> None:
    file = "shapes.txt"
    columns = ["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"]
    if not check_required_columns(issues, file, shapes, columns):
        return
    for column, limit in (("shape_pt_lat", 90.0), ("shape_pt_lon", 180.0)):
        out = (shapes[column].astype("Float64").abs() > limit).fillna(False).to_numpy(dtype=bool)
        issues.rows("error", "bad_coordinates", file, column, out, shapes, f"{column} {{value}} is out of range")
    check_ids_unique(issues, file, shapes, ["shape_id", "shape_pt_sequence"])
    negative = (shapes["shape_pt_sequence"] < 0).fillna(False).to_numpy(dtype=bool)
    issues.rows("error", "negative_sequence", file, "shape_pt_sequence", negative, shapes,
                "shape_pt_sequence {value} is negative")
