"""Benchmark: our whole GTFS import against a plain PostgreSQL COPY of the same stop_times rows.

Imports ``hart_tampa_2016.zip`` (when ../shared/data is present) and a synthetic city of at least
2 M stop_times into PostgreSQL, then, in the same run, times a bare ``COPY`` of exactly the rows our
import wrote to ``stop_times`` into the same table. The last line is
``stop_times_per_s=<n> ratio_to_copy=<x>`` for the largest feed (goal: ratio ≤ 2.0).

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/qala_bench .venv/bin/python bench/gtfs_import.py
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import Database  # noqa: E402
from app.models import FeedVersion, StopTime  # noqa: E402
from app.schedule.bulk import conform  # noqa: E402
from app.schedule.importer import import_feed  # noqa: E402
from bench.benchdb import fresh_database  # noqa: E402
from prediction.gtfs.schedule import read_schedule  # noqa: E402
from prediction.sim.synth import write_synthetic_feed  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/qala_bench"
SYNTH_ROUTES = int(os.environ.get("BENCH_SYNTH_ROUTES", "200"))


def plain_copy_seconds(db: Database, feed: Path) -> tuple[float, int]:
    """Time a bare COPY of the same stop_times rows (as our import wrote them) into ``stop_times``."""
    schedule = read_schedule(feed, canonical=False)
    with db.engine.begin() as conn:
        version = conn.execute(FeedVersion.__table__.insert().returning(FeedVersion.__table__.c.id), {  # type: ignore[attr-defined]
            "label": "bench-copy", "source": str(feed), "sha256": "-", "status": "loading", "is_active": False,
            "agency_timezone": schedule.timezone, "counts": {}, "warnings": []}).scalar_one()
    rows = conform(StopTime.__table__, schedule.stop_times, version)  # type: ignore[arg-type]
    buffer = io.StringIO()
    rows.to_csv(buffer, header=False, index=False)
    payload = buffer.getvalue()
    columns = ", ".join(f'"{c}"' for c in rows.columns)
    with db.engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        started = time.perf_counter()
        with raw.cursor() as cursor, cursor.copy(f"COPY stop_times ({columns}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(payload)
        elapsed = time.perf_counter() - started
        conn.execute(text("DELETE FROM feed_versions WHERE id = :id"), {"id": version})
    return elapsed, len(rows)


def measure(db: Database, name: str, feed: Path) -> tuple[float, float, int]:
    started = time.perf_counter()
    report = import_feed(db, feed)
    ours = time.perf_counter() - started
    copy_s, rows = plain_copy_seconds(db, feed)
    assert rows == report.counts["stop_times"]
    print(f"{name}: {rows} stop_times, {sum(report.counts.values())} rows in all; import {ours:.2f} s "
          f"({rows / ours:,.0f} stop_times/s); plain COPY of the stop_times {copy_s:.2f} s; "
          f"ratio {ours / copy_s:.2f}")
    return ours, copy_s, rows


def main() -> None:
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    fresh_database(url)
    db = Database.from_url(url)
    hart = ROOT.parent / "shared" / "data" / "gtfs" / "hart_tampa_2016.zip"
    if hart.exists():
        measure(db, "hart_tampa_2016", hart)
    else:
        print("hart_tampa_2016: skipped (../shared/data is absent)")
    with tempfile.TemporaryDirectory() as tmp:
        feed = Path(tmp) / "synthetic"
        counts = write_synthetic_feed(feed, routes=SYNTH_ROUTES, seed=1)
        ours, copy_s, rows = measure(db, f"synthetic_{SYNTH_ROUTES}_routes", feed)
    if counts["stop_times"] < 2_000_000:
        print(f"warning: synthetic feed has only {counts['stop_times']} stop_times (< 2 M)")
    print(f"stop_times_per_s={rows / ours:.0f} ratio_to_copy={ours / copy_s:.2f}")


if __name__ == "__main__":
    main()
