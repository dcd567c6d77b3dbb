"""``qala simulate`` (a city's days of pings, taps and true stop events; ``calibrate``) and ``qala avl``: stateless
``events`` from ping files, and ``ingest`` / ``ingest-gtfsrt`` into the database through the ingest service."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
from flask.cli import with_appcontext

from app.progress import Progress
from prediction.gtfs.feedcheck import FeedInvalid

if TYPE_CHECKING:
    from app.avl.ingest import AvlService, IngestReport
    from app.db import Database
    from prediction.gtfs.schedule import ScheduleFeed

__all__ = ["avl_group", "simulate_group"]

log = logging.getLogger(__name__)


def _read_feed(path: Path) -> ScheduleFeed:
    from prediction.gtfs.schedule import read_schedule

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
@click.option("--pace-to-timetable", is_flag=True,
              help="Pace each route to its timetable (the demo's city: late more often than early).")
@click.pass_context
def simulate_group(ctx: click.Context, feed: Path | None, start: dt.datetime | None, days: int, seed: int,
                   ping_interval: float, out: Path | None, pace_to_timetable: bool) -> None:
    """Simulate service days of FEED: per day pings_<date>.csv, taps_<date>.csv, truth_stop_events_<date>.csv."""
    if ctx.invoked_subcommand is not None:
        return
    missing = [name for name, value in (("--feed", feed), ("--start", start), ("--out", out)) if value is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or use a subcommand: calibrate)")
    from prediction.sim.params import DEMO_PARAMS
    from prediction.sim.simulate import simulate_days

    assert feed is not None and start is not None and out is not None
    schedule = _read_feed(feed)
    # a bar that moves as each day is written (make demo simulates its history this way); the last day's counts
    # show beside it
    with Progress("simulating days", days) as bar:
        totals = simulate_days(schedule, start.date(), days, out, seed=seed, ping_interval_s=ping_interval,
                               params=DEMO_PARAMS if pace_to_timetable else None, progress=bar.step)
    click.echo(f"wrote {totals['days']} days to {out}: {totals['pings']} pings, {totals['taps']} taps, "
               f"{totals['stop_events']} stop events")


@simulate_group.command("calibrate")
@click.option("--astana", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Astana CTS 2024 folder (default: ../shared/data/astana_cts_2024).")
@click.option("--days", type=click.IntRange(7, 120), default=28, show_default=True, help="Days to simulate.")
@click.option("--seed", type=int, default=0, show_default=True)
def simulate_calibrate(astana: Path | None, days: int, seed: int) -> None:
    """Print simulated vs real Astana trip durations by hour (median, p10–p90), weekdays and weekends."""
    from prediction.eta.calibration import compare_with_astana, format_table

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

    from prediction.avl.assign import fill_trips
    from prediction.avl.avlio import EVENT_COLUMNS, PingFileError, iso_times, read_pings, write_csv
    from prediction.avl.events import derive_events
    from prediction.network import build_network

    net = build_network(_read_feed(gtfs))
    try:
        read = read_pings([*pings, *more], strict=strict)
    except PingFileError as exc:
        raise click.ClickException(str(exc)) from exc
    for reason, count in sorted(read.rejected.items()):
        click.echo(f"rejected {count} pings: {reason}", err=True)
    for example in read.examples[:5]:
        click.echo(f"  e.g. {example}", err=True)
    events = derive_events(net, fill_trips(net, read.pings))  # pings without any trip id are matched first
    frame = pd.DataFrame({column: events[column] for column in EVENT_COLUMNS[:4]})
    frame["arrival_time"] = iso_times(events["arrival"].to_numpy(dtype=float), net.tz)
    frame["departure_time"] = iso_times(events["departure"].to_numpy(dtype=float), net.tz)
    frame["passed_between_pings"] = events["passed_between_pings"].to_numpy(dtype=bool)
    write_csv(frame, out)
    trips = int(np.unique(events["trip_id"].astype(str) + "/" + events["start_date"].astype(str)).size)
    click.echo(f"wrote {len(frame)} stop events of {trips} trips to {out}")


def _service() -> tuple[Database, AvlService]:
    from flask import current_app

    from app.avl.context import get_avl
    from app.extensions import get_db

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
    from prediction.avl.avlio import PingFileError, read_pings

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
    def failed(exc: Exception) -> None:  # the source away or a bad payload: polling goes on
        log.warning("poll failed: %s", exc)

    poll(source, interval, handle, failed, polls=polls)


@avl_group.group("vehicles")
def avl_vehicles() -> None:
    """Vehicles allowed to send pings: once any is registered, pings of unknown vehicles are rejected."""


@avl_vehicles.command("register")
@click.argument("vehicle_ids", nargs=-1, required=True)
@click.option("--label", default=None, help="Fleet number or plate shown to staff (one vehicle only).")
@with_appcontext
def avl_vehicles_register(vehicle_ids: tuple[str, ...], label: str | None) -> None:
    """Register VEHICLE_IDS (the ids their pings carry), or reactivate them and update the label."""
    from app.models import Vehicle

    if label is not None and len(vehicle_ids) > 1:
        raise click.UsageError("--label names one vehicle; register the others separately")
    for vehicle_id in vehicle_ids:
        if not 1 <= len(vehicle_id.strip()) <= 64:
            raise click.BadParameter(f"{vehicle_id!r}: an id is 1 to 64 characters", param_hint="VEHICLE_IDS")
    if label is not None and len(label) > 200:
        raise click.BadParameter("at most 200 characters", param_hint="--label")
    db, _ = _service()
    with db.session() as session:
        for vehicle_id in (v.strip() for v in vehicle_ids):
            vehicle = session.get(Vehicle, vehicle_id)
            if vehicle is None:
                session.add(Vehicle(id=vehicle_id, label=label, active=True))
                click.echo(f"registered {vehicle_id}")
            else:
                vehicle.active = True
                vehicle.label = label if label is not None else vehicle.label
                click.echo(f"updated {vehicle_id}")
        session.commit()


@avl_vehicles.command("deactivate")
@click.argument("vehicle_ids", nargs=-1, required=True)
@with_appcontext
def avl_vehicles_deactivate(vehicle_ids: tuple[str, ...]) -> None:
    """Stop accepting pings from VEHICLE_IDS (their stored pings and events are kept)."""
    from app.models import Vehicle

    db, _ = _service()
    with db.session() as session:
        missing = [v for v in vehicle_ids if session.get(Vehicle, v) is None]
        if missing:
            raise click.ClickException(f"not registered: {', '.join(missing)}; nothing was changed")
        for vehicle_id in vehicle_ids:
            vehicle = session.get(Vehicle, vehicle_id)
            assert vehicle is not None
            vehicle.active = False
        session.commit()
    click.echo(f"deactivated {len(vehicle_ids)} vehicle(s)")


@avl_vehicles.command("list")
@with_appcontext
def avl_vehicles_list() -> None:
    """Registered vehicles: id, active or not, label."""
    from sqlalchemy import select

    from app.models import Vehicle

    db, _ = _service()
    with db.session() as session:
        vehicles = session.scalars(select(Vehicle).order_by(Vehicle.id)).all()
        for vehicle in vehicles:
            click.echo(f"{vehicle.id}\t{'active' if vehicle.active else 'inactive'}\t{vehicle.label or ''}")
    if not vehicles:
        click.echo("no vehicles registered: pings from any vehicle are accepted", err=True)


@avl_group.command("prune")
@click.option("--keep-days", type=click.IntRange(1), required=True,
              help="Keep pings of this many most recent UTC days (today included).")
@with_appcontext
def avl_prune(keep_days: int) -> None:
    """Drop old pings: whole day partitions on PostgreSQL. Stop events are kept."""
    from app.avl.store import prune_pings

    db, _ = _service()
    before = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=keep_days - 1)
    with db.session() as session:
        dropped, deleted = prune_pings(session, before)
        session.commit()
    what = f"{len(dropped)} day partition(s)" + (f" ({dropped[0]} … {dropped[-1]})" if dropped else "")
    click.echo(f"pings before {before.isoformat()} removed: {what}, {deleted} row(s) deleted")
