"""JSON API blueprints under /api/v1, health probes, and the one JSON error format.

Every instant the API writes is RFC 3339 with its offset: the views format theirs with ``app.instants.rfc3339``,
and the app's JSON provider does the same for any ``datetime`` left in a body (Flask's own would write an HTTP
date, ``Mon, 07 Dec 2026 09:58:12 GMT``), taking a naive one — SQLite hands stored instants back naive — as UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from app.instants import rfc3339

__all__ = ["InstantJSONProvider", "register_api"]


class InstantJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, writing instants as RFC 3339 (naive ones as UTC) and dates as ISO 8601."""

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, dt.datetime):
            return rfc3339(o)
        if isinstance(o, dt.date):
            return o.isoformat()
        return DefaultJSONProvider.default(o)


def register_api(app: Flask) -> None:
    from app.api.errors import register_error_handlers
    from app.api.gtfs_rt import bp as gtfs_rt_bp
    from app.api.health import bp as health_bp
    from app.api.meta import bp as meta_bp
    from app.api.realtime import bp as realtime_bp
    from app.api.routes import bp as routes_bp
    from app.api.stops import bp as stops_bp
    from app.schedule.calendars import CalendarCache

    app.extensions["service_calendars"] = CalendarCache()
    if type(app.json) is DefaultJSONProvider:
        app.json = InstantJSONProvider(app)
    if isinstance(app.json, DefaultJSONProvider):
        # Kazakh and Russian names as UTF-8 text rather than \u escapes (a third of the bytes)
        app.json.ensure_ascii = False
        # Flask 3 ignores the JSON_SORT_KEYS setting; honour it so ids come first in each object
        app.json.sort_keys = bool(app.config["JSON_SORT_KEYS"])
    register_error_handlers(app)
    from app.api.unavailable import register_unavailable_handlers

    register_unavailable_handlers(app)  # Redis away: 503 + Retry-After
    for blueprint in (health_bp, stops_bp, realtime_bp, routes_bp, meta_bp, gtfs_rt_bp):
        app.register_blueprint(blueprint)
    from app.api.ticketing import register_ticketing_api

    register_ticketing_api(app)
    from app.api.avl import register_avl_api

    register_avl_api(app)
    from app.api.reports import register_reports_api

    register_reports_api(app)
    from app.api.inputs import register_input_layer

    register_input_layer(app)  # last: its body limit sits in front of the other middlewares
