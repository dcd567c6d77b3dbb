"""``qala simulate`` (a city's days of pings, taps and true stop events; ``calibrate``) and ``qala avl``: stateless
``events`` from ping files, and ``ingest`` / ``ingest-gtfsrt`` into the database through the ingest service."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
from flask.cli import with_appcontext

from prediction.feedcheck import FeedInvalid

if TYPE_CHECKING:
    from app.avl.ingest import AvlService, IngestReport
    from app.db import Database
    from prediction.schedule import ScheduleFeed

__all__ = ["avl_group", "simulate_group"]


def _read_feed(path: Path) -> ScheduleFeed:
    from prediction.schedule import read_schedule

    try:
        return read_schedule(path, canonical=False)
    except FeedInvalid as exc:
        raise click.ClickException(f"{path}: not a usable GTFS feed ({len(exc.issues)} errors; "
                                   f"run 'qala gtfs validate {path}')") from exc


@click.group("simulate", invoke_without_command=True)
@click.option("--feed", type=click.Path(exists=True, path_type=Path), help="GTFS feed (zip or folder).")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), help="First service day (YYYY-MM-DD).")
@click.option("--days", type=click.IntRange(1, 366), default=1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same city and days.")
@click.option("--ping-interval", type=click.FloatRange(1, 3600), default=20.0, show_default=True,
              help="Seconds between a vehicle's pings.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Folder for the CSV files.")
@click.pass_context
def simulate_group(ctx: click.Context, feed: Path | None, start: dt.datetime | None, days: int, seed: int,
                   ping_interval: float, out: Path | None) -> None:
    """Simulate service days of FEED: per day pings_<date>.csv, taps_<date>.csv, truth_stop_events_<date>.csv."""
    if ctx.invoked_subcommand is not None:
        return
    missing = [name for name, value in (("--feed", feed), ("--start", start), ("--out", out)) if value is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or use a subcommand: calibrate)")
    from prediction.simulate import simulate_days

    assert feed is not None and start is not None and out is not None
    schedule = _read_feed(feed)
    totals = simulate_days(schedule, start.date(), days, out, seed=seed, ping_interval_s=ping_interval,
                           progress=lambda line: click.echo(line, err=True))
    click.echo(f"wrote {totals['days']} days to {out}: {totals['pings']} pings, {totals['taps']} taps, "
               f"{totals['stop_events']} stop events")


@simulate_group.command("calibrate")
@click.option("--astana", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Astana CTS 2024 folder (default: ../shared/data/astana_cts_2024).")
@click.option("--days", type=click.IntRange(7, 120), default=28, show_default=True, help="Days to simulate.")
@click.option("--seed", type=int, default=0, show_default=True)
def simulate_calibrate(astana: Path | None, days: int, seed: int) -> None:
    """Print simulated vs real Astana trip durations by hour (median, p10–p90), weekdays and weekends."""
    from prediction.calibration import compare_with_astana, format_table

    folder = astana or Path.cwd().parent / "shared" / "data" / "astana_cts_2024"
    if not folder.is_dir():
        raise click.ClickException(f"{folder} not found: pass --astana DIR")
    click.echo(format_table(compare_with_astana(folder, days=days, seed=seed)))


@click.group("avl")
def avl_group() -> None:
    """AVL: ingest GPS pings (CSV, GTFS-realtime) and derive stop events."""


@avl_group.command("events")
@click.option("--gtfs", "gtfs", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--pings", "pings", type=click.Path(path_type=Path), multiple=True, required=True,
              help="Ping CSV file(s); more files may follow as arguments.")
@click.argument("more", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--strict", is_flag=True, help="Stop at the first bad ping row instead of skipping it.")
def avl_events(gtfs: Path, pings: tuple[Path, ...], more: tuple[Path, ...], out: Path, strict: bool) -> None:
    """Derive arrival/departure at every stop from ping CSVs (stateless) and write them as CSV."""
    import pandas as pd

    from prediction.avlio import EVENT_COLUMNS, PingFileError, iso_times, read_pings, write_csv
    from prediction.events import derive_events
    from prediction.sim_network import build_network

    net = build_network(_read_feed(gtfs))
    try:
        read = read_pings([*pings, *more], strict=strict)
    except PingFileError as exc:
        raise click.ClickException(str(exc)) from exc
    for reason, count in sorted(read.rejected.items()):
        click.echo(f"rejected {count} pings: {reason}", err=True)
    for example in read.examples[:5]:
        click.echo(f"  e.g. {example}", err=True)
    events = derive_events(net, read.pings)
    frame = pd.DataFrame({column: events[column] for column in EVENT_COLUMNS[:4]})
    frame["arrival_time"] = iso_times(events["arrival"].to_numpy(dtype=float), net.tz)
    frame["departure_time"] = iso_times(events["departure"].to_numpy(dtype=float), net.tz)
    frame["passed_between_pings"] = events["passed_between_pings"].to_numpy(dtype=bool)
    write_csv(frame, out)
    trips = int(np.unique(events["trip_id"].astype(str) + "/" + events["start_date"].astype(str)).size)
    click.echo(f"wrote {len(frame)} stop events of {trips} trips to {out}")


def _service() -> tuple[Database, AvlService]:
    from flask import current_app

    from app import get_db
    from app.avl.context import get_avl

    return get_db(current_app), get_avl(current_app)


def _echo_report(prefix: str, report: IngestReport) -> None:
    rejected = ", ".join(f"{reason} {n}" for reason, n in sorted(report.rejected.items()) if n) or "none"
    click.echo(f"{prefix}: {report.stored} of {report.received} pings stored, {report.stop_events} stop events "
               f"updated; rejected: {rejected}")


@avl_group.command("ingest")
@click.option("--pings", "pings", type=click.Path(path_type=Path), multiple=True, required=True,
              help="Ping CSV file(s); more files may follow as arguments.")
@click.argument("more", nargs=-1, type=click.Path(path_type=Path))
@click.option("--max-age", type=click.FloatRange(min=1), default=None,
              help="Reject pings older than this many seconds (default: accept history of any age).")
@click.option("--batch", type=click.IntRange(1), default=50_000, show_default=True, help="Pings per transaction.")
@with_appcontext
def avl_ingest(pings: tuple[Path, ...], more: tuple[Path, ...], max_age: float | None, batch: int) -> None:
    """Store ping CSVs: validate, match to trips, derive stop events (each batch all or nothing)."""
    from app.avl.ingest import IngestReport, IngestSettings
    from prediction.avlio import PingFileError, read_pings

    try:
        read = read_pings([*pings, *more])
    except PingFileError as exc:
        raise click.ClickException(f"{exc}; nothing was stored") from exc
    db, service = _service()
    total = IngestReport(received=0)
    frame = read.pings.sort_values("t", kind="stable").reset_index(drop=True)  # time order, as live
    # a file that gives trips is trusted where it gives none (a bus laying over); one that never does is matched
    settings = IngestSettings(max_age_s=max_age, assign_trips=bool(frame["trip_id"].isna().all()))
    for start in range(0, max(len(frame), 1), batch):  # one (empty) batch still records the file's rejections
        with db.session() as session:
            total.add(service.ingest(session, frame.iloc[start:start + batch], "csv", settings=settings,
                                     rejected=read.rejected if start == 0 else None))
    _echo_report("ingested", total)


@avl_group.command("ingest-gtfsrt")
@click.argument("source")
@click.option("--interval", type=click.FloatRange(min=1), default=None,
              help="Poll SOURCE every this many seconds (default: read it once).")
@click.option("--polls", type=click.IntRange(1), default=None, help="Stop after this many polls.")
@click.option("--max-age", type=click.FloatRange(min=1), default=3600.0, show_default=True,
              help="Reject positions older than this many seconds before the feed header's timestamp.")
@with_appcontext
def avl_ingest_gtfsrt(source: str, interval: float | None, polls: int | None, max_age: float) -> None:
    """Ingest GTFS-realtime VehiclePositions from FILE_OR_URL, once or by polling at --interval."""
    from app.avl.gtfsrt import GtfsRtError, VehiclePositions, decode_vehicle_positions, fetch, poll
    from app.avl.ingest import IngestSettings

    db, service = _service()
    settings = IngestSettings(max_age_s=max_age)

    def handle(positions: VehiclePositions) -> None:
        with db.session() as session:
            _echo_report(source, service.ingest(session, positions.pings, "gtfsrt", settings=settings,
                                                now=positions.header_timestamp, rejected=positions.rejected))

    if interval is None:
        try:
            handle(decode_vehicle_positions(fetch(source), source))
        except (OSError, GtfsRtError) as exc:
            raise click.ClickException(f"{exc}; nothing was stored") from exc
        return
    poll(source, interval, handle, lambda exc: click.echo(f"poll failed: {exc}", err=True), polls=polls)
