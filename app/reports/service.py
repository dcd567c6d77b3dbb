"""The reports use cases an application runs: settings from its config and fare profile, refresh, rebuild."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Flask, current_app
from sqlalchemy.orm import Session

from app.extensions import get_db
from app.reports.rollups import Refreshed, RollupSettings, rebuild, refresh
from app.ticketing.context import get_ticketing

__all__ = ["rebuild_reports", "refresh_incremental", "refresh_reports", "settings_for"]


def settings_for(app: Flask, session: Session) -> RollupSettings:
    """Report time zone (``REPORTS_TIMEZONE``, else the fare profile's), transfer window, pass products and the
    OD zone grid (``REPORTS_OD_GRID_M`` metres, for stops without a GTFS zone_id)."""
    profile = get_ticketing(app).profiles.get(session)
    tz = ZoneInfo(app.config["REPORTS_TIMEZONE"] or profile.config.timezone)
    window = int(app.config["REPORTS_TRANSFER_WINDOW_S"])
    grid_m = int(app.config["REPORTS_OD_GRID_M"])
    return RollupSettings(tz=tz, transfer_window_s=window, is_pass=profile.is_pass, grid_m=grid_m)


def refresh_incremental(session: Session, app: Flask | None = None) -> Refreshed:
    """Fold what arrived since the last refresh (taps, top-ups, stop events, predictions) into the rollups.

    For a worker or the demo loop to call each cycle inside its own unit of work: it does not commit.
    Cheap when nothing arrived; idempotent; two callers at once take turns on the watermark rows.
    """
    return refresh(session, settings_for(app or current_app._get_current_object(), session))  # type: ignore[attr-defined]


def refresh_reports(app: Flask) -> Refreshed:
    """One incremental refresh in its own transaction."""
    with get_db(app).session() as session:
        done = refresh_incremental(session, app)
        session.commit()
    return done


def rebuild_reports(app: Flask) -> dict[str, int]:
    """Rebuild every rollup from the taps, the imported boardings, the ledger and the stop events."""
    with get_db(app).session() as session:
        counts = rebuild(session, settings_for(app, session))
        session.commit()
    return counts
