"""JSON API blueprints under /api/v1, health probes, and the one JSON error format."""

from __future__ import annotations

from flask import Flask

__all__ = ["register_api"]


def register_api(app: Flask) -> None:
    from app.api.health import bp as health_bp

    app.register_blueprint(health_bp)
