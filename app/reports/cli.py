"""``qala users`` (staff accounts), ``qala reports`` (refresh, rebuild) and ``qala taps import``."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app.errors import QalaError
from app.extensions import get_db
from app.models import Rider
from app.models.reports import STAFF_ROLES
from app.reports import access
from app.reports.importers import import_qala, import_shenzhen
from app.reports.rollups import rebuild_dates
from app.reports.service import rebuild_reports, refresh_reports, settings_for
from app.ticketing.context import get_ticketing

__all__ = ["reports_group", "taps_group", "users_group"]


@click.group("users", cls=AppGroup)
def users_group() -> None:
    """Staff accounts: analyst (reports), support (+ card operations), admin (+ users, devices, fares)."""


@users_group.command("create")
@click.argument("login")
@click.option("--role", type=click.Choice(STAFF_ROLES), required=True)
@click.option("--name", "full_name", help="The person's name.")
@click.password_option()
def users_create(login: str, role: str, full_name: str | None, password: str) -> None:
    """Create a staff account LOGIN (an email address or phone number)."""
    with get_db(current_app).session() as session:
        user = access.create_staff(session, login, password, role, full_name=full_name)
        session.commit()
    click.echo(f"user_id={user.id} login={user.login} role={role}")


@users_group.command("list")
def users_list() -> None:
    """List staff accounts."""
    with get_db(current_app).session() as session:
        for user in session.scalars(select(Rider).where(Rider.role.in_(STAFF_ROLES)).order_by(Rider.id)):
            click.echo(f"{user.id:>5}  {user.role:<8} {user.login}" + ("" if user.active else "  (deactivated)"))


@users_group.command("deactivate")
@click.argument("login")
def users_deactivate(login: str) -> None:
    """Deactivate the staff account LOGIN: it can no longer log in; its sessions and bearer tokens end now."""
    with get_db(current_app).session() as session:
        try:
            user = access.deactivate_staff(session, login)
        except QalaError as exc:
            raise click.ClickException(exc.message) from None
        session.commit()
    click.echo(f"user_id={user.id} login={user.login} deactivated")


@click.group("reports", cls=AppGroup)
def reports_group() -> None:
    """Report rollups."""


@reports_group.command("rebuild")
def reports_rebuild() -> None:
    """Rebuild every rollup from taps, imported boardings, the ledger and stop events."""
    started = time.perf_counter()
    counts = rebuild_reports(current_app)
    click.echo(", ".join(f"{k}={v}" for k, v in counts.items()) + f" in {time.perf_counter() - started:.1f} s")


@reports_group.command("refresh")
@click.option("--every", type=float, help="Keep refreshing, every this many seconds.")
def reports_refresh(every: float | None) -> None:
    """Fold taps, top-ups, stop events and predictions received since the last refresh into the rollups."""
    _follow(every)


@reports_group.command("follow")
@click.option("--every", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds between refreshes.")
def reports_follow(every: float) -> None:
    """Keep the rollups current: an incremental refresh every EVERY seconds until interrupted."""
    _follow(every)


def _follow(every: float | None) -> None:
    while True:
        started = time.perf_counter()
        done = refresh_reports(current_app)
        click.echo(f"refreshed {done.describe()} in {(time.perf_counter() - started) * 1000:.0f} ms")
        if every is None:
            return
        time.sleep(max(0.0, every - (time.perf_counter() - started)))


@click.group("taps", cls=AppGroup)
def taps_group() -> None:
    """Tap exports for analysis."""


@taps_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "kind", type=click.Choice(["qala", "shenzhen"]), required=True)
@click.option("--dataset", help="Dataset to load into (default: qala, or shenzhen).")
def taps_import(path: Path, kind: str, dataset: str | None) -> None:
    """Import PATH as boardings (replacing earlier imports of the same dataset and dates) and roll it up."""
    app = current_app
    with get_db(app).session() as session:
        settings = settings_for(app, session)
        try:
            if kind == "shenzhen":
                result = import_shenzhen(session, path, dataset or "shenzhen")
            else:
                ctx = get_ticketing(app)
                result = import_qala(session, path, ctx.profiles.get(session), ctx.hash_key, settings.tz,
                                     dataset or "qala")
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        rebuild_dates(session, result.dataset, result.dates, settings)
        session.commit()
    click.echo(f"dataset={result.dataset} boardings={result.boardings} skipped={result.skipped} "
               f"dates={','.join(d.isoformat() for d in result.dates)}")
