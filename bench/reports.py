"""Benchmark: a month of Almaty-scale boardings (≈ 45 M) in PostgreSQL, then every staff report timed.

The load takes the production path from the boarding facts on: synthetic boardings are generated with numpy
(riders with a home and a work stop, two to four boardings a day, concession categories, passes) and COPYed
into ``report_boardings`` — the table ``copy_live_taps`` fills from live taps — with its indexes in place;
then the boarding rollups are built by the same ``rebuild_dates`` that ``qala reports rebuild`` and the
incremental refresh run. The on-time and prediction-accuracy rollups are generated directly at the
cardinality a month of Almaty stop events would give (routes × hours × deviation buckets), because 20 M
synthetic stop events would test the generator, not the reports.

The generator's 3,000 stops are placed uniformly over Almaty's built-up area (``synthetic_stops``) and mapped to
zones by the same ``assign_zones`` a feed's stops go through, before the rollups are built, so the zone OD
rollups come out of ``rebuild_dates`` like the others. ``--zone-rollups`` derives them for a month loaded
before they existed, from its stop-level OD rows (no taps are re-read), then times as ``--skip-load`` does.

The incremental refresh is timed on 1,000 and 10,000 new boardings of the last day (rolled back afterwards)
against rebuilding that day. Each report is then timed with typical filters (a month, a week, one route, one
stop, one day type) and the slowest answer of each is printed; the last line is ``slowest_report_ms=<n>``
(goal: ≤ 1,000 ms).

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/qala_bench_rep \\
    .venv/bin/python bench/reports.py [--days 30] [--taps-per-day 1500000] [--skip-load] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text as text_  # noqa: E402

from app.db import make_engine  # noqa: E402
from app.reports.facts import day_type  # noqa: E402
from app.reports.queries import Filters, report_names, run_report  # noqa: E402
from app.reports.rollups import ONTIME_CLAMP, RollupSettings, rebuild_dates  # noqa: E402
from app.reports.zones import GRID_M, StopPoint, assign_zones, rebuild_zone_days  # noqa: E402
from bench.benchdb import fresh_database  # noqa: E402
from prediction.eta.metrics import ETA_BUCKETS  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/qala_bench_rep"
ALMATY = ZoneInfo("Asia/Almaty")
FIRST_DAY = dt.date(2026, 3, 1)
N_ROUTES, N_STOPS, N_RIDERS, BUSES_PER_ROUTE = 150, 3000, 1_200_000, 17
CATEGORIES = np.array(["standard", "student", "school", "pensioner", "large_family", "free"])
CATEGORY_P = [0.70, 0.10, 0.08, 0.10, 0.01, 0.01]
FARES = np.array([20000, 10000, 8000, 0, 10000, 0])
COLUMNS = ("dataset", "tap_id", "rider_key", "boarded_s", "service_date", "hour", "day_type", "route_id",
           "stop_id", "vehicle_id", "category", "product", "paid_by", "fare")
IntArray = npt.NDArray[np.int64]


STOP_NAMES = np.array([f"S{i:04d}" for i in range(N_STOPS)])
ROUTE_NAMES = np.array([f"R{i:03d}" for i in range(N_ROUTES)])


def day_boardings(rng: np.random.Generator, day: dt.date, first_tap_id: int, n_taps: int) -> dict[str, Any]:
    """One service day of boardings: each active rider alternates home → work → (errand) → home."""
    per_rider = rng.choice([1, 2, 3, 4], size=n_taps // 2, p=[0.30, 0.50, 0.12, 0.08])
    per_rider = per_rider[np.cumsum(per_rider) <= n_taps]
    riders = rng.choice(N_RIDERS, size=per_rider.size, replace=False)
    rider = np.repeat(riders, per_rider)
    starts = np.cumsum(per_rider) - per_rider
    nth = np.arange(rider.size) - np.repeat(starts, per_rider)
    home, work = rider % N_STOPS, (rider * 7919 + 13) % N_STOPS
    errand = rng.integers(0, N_STOPS, rider.size)
    stop = np.where(nth == 0, home, np.where(nth == 1, work, np.where(nth == 2, errand, home)))
    route = (stop * 7 + rng.integers(0, 3, rider.size)) % N_ROUTES
    first = np.repeat(rng.normal(8.0 * 3600, 5400, per_rider.size).clip(5.5 * 3600, 20 * 3600), per_rider)
    gaps = np.where(nth == 0, 0.0, rng.choice([1800.0, 9 * 3600.0, 3 * 3600.0], rider.size, p=[0.25, 0.55, 0.2]))
    local_s = (first + _cumsum_within(gaps, starts, per_rider)).clip(5 * 3600, 86399).astype(np.int64)
    category = np.repeat(rng.choice(len(CATEGORIES), per_rider.size, p=CATEGORY_P), per_rider)
    has_pass = np.repeat(rng.random(per_rider.size) < 0.15, per_rider)
    midnight = int(dt.datetime.combine(day, dt.time(), ALMATY).timestamp())
    return {"tap_id": np.arange(first_tap_id, first_tap_id + rider.size), "rider": rider,
            "boarded_s": midnight + local_s, "hour": local_s // 3600, "stop": stop, "route": route,
            "vehicle": route * BUSES_PER_ROUTE + rng.integers(0, BUSES_PER_ROUTE, rider.size),
            "category": category, "has_pass": has_pass, "fare": np.where(has_pass, 0, FARES[category])}


# The staging table's columns and their PostgreSQL binary COPY types (big-endian, fixed width)
STAGE = (("tap_id", ">i8", "bigint"), ("rider", ">i4", "integer"), ("boarded_s", ">i8", "bigint"),
         ("hour", ">i2", "smallint"), ("stop", ">i2", "smallint"), ("route", ">i2", "smallint"),
         ("vehicle", ">i4", "integer"), ("category", ">i2", "smallint"), ("has_pass", "?", "boolean"),
         ("fare", ">i8", "bigint"))
FROM_STAGE = """
INSERT INTO report_boardings (dataset, tap_id, rider_key, boarded_s, service_date, hour, day_type, route_id,
                              stop_id, vehicle_id, category, product, paid_by, fare)
