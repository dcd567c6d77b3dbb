"""``qala idempotency prune``: delete stored Idempotency-Key responses older than ``IDEMPOTENCY_TTL_S``."""

from __future__ import annotations

import datetime as dt

import click
from flask import current_app
from flask.cli import AppGroup

from app.extensions import get_db

__all__ = ["idempotency_group"]


@click.group("idempotency", cls=AppGroup)
def idempotency_group() -> None:
    """Stored responses of requests sent with an Idempotency-Key."""


@idempotency_group.command("prune")
@click.option("--ttl", "ttl_s", type=click.IntRange(0), default=None,
              help="Delete records older than this many seconds (default: IDEMPOTENCY_TTL_S).")
def prune_command(ttl_s: int | None) -> None:
    """Delete expired idempotency records (the worker does this every hour too)."""
    from app.api.idempotency import prune_idempotency

    ttl = float(current_app.config["IDEMPOTENCY_TTL_S"] if ttl_s is None else ttl_s)
    with get_db(current_app).session() as session:
        deleted = prune_idempotency(session, dt.datetime.now(dt.UTC), ttl)
        session.commit()
    click.echo(f"{deleted} idempotency records older than {ttl:.0f} s deleted")
