"""Qala service: the Flask application factory. Nothing runs at import."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import load_config
from app.db import Database
from app.extensions import get_attempts, get_db, get_redis
from app.fastpaths import install_fast_paths
from app.sessions import CookieSessionInterface

__all__ = ["create_app", "get_attempts", "get_db", "get_redis"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the application; ``config`` overrides values read from the environment."""
    app = Flask(__name__, instance_relative_config=True, template_folder="web/templates",
                static_folder="web/static")
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(load_config(instance_path=app.instance_path))
    if config:
        app.config.update(config)
    app.session_interface = CookieSessionInterface()
    trust_proxies(app)
    install_fast_paths(app)  # online taps and board polls answered in front of Flask (and of ProxyFix)
    register_extensions(app)
    register_blueprints(app)
    register_static(app)
    register_cli(app)
    return app


def trust_proxies(app: Flask) -> None:
    """Behind ``PROXY_HOPS`` reverse proxies, the client address (what attempt limits count) and scheme come
    from the X-Forwarded-For / -Proto entries those proxies added; with 0 nothing a client sends is trusted."""
    hops = app.config["PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def register_extensions(app: Flask) -> None:
    from app.ticketing.attempts import Attempts, Limits

    app.extensions["db"] = Database.from_url(app.config["DATABASE_URL"])
    # Redis is connected lazily (see get_redis): an embedded server is only started when needed.
    app.extensions["redis"] = None
    app.extensions["attempts"] = Attempts(Limits.from_config(app.config), lambda: get_redis(app),
                                          app.extensions["db"].session, app.config["CARD_HASH_KEY"])


def register_blueprints(app: Flask) -> None:
    from app.api import register_api
    from app.web import register_web

    register_api(app)
    register_web(app)


def register_static(app: Flask) -> None:
    """Fingerprinted static URLs with their cache headers, /favicon.ico, and gzip for text responses."""
    from app.web.assets import install_assets
    from app.web.compression import install_compression

    install_assets(app)
    install_compression(app)


def register_cli(app: Flask) -> None:
    from app.cli import register_commands

    register_commands(app)