SELECT 'qala', tap_id, 'card:' || rider, boarded_s, %(day)s, hour, %(day_type)s, 'R' || lpad(route::text, 3, '0'),
       'S' || lpad(stop::text, 4, '0'), vehicle::text, (%(categories)s::text[])[category + 1],
       CASE WHEN has_pass THEN 'pass_month' ELSE 'ride' END,
       CASE WHEN has_pass THEN 'pass' WHEN fare > 0 THEN 'stored_value' ELSE 'free' END, fare
FROM bench_stage
"""


def binary_copy(columns: dict[str, Any]) -> bytes:
    """The rows in PostgreSQL's binary COPY format, built by numpy without a Python loop per row."""
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for name, kind, _sql in STAGE:
        fields += [(f"{name}_len", ">i4"), (name, kind)]
    rows = np.empty(len(columns["tap_id"]), dtype=np.dtype(fields))
    rows["n"] = len(STAGE)
    for name, kind, _sql in STAGE:
        rows[f"{name}_len"] = np.dtype(kind).itemsize
        rows[name] = columns[name]
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    return header + rows.tobytes() + (-1).to_bytes(2, "big", signed=True)


def _cumsum_within(values: npt.NDArray[np.float64], starts: IntArray, counts: IntArray) -> npt.NDArray[np.float64]:
    """Running sum of ``values`` restarting at every rider's first boarding."""
    total = np.cumsum(values)
    before = np.repeat(total[starts] - values[starts], counts)
    return total - before


def copy_frame(conn: psycopg.Connection[Any], table: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, header=False, index=False)
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN (FORMAT csv)") as cp:
        cp.write(buffer.getvalue())


def days(n: int) -> Iterator[dt.date]:
    for i in range(n):
        yield FIRST_DAY + dt.timedelta(days=i)


