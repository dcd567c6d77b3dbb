"""Writing AVL rows: day partitions of ``avl_pings`` on demand, the pings themselves (PostgreSQL ``COPY`` into a
staging table, then one ``INSERT … ON CONFLICT DO NOTHING``), rejection counters and stop-event upserts.

Nothing here commits: the ingest service commits once per batch, so a batch is stored whole or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import AvlRejection, Ping, StopEvent

__all__ = ["PING_COLUMNS", "PartitionSet", "add_rejections", "existing_keys", "insert_pings", "prune_pings",
           "upsert_events"]

PING_COLUMNS = ("vehicle_id", "recorded_at", "lat_e6", "lon_e6", "trip_id", "route_id", "service_date", "bearing",
                "speed", "source")
_STAGE = "avl_pings_stage"


class PartitionSet:
    """The day partitions of ``avl_pings`` this process knows exist (PostgreSQL only)."""

    def __init__(self) -> None:
        self.known: set[dt.date] = set()

    def ensure(self, session: Session, days: Iterable[dt.date]) -> None:
        if session.get_bind().dialect.name != "postgresql":
            return
        missing = sorted(set(days) - self.known)
        if not missing:
            return
        # one creator at a time; IF NOT EXISTS makes a partition another process just made a no-op
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('avl_pings_partitions'))"))
        for day in missing:
            name = f"avl_pings_p{day:%Y%m%d}"
            start, end = day.isoformat(), (day + dt.timedelta(days=1)).isoformat()
            session.execute(text(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF avl_pings "
                                 f"FOR VALUES FROM ('{start} 00:00:00+00') TO ('{end} 00:00:00+00')"))
        self.known.update(missing)


def existing_keys(session: Session, vehicles: Sequence[str], start: dt.datetime, end: dt.datetime
                  ) -> set[tuple[str, int]]:
    """(vehicle_id, epoch milliseconds) of pings already stored for these vehicles within [start, end]."""
    if not vehicles:
        return set()
    rows = session.execute(select(Ping.vehicle_id, Ping.recorded_at)
                           .where(Ping.vehicle_id.in_(bindparam("vehicles", expanding=True)),
                                  Ping.recorded_at >= start, Ping.recorded_at <= end),
                           {"vehicles": list(vehicles)})
    return {(vehicle, _millis(at)) for vehicle, at in rows}


def _millis(at: dt.datetime) -> int:
    if at.tzinfo is None:  # SQLite returns naive UTC
        at = at.replace(tzinfo=dt.UTC)
    return round(at.timestamp() * 1000)


def _rows(frame: pd.DataFrame, source: int) -> list[tuple[Any, ...]]:
    at = pd.to_datetime(np.round(frame["t"].to_numpy(dtype=float) * 1000).astype(np.int64), unit="ms", utc=True)
    dates = pd.to_datetime(frame["start_date"], format="%Y%m%d", errors="coerce")
    bearing = frame["bearing"].to_numpy(dtype=float)
    speed = frame["speed"].to_numpy(dtype=float)
    columns = zip(
        frame["vehicle_id"], at.to_pydatetime(),
        np.round(frame["latitude"].to_numpy(dtype=float) * 1e6).astype(np.int64).tolist(),
        np.round(frame["longitude"].to_numpy(dtype=float) * 1e6).astype(np.int64).tolist(),
        frame["trip_id"], frame["route_id"], [None if pd.isna(d) else d.date() for d in dates],
        [None if np.isnan(b) else int(np.rint(b)) % 360 for b in bearing],
        [None if np.isnan(s) else float(s) for s in speed], strict=True)
    return [(v, a, la, lo, None if pd.isna(tr) else tr, None if pd.isna(r) else r, d, b, s, source)
            for v, a, la, lo, tr, r, d, b, s in columns]


def insert_pings(session: Session, frame: pd.DataFrame, source: int) -> int:
    """Store the pings (columns vehicle_id, t, latitude, longitude, trip_id, route_id, start_date, bearing,
    speed); returns how many were new (a ping another process stored meanwhile is skipped, not an error)."""
    if frame.empty:
        return 0
    rows = _rows(frame, source)
    if session.get_bind().dialect.name == "postgresql":
        return _copy_pings(session, rows)
    return _executemany_pings(session, rows)


def _executemany_pings(session: Session, rows: list[tuple[Any, ...]]) -> int:
    raw = session.connection().connection.driver_connection
    assert raw is not None
    marks = ", ".join("?" for _ in PING_COLUMNS)
    cur = raw.cursor()
    try:  # sqlite3 stores datetimes as text; the same format SQLAlchemy's DateTime writes and reads
        cur.executemany(f"INSERT OR IGNORE INTO avl_pings ({', '.join(PING_COLUMNS)}) VALUES ({marks})",
                        [(r[0], r[1].strftime("%Y-%m-%d %H:%M:%S.%f"), *r[2:6],
                          None if r[6] is None else r[6].isoformat(), *r[7:]) for r in rows])
        return int(cur.rowcount)
    finally:
        cur.close()


def _copy_pings(session: Session, rows: list[tuple[Any, ...]]) -> int:
    raw = session.connection().connection.driver_connection
    assert raw is not None
    columns = ", ".join(PING_COLUMNS)
    with raw.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (LIKE avl_pings) ON COMMIT DELETE ROWS")
        with cur.copy(f"COPY {_STAGE} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(f"INSERT INTO avl_pings ({columns}) SELECT {columns} FROM {_STAGE} ON CONFLICT DO NOTHING")
        stored = cur.rowcount
        cur.execute(f"DELETE FROM {_STAGE}")  # the connection may be reused before its transaction ends
    return int(stored)


def add_rejections(session: Session, day: dt.date, source: str, counts: Counter[str]) -> None:
    """Add to the day's counters of rejected pings by reason."""
    rows = [{"day": day, "source": source, "reason": reason[:40], "count": n} for reason, n in counts.items() if n]
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(AvlRejection)
    statement = statement.on_conflict_do_update(
        index_elements=["day", "source", "reason"], set_={"count": AvlRejection.count + statement.excluded.count})
    session.execute(statement, rows)


