"""The ``qala`` command: Flask's CLI group (``qala run``, ``qala routes``) plus our own groups."""

from __future__ import annotations

import functools
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup
from sqlalchemy import select
from tqdm import tqdm

from app.avl.cli import avl_group, simulate_group
from app.errors import QalaError
from app.extensions import get_db
from prediction.gtfs.feedcheck import FeedInvalid, FeedIssue

__all__ = ["main", "register_commands"]

SHOWN_WARNINGS = 10


@click.group("db", cls=AppGroup)
def db_group() -> None:
    """Database schema migrations (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (default: head)."""
    from app.migrate import upgrade

    upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


@db_group.command("downgrade")
@click.argument("revision", default="-1")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (default: one step; 'base' removes everything)."""
    from app.migrate import downgrade

    downgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


@click.group("gtfs", cls=AppGroup)
def gtfs_group() -> None:
    """GTFS schedule: validate, import, list and activate feed versions, synthesise cities."""


def _print_issues(issues: list[FeedIssue], *, limit: int) -> None:
    errors = [i for i in issues if i.severity == "error"]
    warnings = [i for i in issues if i.severity == "warning"]
    for issue in errors:
        click.echo(str(issue), err=True)
    if warnings:
        summary = ", ".join(f"{code} ×{n}" for code, n in Counter(w.code for w in warnings).most_common())
        click.echo(f"{len(warnings)} warnings: {summary}", err=True)
        for issue in warnings[:limit]:
            click.echo(f"  {issue}", err=True)


@gtfs_group.command("validate")
@click.argument("path")
@click.option("--strict", is_flag=True, help="Treat canonical (MobilityData) errors as errors.")
@click.option("--warnings", "shown", default=SHOWN_WARNINGS, show_default=True, help="Warnings to list.")
def gtfs_validate(path: str, strict: bool, shown: int) -> None:
    """Check the feed at PATH (a zip, a folder or an http(s) URL) without importing it; exit 1 on errors."""
    from app.schedule.fetch import FeedDownloadError, feed_path
    from prediction.gtfs.schedule import read_schedule

    try:
        with feed_path(path) as local:
            schedule = read_schedule(local, strict=strict)
    except FeedDownloadError as exc:
        raise click.ClickException(str(exc)) from exc
    except FeedInvalid as exc:
        _print_issues(exc.issues, limit=shown)
        raise SystemExit(1) from exc
    _print_issues(schedule.warnings, limit=shown)
    counts = schedule.counts()
    click.echo(f"{path}: valid ({counts['routes']} routes, {counts['stops']} stops, {counts['trips']} trips, "
               f"{counts['stop_times']} stop_times)")


@gtfs_group.command("import")
@click.argument("path")
@click.option("--label", help="A name for this feed version (default: the file name).")
@click.option("--strict", is_flag=True, help="Treat canonical (MobilityData) errors as errors.")
@click.option("--no-canonical", is_flag=True, help="Skip the canonical rule set (faster).")
@click.option("--keep", default=3, show_default=True, help="Feed versions to keep (older ones are deleted).")
@click.option("--warnings", "shown", default=SHOWN_WARNINGS, show_default=True, help="Warnings to list.")
@click.option("--if-changed", is_flag=True, help="Do nothing when the active version has the same content.")
def gtfs_import(path: str, label: str | None, strict: bool, no_canonical: bool, keep: int, shown: int,
                if_changed: bool) -> None:
    """Import the feed at PATH (a zip, a folder or an http(s) URL) as a new version and make it active
    (all or nothing)."""
    from app.schedule.fetch import FeedDownloadError, feed_path

    try:
        with feed_path(path) as local:
            _import(local, label or Path(path.rstrip("/")).name, strict, no_canonical, keep, shown, if_changed)
    except FeedDownloadError as exc:
        raise click.ClickException(str(exc)) from exc


def _import(path: Path, label: str, strict: bool, no_canonical: bool, keep: int, shown: int,
            if_changed: bool) -> None:
    from app.schedule.importer import active_version_with_content, import_feed, prune_feed_versions

    if if_changed:
        same = active_version_with_content(get_db(current_app), path)
        if same is not None:
            click.echo(f"feed version {same} already serves {path}; nothing to do")
            return

    bar = tqdm(total=0, unit="row", unit_scale=True, file=sys.stderr, disable=None, desc="reading")

    def set_total(n: int) -> None:
        bar.total = n
        bar.refresh()

    def advance(n: int) -> None:
        bar.update(n)

    try:
        report = import_feed(get_db(current_app), path, label=label, canonical=not no_canonical, strict=strict,
                             step=bar.set_description_str, advance=advance, total=set_total)
    except FeedInvalid as exc:
        bar.close()
        _print_issues(exc.issues, limit=shown)
        click.echo(f"import of {path} failed: nothing was changed", err=True)
        raise SystemExit(1) from exc
    bar.close()
    _print_issues(report.warnings, limit=shown)
    pruned = prune_feed_versions(get_db(current_app), keep=keep)
    counts = report.counts
    click.echo(f"feed version {report.feed_version_id} ({report.label}) is active: {counts['routes']} routes, "
               f"{counts['stops']} stops, {counts['trips']} trips, {counts['stop_times']} stop_times"
               + (f"; deleted old versions {pruned}" if pruned else ""))


@gtfs_group.command("versions")
def gtfs_versions() -> None:
    """List feed versions, newest first."""
    from app.models import FeedVersion

    with get_db(current_app).session() as session:
        for fv in session.scalars(select(FeedVersion).order_by(FeedVersion.id.desc())):
            mark = "*" if fv.is_active else " "
            click.echo(f"{mark} {fv.id:>4}  {fv.status:<8} {fv.created_at:%Y-%m-%d %H:%M}  {fv.label}  "
                       f"({fv.counts.get('stop_times', 0)} stop_times, {fv.agency_timezone})")


@gtfs_group.command("activate")
@click.argument("version_id", type=int)
def gtfs_activate(version_id: int) -> None:
    """Serve an earlier feed version again."""
    from app.schedule.importer import activate_feed_version

    try:
        activate_feed_version(get_db(current_app), version_id)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"feed version {version_id} is active")


@gtfs_group.command("synth")
@click.option("--routes", type=click.IntRange(1, 5000), required=True, help="Number of routes.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder (or .zip) to write.")
@click.option("--seed", default=0, show_default=True, help="Random seed (same seed, same city).")
def gtfs_synth(routes: int, out: Path, seed: int) -> None:
    """Write a synthetic city shaped like the Almaty demo feed, for benchmarks."""
    from prediction.sim.synth import write_synthetic_feed

    counts = write_synthetic_feed(out, routes=routes, seed=seed)
    click.echo(f"wrote {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


INPUT_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, LookupError, QalaError)


def one_line_errors(command: click.Command) -> None:
    """Make ``command`` (and every command under it) answer bad input with one ``Error:`` line, exit code 1.

    A missing or unreadable file, a malformed value found past click's parsing, an unknown id or revision: the
    commands' services raise these as ``OSError``, ``ValueError``, ``LookupError`` or ``QalaError`` (Alembic's
    ``CommandError`` too), which become a ``ClickException`` carrying the first line of the message, so no
    traceback reaches the operator. Anything else is a bug and keeps its traceback."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            one_line_errors(sub)
    callback = command.callback
    if callback is None or getattr(callback, "__one_line_errors__", False):
        return

    @functools.wraps(callback)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except (*INPUT_ERRORS, _alembic_error()) as exc:
            raise click.ClickException(_first_line(exc)) from exc

    guarded.__one_line_errors__ = True  # type: ignore[attr-defined]
    command.callback = guarded


