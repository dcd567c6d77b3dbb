"""The reports use cases an application runs: settings from its config and fare profile, refresh, rebuild."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy.orm import Session

from app import get_db
from app.reports.rollups import RollupSettings, rebuild, refresh
from app.ticketing.context import get_ticketing

__all__ = ["rebuild_reports", "refresh_reports", "settings_for"]


def settings_for(app: Flask, session: Session) -> RollupSettings:
    """Report time zone (``REPORTS_TIMEZONE``, else the fare profile's), transfer window and pass products."""
    profile = get_ticketing(app).profiles.get(session)
    tz = ZoneInfo(app.config.get("REPORTS_TIMEZONE") or profile.config.timezone)
    window = int(app.config.get("REPORTS_TRANSFER_WINDOW_S", 3600))
    return RollupSettings(tz=tz, transfer_window_s=window, is_pass=profile.is_pass)


def refresh_reports(app: Flask) -> set[dt.date]:
    """Fold taps received since the last refresh into the rollups (one transaction)."""
    with get_db(app).session() as session:
        dates = refresh(session, settings_for(app, session))
        session.commit()
    return dates


def rebuild_reports(app: Flask) -> dict[str, int]:
    """Rebuild every rollup from the taps, the imported boardings, the ledger and the stop events."""
    with get_db(app).session() as session:
        counts = rebuild(session, settings_for(app, session))
        session.commit()
    return counts
