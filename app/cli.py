"""The ``qala`` command: Flask's CLI group plus our own groups (db, gtfs)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup

__all__ = ["main", "register_commands"]


def register_commands(app: Flask) -> None:
    return None


def _create() -> Flask:
    from app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create, add_version_option=False)
def main() -> None:
    """Qala: e-ticketing and bus arrival prediction."""
