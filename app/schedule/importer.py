"""Import a GTFS feed as a new feed version, in one transaction, then switch the active version.

A failed import rolls back completely, so the previously active version keeps serving.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import Connection

from app.db import Database
from app.models import (
    Agency,
    Area,
    Calendar,
    CalendarDate,
    FareLegRule,
    FareMedia,
    FareProduct,
    FareTransferRule,
    FeedVersion,
    Frequency,
    Network,
    RiderCategory,
    Route,
    RouteNetwork,
    Shape,
    ShapePoint,
    Stop,
    StopArea,
    StopTime,
    Timeframe,
    Translation,
    Trip,
)
from app.schedule.bulk import conform, insert_frame
from prediction.gtfs.feedcheck import FeedInvalid, FeedIssue, canonical_issues
from prediction.gtfs.schedule import ScheduleFeed, read_schedule

__all__ = [
    "ImportReport",
    "activate_feed_version",
    "active_version_with_content", "import_feed", "load_schedule", "prune_feed_versions"]

IMPORT_LOCK_ID = 7_351_001  # PostgreSQL advisory lock: one import at a time
MAX_STORED_WARNINGS = 50

Step = Callable[[str], None]
Advance = Callable[[int], None]

FARE_MODELS = {
    "fare_media": FareMedia,
    "rider_categories": RiderCategory,
    "fare_products": FareProduct,
    "fare_leg_rules": FareLegRule,
    "fare_transfer_rules": FareTransferRule,
    "timeframes": Timeframe,
    "networks": Network,
    "route_networks": RouteNetwork,
    "areas": Area,
    "stop_areas": StopArea,
}


@dataclass
class ImportReport:
    feed_version_id: int
    label: str
    counts: dict[str, int]
    warnings: list[FeedIssue] = field(default_factory=list)

    def warning_summary(self) -> dict[str, int]:
        return dict(Counter(w.code for w in self.warnings).most_common())


def import_feed(db: Database, path: str | Path, *, label: str | None = None, canonical: bool = True,
                strict: bool = False, step: Step | None = None, advance: Advance | None = None,
                total: Callable[[int], None] | None = None) -> ImportReport:
    """Read, check and load the feed at ``path``; raises ``FeedInvalid`` (and changes nothing) when the
    feed has errors.

    The canonical rules (gtfs-guru, compiled code) run in a thread beside our own reading and loading;
    their verdict is awaited inside the load transaction, before the commit, so ``strict`` can still
    roll everything back.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="canonical") as pool:
        pending = pool.submit(canonical_issues, str(path), as_errors=strict) if canonical else None

        def canonical_verdict() -> list[FeedIssue]:
            return pending.result() if pending is not None else []

        try:
            schedule = read_schedule(path, canonical=False, progress=step)
        except FeedInvalid as exc:
            raise FeedInvalid(exc.issues + canonical_verdict()) from exc
        if total:
            total(sum(schedule.counts().values()))
        return load_schedule(db, schedule, label=label or Path(path).name, step=step, advance=advance,
                             late_checks=canonical_verdict)


def _tables(schedule: ScheduleFeed) -> list[tuple[type, pd.DataFrame]]:
    tables: list[tuple[type, pd.DataFrame]] = [
        (Agency, schedule.agency), (Stop, schedule.stops), (Route, schedule.routes),
        (Calendar, schedule.calendar), (CalendarDate, schedule.calendar_dates), (Shape, schedule.shapes),
        (ShapePoint, schedule.shape_points), (Trip, schedule.trips), (StopTime, schedule.stop_times),
        (Frequency, schedule.frequencies), (Translation, schedule.translations),
    ]
    tables.extend((FARE_MODELS[name], frame) for name, frame in schedule.fares.items())
    return tables