def _alembic_error() -> type[BaseException]:
    from alembic.util import CommandError

    return CommandError


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if isinstance(exc, KeyError):
        return f"missing {line!r} (is this the right file or folder?)"
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in line:
        return f"{line}: {exc.filename}"
    return line


def register_commands(app: Flask) -> None:
    """Add every command group (each feature area keeps its commands in its own module); every command answers
    bad input with one error line (``one_line_errors``)."""
    _add_commands(app)
    one_line_errors(app.cli)


def _add_commands(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(gtfs_group)
    app.cli.add_command(simulate_group)
    app.cli.add_command(avl_group)
    from app.prediction_cli import backtest_command, model_group

    app.cli.add_command(model_group)
    app.cli.add_command(backtest_command)
    from app.demo import demo_command
    from app.worker.cli import worker_command

    app.cli.add_command(worker_command)
    app.cli.add_command(demo_command)
    from app.ticketing.cli import cards_group, devices_group, riders_group

    for group in (devices_group, cards_group, riders_group):
        app.cli.add_command(group)
    from app.reports.cli import reports_group, taps_group, users_group

    for group in (users_group, reports_group, taps_group):
        app.cli.add_command(group)
    from app.idempotency_cli import idempotency_group

    app.cli.add_command(idempotency_group)


def _create() -> Flask:
    from app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create, add_version_option=False, load_dotenv=False)
def main() -> None:
    """Qala: e-ticketing and bus arrival prediction."""
