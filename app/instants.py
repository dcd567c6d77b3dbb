"""Instants as the API writes them: timezone-aware, in RFC 3339 text.

SQLite hands ``DateTime(timezone=True)`` columns back without their offset (we store UTC), PostgreSQL with it;
every instant the API returns goes through ``rfc3339`` so it always carries an offset a browser reads right.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["as_utc", "rfc3339"]


def as_utc(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC; a naive value is taken to be UTC already (what the database stored)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def rfc3339(value: dt.datetime) -> str:
    """``value`` as RFC 3339 text to the second (a naive value is UTC). Local mean time offsets before the 1920s
    (Almaty's was +05:07:48) have seconds, which RFC 3339 cannot write: such an instant is written in UTC."""
    offset = value.utcoffset()
    if offset is None or offset.seconds % 60:
        value = as_utc(value)
    return value.isoformat(timespec="seconds")