def load_schedule(db: Database, schedule: ScheduleFeed, *, label: str, step: Step | None = None,
                  advance: Advance | None = None,
                  late_checks: Callable[[], list[FeedIssue]] | None = None) -> ImportReport:
    """Load a checked schedule as a new version and make it the active one, atomically.

    ``late_checks`` runs after the rows are written and before the commit: its warnings join the
    report, and any error rolls the whole load back.
    """
    say = step or (lambda _msg: None)
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": IMPORT_LOCK_ID})
        version_id = _create_version(conn, schedule, label)
        for model, frame in _tables(schedule):
            table = model.__table__  # type: ignore[attr-defined]
            say(f"loading {table.name}")
            insert_frame(conn, table, conform(table, frame, version_id), advance)
        if late_checks is not None:
            say("waiting for the canonical rules")
            late = late_checks()
            if any(issue.severity == "error" for issue in late):
                raise FeedInvalid(schedule.warnings + late)
            schedule.warnings.extend(late)
            _store_warnings(conn, version_id, schedule.warnings)
        _activate(conn, version_id)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("ANALYZE stop_times; ANALYZE trips; ANALYZE stops"))
    return ImportReport(version_id, label, schedule.counts(), schedule.warnings)


def _warnings_json(warnings: list[FeedIssue]) -> list[dict[str, object]]:
    """A summary by code first, then the first warnings in full (real feeds can carry 300,000)."""
    summary: dict[str, object] = {"summary": dict(Counter(w.code for w in warnings))}
    return [summary, *(w.as_dict() for w in warnings[:MAX_STORED_WARNINGS])]


def _store_warnings(conn: Connection, version_id: int, warnings: list[FeedIssue]) -> None:
    conn.execute(update(FeedVersion).where(FeedVersion.id == version_id).values(warnings=_warnings_json(warnings)))


def _create_version(conn: Connection, schedule: ScheduleFeed, label: str) -> int:
    info = schedule.feed_info
    result = conn.execute(
        FeedVersion.__table__.insert().returning(FeedVersion.__table__.c.id),  # type: ignore[attr-defined]
        {
            "label": label[:200], "source": schedule.source, "sha256": schedule.sha256, "status": "loading",
            "is_active": False, "agency_timezone": schedule.timezone,
            "publisher_name": info.get("feed_publisher_name"), "feed_lang": info.get("feed_lang"),
            "feed_version": info.get("feed_version"), "start_date": info.get("feed_start_date"),
            "end_date": info.get("feed_end_date"), "counts": schedule.counts(),
            "warnings": _warnings_json(schedule.warnings),
        },
    )
    return int(result.scalar_one())


def _activate(conn: Connection, version_id: int) -> None:
    conn.execute(update(FeedVersion).where(FeedVersion.is_active.is_(True)).values(is_active=False))
    conn.execute(update(FeedVersion).where(FeedVersion.id == version_id).values(
        is_active=True, status="ready", activated_at=dt.datetime.now(dt.UTC)))


def active_version_with_content(db: Database, path: str | Path) -> int | None:
    """The active version's id when it was imported from identical content, else ``None``."""
    from prediction.gtfs.feedsource import FeedSource

    digest = FeedSource(path).sha256()
    with db.engine.connect() as conn:
        found = conn.execute(select(FeedVersion.id).where(FeedVersion.is_active.is_(True),
                                                          FeedVersion.sha256 == digest)).scalar()
    return int(found) if found is not None else None


def activate_feed_version(db: Database, version_id: int) -> None:
    """Make an earlier, fully loaded version active again (a rollback)."""
    with db.engine.begin() as conn:
        status = conn.execute(select(FeedVersion.status).where(FeedVersion.id == version_id)).scalar_one_or_none()
        if status != "ready":
            raise LookupError(f"feed version {version_id} does not exist or is not ready")
        _activate(conn, version_id)


def prune_feed_versions(db: Database, keep: int = 3) -> list[int]:
    """Delete all but the ``keep`` newest ready versions (never the active one); returns deleted ids."""
    with db.engine.begin() as conn:
        ids = list(conn.execute(select(FeedVersion.id).order_by(FeedVersion.id.desc())).scalars())
        active = conn.execute(select(func.max(FeedVersion.id)).where(FeedVersion.is_active.is_(True))).scalar()
        doomed = [i for i in ids[keep:] if i != active]
        if doomed:
            # the bulk tables have no foreign key to cascade through (see models.schedule)
            conn.execute(delete(StopTime).where(StopTime.feed_version_id.in_(doomed)))
            conn.execute(delete(ShapePoint).where(ShapePoint.feed_version_id.in_(doomed)))
            conn.execute(delete(FeedVersion).where(FeedVersion.id.in_(doomed)))
    return doomed
