"""``qala simulate`` (a city's days of pings, taps and true stop events; ``calibrate``) and ``qala avl events``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np

from prediction.feedcheck import FeedInvalid

if TYPE_CHECKING:
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
    """AVL: stop events from GPS pings."""


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