def load_boardings(url: str, n_days: int, taps_per_day: int) -> int:
    """Binary-COPY each day into an unlogged staging table, then one INSERT … SELECT into the facts."""
    rng = np.random.default_rng(20260301)
    total = 0
    with psycopg.connect(url, autocommit=False) as conn:
        # a bulk load drops the secondary indexes and builds them once at the end (as pg_restore does)
        conn.execute("ALTER TABLE report_boardings DROP CONSTRAINT uq_report_boardings_tap_id")
        conn.execute("DROP INDEX ix_report_boardings_day_rider")
        conn.execute("CREATE UNLOGGED TABLE bench_stage ("
                     + ", ".join(f"{name} {sql}" for name, _kind, sql in STAGE) + ")")
        for day in days(n_days):
            columns = day_boardings(rng, day, total + 1, taps_per_day)
            conn.execute("TRUNCATE bench_stage")
            with conn.cursor() as cur, cur.copy("COPY bench_stage FROM STDIN (FORMAT binary)") as cp:
                cp.write(binary_copy(columns))
            conn.execute(FROM_STAGE, {"day": day, "day_type": day_type(day), "categories": list(CATEGORIES)})
            conn.commit()
            total += len(columns["tap_id"])
            print(f"  {day}: {len(columns['tap_id']):,} boardings (total {total:,})", flush=True)
        conn.execute("DROP TABLE bench_stage")
        conn.commit()
        started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("ALTER TABLE report_boardings ADD CONSTRAINT uq_report_boardings_tap_id UNIQUE (tap_id)")
        conn.execute("CREATE INDEX ix_report_boardings_day_rider ON report_boardings "
                     "(dataset, service_date, rider_key, boarded_s)")
        conn.commit()
        print(f"  indexes rebuilt in {time.perf_counter() - started:.0f} s", flush=True)
    return total


def load_operations_rollups(url: str, n_days: int) -> int:
    """On-time cells (route × scheduled hour × 30 s deviation bucket) and accuracy cells per day."""
    rng = np.random.default_rng(7)
    cells = 0
    with psycopg.connect(url) as conn:
        for day in days(n_days):
            hours = np.arange(5, 24)
            r, h, b = np.meshgrid(np.arange(N_ROUTES), hours, np.arange(-10, 31), indexing="ij")
            arrivals = rng.poisson(np.exp(-((b - 3) ** 2) / 60.0) * 40).ravel()
            keep = arrivals > 0
            ontime = pd.DataFrame({"service_date": day.isoformat(), "hour": h.ravel()[keep],
                                   "route_id": ROUTE_NAMES[r.ravel()[keep]],
                                   "bucket": np.clip(b.ravel()[keep], -ONTIME_CLAMP, ONTIME_CLAMP),
                                   "day_type": day_type(day), "arrivals": arrivals[keep]})
            copy_frame(conn, "report_ontime_hour", ontime)
            r2, p2, k2 = np.meshgrid(np.arange(N_ROUTES), np.arange(2), np.arange(len(ETA_BUCKETS) + 1),
                                     indexing="ij")
            n = rng.integers(2000, 6000, r2.size)
            accurate = (n * rng.uniform(0.5, 0.8, r2.size)).astype(np.int64)
            accuracy = pd.DataFrame({"service_date": day.isoformat(), "route_id": ROUTE_NAMES[r2.ravel()],
                                     "predictor": np.array(["hgb-v1", "schedule"])[p2.ravel()],
                                     "bucket": k2.ravel(), "day_type": day_type(day), "predictions": n,
                                     "accurate": accurate, "early": n // 10, "abs_error_s": n * 75,
                                     "with_interval": n, "in_interval": (n * 0.8).astype(np.int64)})
            copy_frame(conn, "report_accuracy_day", accuracy)
            conn.commit()
            cells += len(ontime) + len(accuracy)
    return cells


def synthetic_stops() -> list[StopPoint]:
    """The generator's 3,000 stops placed uniformly over Almaty's built-up area (≈ 17 × 22 km), as a feed's stops
    would be: their zones are then 2 km grid cells, ≈ 100 of them, exactly as for a real feed without zone_id."""
    rng = np.random.default_rng(3000)
    lat, lon = rng.uniform(43.18, 43.34, N_STOPS), rng.uniform(76.78, 77.05, N_STOPS)
    return [StopPoint(str(name), float(a), float(o)) for name, a, o in zip(STOP_NAMES, lat, lon, strict=True)]


