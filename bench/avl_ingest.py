"""Benchmark: ingest + trip matching + incremental stop events into PostgreSQL, as ``qala avl ingest`` does it.

Simulates a morning of the Almaty demo feed (20 s pings), imports the feed into a fresh database, then feeds the
pings to the ingest service in time order, one minute of city time per batch. Prints ``pings_per_s=<n>`` last.

    .venv/bin/python bench/avl_ingest.py --database postgresql://postgres@127.0.0.1/qala_avl_bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.avl.ingest import FRAME_COLUMNS, AvlService, IngestReport, IngestSettings  # noqa: E402
from app.db import Database  # noqa: E402
from app.schedule.importer import import_feed  # noqa: E402
from bench.benchdb import fresh_database  # noqa: E402
from prediction.gtfs.schedule import read_schedule  # noqa: E402
from prediction.network import build_network  # noqa: E402
from prediction.sim.simulate import CitySimulator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1/qala_avl_bench")
    parser.add_argument("--feed", type=Path, default=ROOT / "gtfs_data" / "almaty")
    parser.add_argument("--batch-s", type=float, default=60.0, help="seconds of city time per batch")
    parser.add_argument("--hours", type=float, default=2.0, help="hours of the morning to ingest")
    parser.add_argument("--no-trip-ids", action="store_true",
                        help="drop the pings' trip ids: ingest assigns trips (as for GTFS-rt without trips)")
    args = parser.parse_args()
    fresh_database(args.database)
    db = Database.from_url(args.database)
    import_feed(db, args.feed, canonical=False)
    day = CitySimulator(build_network(read_schedule(args.feed, canonical=False)), seed=1).run_day(
        dt.date(2026, 3, 3), ping_interval_s=20.0)
    pings = day.pings.assign(t=(pd.to_datetime(day.pings["timestamp"], format="ISO8601", utc=True)
                                - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds())
    pings = pings.sort_values("t", kind="stable")
    pings = pings[pings["t"] < pings["t"].min() + args.hours * 3600][list(FRAME_COLUMNS)]
    batch = np.floor((pings["t"].to_numpy() - pings["t"].min()) / args.batch_s)
    service, total = AvlService(), IngestReport(received=0)
    # as `qala avl ingest` for files with trips, or for files without any
    settings = IngestSettings(max_age_s=None, assign_trips=args.no_trip_ids)
    if args.no_trip_ids:
        pings = pings.assign(trip_id=None, start_date=None)
    started, cpu = time.perf_counter(), time.process_time()
    for _, group in pings.groupby(batch, sort=True):
        with db.session() as session:
            total.add(service.ingest(session, group, "csv", settings=settings))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    rejected = {reason: n for reason, n in total.rejected.items() if n}
    print(f"{total.received} pings ({total.stored} stored, rejected {rejected}), "
          f"{total.stop_events} stop-event upserts, {elapsed:.1f} s, batches of {args.batch_s:.0f} s city time")
    bare = _bare_copy_seconds(db, pings)
    print(f"baseline: a bare COPY of the same pings into an unindexed temporary table took {bare:.1f} s "
          f"({total.received / bare:.0f} pings/s); ingest is {elapsed / bare:.1f}x that")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"this process: {cpu:.1f} s CPU ({total.received / max(cpu, 1e-9):.0f} pings per CPU second); "
          f"load average {load} on {os.cpu_count()} cores")
    print(f"pings_per_s={total.received / elapsed:.0f}")


def _bare_copy_seconds(db: Database, pings: pd.DataFrame) -> float:
    """The floor: the same rows, converted as ingest converts them, copied with no checks, matching or events."""
    from app.avl.store import PING_COLUMNS, _rows

    with db.session() as session:
        raw = session.connection().connection.driver_connection
        assert raw is not None
        started = time.perf_counter()
        rows = _rows(pings.assign(start_date=None), 3)
        with raw.cursor() as cur:
            cur.execute("CREATE TEMP TABLE bare_pings (LIKE avl_pings)")
            with cur.copy(f"COPY bare_pings ({', '.join(PING_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        session.commit()
        return time.perf_counter() - started


if __name__ == "__main__":
    main()