_EVENT_UPDATES = ("stop_id", "vehicle_id", "arrival_at", "departure_at", "scheduled_arrival_at",
                  "scheduled_departure_at", "deviation_s", "passed_between_pings", "known_at")


_EVENT_COLUMNS = ("feed_version_id", "trip_id", "service_date", "stop_sequence", *_EVENT_UPDATES)
_EVENT_STAGE = "avl_stop_events_stage"


def upsert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert stop events, or replace them (a re-ingested or replayed trip); on PostgreSQL through ``COPY`` into a
    staging table and one ``INSERT … ON CONFLICT DO UPDATE``. A row without ``known_at`` (when the live follower
    emitted it) leaves the column empty."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        _copy_events(session, rows)
        return
    statement = sqlite.insert(StopEvent)
    statement = statement.on_conflict_do_update(
        index_elements=["feed_version_id", "trip_id", "service_date", "stop_sequence"],
        set_={name: statement.excluded[name] for name in _EVENT_UPDATES})
    session.execute(statement, [{"known_at": None, **row} for row in rows])

def _copy_events(session: Session, rows: list[dict[str, Any]]) -> None:
    raw = session.connection().connection.driver_connection
    assert raw is not None
    columns = ", ".join(_EVENT_COLUMNS)
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _EVENT_UPDATES)
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:  # one row per key, the last given (ON CONFLICT cannot touch a row twice)
        latest[(row["feed_version_id"], row["trip_id"], row["service_date"], row["stop_sequence"])] = row
    with raw.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_EVENT_STAGE} (LIKE avl_stop_events) ON COMMIT DELETE ROWS")
        with cur.copy(f"COPY {_EVENT_STAGE} ({columns}) FROM STDIN") as copy:
            for row in latest.values():
                copy.write_row(tuple(row.get(name) for name in _EVENT_COLUMNS))
        cur.execute(f"INSERT INTO avl_stop_events ({columns}) SELECT {columns} FROM {_EVENT_STAGE} "
                    f"ON CONFLICT (feed_version_id, trip_id, service_date, stop_sequence) DO UPDATE SET {updates}")
        cur.execute(f"DELETE FROM {_EVENT_STAGE}")


def prune_pings(session: Session, before: dt.date) -> tuple[list[str], int]:
    """Drop the pings recorded before ``before`` (UTC day): whole day partitions on PostgreSQL (a catalogue change,
    no row-by-row delete), a ``DELETE`` on SQLite. Returns the partitions dropped and the rows deleted.

    Stop events are kept: they are the observed history every prediction is scored against."""
    if session.get_bind().dialect.name != "postgresql":
        cutoff = dt.datetime.combine(before, dt.time(), dt.UTC)
        deleted = session.execute(delete(Ping).where(Ping.recorded_at < cutoff))
        return [], int(getattr(deleted, "rowcount", 0) or 0)
    names = session.scalars(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'avl_pings' ORDER BY c.relname")).all()
    dropped = []
    for name in names:
        day = _partition_day(name)
        if day is not None and day < before:
            session.execute(text(f'DROP TABLE "{name}"'))
            dropped.append(name)
    return dropped, 0


def _partition_day(name: str) -> dt.date | None:
    if not (name.startswith("avl_pings_p") and len(name) == len("avl_pings_p20260101")):
        return None
    try:
        return dt.date(int(name[-8:-4]), int(name[-4:-2]), int(name[-2:]))
    except ValueError:
        return None