def place_stops(url: str) -> None:
    """Write the synthetic stops' zones (``report_stop_zone``), as ``sync_stop_zones`` does from a feed."""
    from sqlalchemy.orm import Session

    engine = make_engine(url)
    with Session(engine) as session:
        assign_zones(session, synthetic_stops(), GRID_M)
        session.commit()
    engine.dispose()


def build_zone_rollups(url: str, n_days: int) -> None:
    """Derive the zone OD rollup of every loaded day from its stop-level OD rows (no taps are re-read)."""
    from sqlalchemy.orm import Session

    place_stops(url)
    engine = make_engine(url)
    with Session(engine) as session:
        for day in days(n_days):
            started = time.perf_counter()
            session.execute(text_("SET LOCAL work_mem = '128MB'"))
            rebuild_zone_days(session, "qala", day)
            session.commit()
            print(f"  zone OD rollup {day}: {time.perf_counter() - started:.1f} s", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE report_od_zone_day")
    engine.dispose()


def build_rollups(url: str, n_days: int, missing_only: bool = False, only: tuple[int, int] = (1, 31)) -> None:
    engine = make_engine(url)
    settings = RollupSettings(tz=ALMATY)
    with engine.connect() as conn:
        from sqlalchemy import text
        from sqlalchemy.orm import Session

        built = set(conn.execute(text("SELECT DISTINCT service_date FROM report_route_hour")).scalars())
        conn.commit()
        for day in days(n_days):
            if (missing_only and day in built) or not only[0] <= (day - FIRST_DAY).days + 1 <= only[1]:
                continue
            started = time.perf_counter()
            with Session(bind=conn) as session:
                rebuild_dates(session, "qala", [day], settings)
                session.commit()
            print(f"  rollups {day}: {time.perf_counter() - started:.1f} s", flush=True)
    engine.dispose()


def typical_filters(n_days: int) -> list[tuple[str, Filters]]:
    last = FIRST_DAY + dt.timedelta(days=n_days - 1)
    week = last - dt.timedelta(days=6)
    return [("month", Filters(start=FIRST_DAY, end=last)),
            ("week", Filters(start=week, end=last)),
            ("month+route", Filters(start=FIRST_DAY, end=last, route="R042")),
            ("month+stop", Filters(start=FIRST_DAY, end=last, stop="S0420")),
            ("month+weekday", Filters(start=FIRST_DAY, end=last, day_type="weekday")),
            ("week+category", Filters(start=week, end=last, category="student"))]


def time_reports(url: str, n_days: int, repeat: int) -> float:
    """Each report under each filter it honours, ``repeat`` times; returns the slowest median in ms."""
    from sqlalchemy.orm import Session

    from app.errors import BadRequest

    engine = make_engine(url)
    slowest = 0.0
    with Session(engine) as session:
        for name in report_names():
            worst, worst_label, rows = 0.0, "", 0
            for label, filters in typical_filters(n_days):
                times = []
                try:
                    for _ in range(repeat):
                        started = time.perf_counter()
                        _, answer = run_report(session, name, filters)
                        times.append((time.perf_counter() - started) * 1000)
                        if times[-1] > 5000:
                            break  # far over the goal already: repeating only makes the run longer
                except BadRequest:
                    continue  # a filter this report does not offer
                median = sorted(times)[len(times) // 2]
                if median > worst:
                    worst, worst_label, rows = median, label, len(answer)
            print(f"{name:<24} {worst:8.1f} ms  (slowest with {worst_label}, {rows} rows)", flush=True)
            slowest = max(slowest, worst)
    engine.dispose()
    return slowest


def time_refresh(url: str, n_days: int, new_taps: int) -> tuple[float, float]:
    """(ms to fold ``new_taps`` new boardings of the last day into the rollups as deltas, ms to rebuild that
    day), each inside a transaction that is rolled back so the loaded month stays as it was."""
    from sqlalchemy import func, insert, select
    from sqlalchemy.orm import Session

    from app.models import ReportBoarding
    from app.reports.delta import apply_new_boardings

    day = FIRST_DAY + dt.timedelta(days=n_days - 1)
    engine = make_engine(url)
    with Session(engine) as session:
        before = session.scalar(select(func.max(ReportBoarding.id))) or 0
        riders = session.scalars(select(ReportBoarding.rider_key).where(ReportBoarding.service_date == day)
                                 .limit(new_taps)).all()
        evening = int(dt.datetime.combine(day, dt.time(21), ALMATY).timestamp())
        rows = [{"dataset": "qala", "tap_id": None, "rider_key": rider, "boarded_s": evening + i % 3600,
                 "service_date": day, "hour": 21, "day_type": day_type(day), "route_id": "R007",
                 "stop_id": f"S{i % N_STOPS:04d}", "vehicle_id": "119", "category": "standard", "product": "ride",
                 "paid_by": "stored_value", "fare": 20000, "exit_stop_id": None, "source_transfer": None}
                for i, rider in enumerate(riders)]
        session.execute(insert(ReportBoarding), rows)
        started = time.perf_counter()
        apply_new_boardings(session, "qala", day, before, 3600)
        delta_ms = (time.perf_counter() - started) * 1000
        session.rollback()
        started = time.perf_counter()
        rebuild_dates(session, "qala", [day], RollupSettings(tz=ALMATY))
        rebuild_ms = (time.perf_counter() - started) * 1000
        session.rollback()
    engine.dispose()
    return delta_ms, rebuild_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--taps-per-day", type=int, default=1_500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-load", action="store_true", help="time the reports of an earlier load")
    parser.add_argument("--resume-rollups", action="store_true",
                        help="keep the loaded boardings; build the rollups of the days that have none yet")
    parser.add_argument("--rollup-days", default="1-31", help="with --resume-rollups: which days, e.g. 8-18 "
                        "(run two ranges at once to use both cores)")
    parser.add_argument("--no-operations", action="store_true", help="with --resume-rollups: boardings only")
    parser.add_argument("--zone-rollups", action="store_true",
                        help="place the stops in zones and derive the zone OD rollup from the loaded stop-level "
                        "OD rows, then time as with --skip-load")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if args.zone_rollups:
        started = time.perf_counter()
        build_zone_rollups(url, args.days)
        print(f"zone_rollup_build_s={time.perf_counter() - started:.0f}", flush=True)
        args.skip_load = True
    if args.resume_rollups:
        started = time.perf_counter()
        place_stops(url)
        first, last = (int(x) for x in args.rollup_days.split("-"))
        build_rollups(url, args.days, missing_only=True, only=(first, last))
        if args.no_operations:
            print(f"rollups of days {args.rollup_days} built in {time.perf_counter() - started:.0f} s")
            return
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM report_ontime_hour")
            conn.execute("DELETE FROM report_accuracy_day")
        cells = load_operations_rollups(url, args.days)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        print(f"rollup_build_s={time.perf_counter() - started:.0f} (resumed) operations_cells={cells}")
    elif not args.skip_load:
        fresh_database(url)
        started = time.perf_counter()
        taps = load_boardings(url, args.days, args.taps_per_day)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        place_stops(url)
        build_rollups(url, args.days)
        cells = load_operations_rollups(url, args.days)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        rollup_s = time.perf_counter() - started
        print(f"boardings={taps} load_s={load_s:.0f} rollup_build_s={rollup_s:.0f} operations_cells={cells}")
    for new_taps in (1_000, 10_000):
        delta_ms, rebuild_ms = time_refresh(url, args.days, new_taps)
        print(f"incremental refresh of {new_taps} new boardings: {delta_ms:.0f} ms "
              f"(rebuilding their day instead: {rebuild_ms:.0f} ms, ratio {rebuild_ms / delta_ms:.0f})", flush=True)
    slowest = time_reports(url, args.days, args.repeat)
    print(f"slowest_report_ms={slowest:.0f}")


if __name__ == "__main__":
    main()
