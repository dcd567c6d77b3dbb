"""Benchmark: a backlog of offline taps applied through the batch endpoint while online taps keep flowing.

Prepares a fresh database (as ``bench/taps.py`` does), starts gunicorn, measures online taps alone, then
uploads the backlog — yesterday's taps of ``--uploaders`` validators, each sending its own taps in batches in
sequence order, signed, over keep-alive HTTP, from a separate process — while the online validators (another
process, open loop at ``--online-rate`` taps/s) keep tapping. By default the batches go to their own gunicorn
(``--batch-workers``, started under ``nice -n 10``: the deployment that routes ``/batches`` to a separate,
lower-priority pool, so the backlog takes the CPU the online taps leave); ``--batch-workers 0`` sends them to
the online pool as before. The batch pool closes each connection after its response (``--batch-keepalive 0``):
with keep-alive, the kernel placed each uploader's one connection on a worker for the whole run, and with four
uploaders on two workers one run in eight put all four on one worker (one GIL for every batch: 172 s against 146 s
for 1 M on the same code); a thousand validators would spread evenly, four do not. The last line is
``backlog_taps=<n> seconds=<s> backlog_taps_per_s=<r> projected_1m_s=<s> online_p99_ms=<p> online_alone_p99_ms=<p>``;
``projected_1m_s`` is a straight-line extrapolation of the measured rate to 1,000,000 taps; with the default
``--taps 1000000`` it is the measured time itself (200,000 taps projected 169 s where 1 M took 312 s on the same code).

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/qala_bench_taps \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/6 .venv/bin/python bench/backlog.py [--taps 1000000] [--uploaders 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import random
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.taps import (  # noqa: E402
    DEFAULT_REDIS,
    DEFAULT_URL,
    HASH_KEY,
    HttpClient,
    analyze,
    drive,
    fresh_database,
    prepare,
    signed_headers,
    start_gunicorn,
)

PORT = 18743
PORT_BATCH = 18744
BATCHES = "/api/v1/validators/batches"


def backlog(numbers: list[str], n_taps: int, n_devices: int, seed: int = 7) -> list[list[dict[str, Any]]]:
    """Yesterday's taps per device, in sequence order (times rising through the day), cards at random."""
    rng = random.Random(seed)
    day = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
    per_device = n_taps // n_devices
    taps = []
    for d in range(n_devices):
        times = sorted(rng.uniform(3 * 3600, 20 * 3600) for _ in range(per_device))
        taps.append([{"seq": i + 1, "card": rng.choice(numbers), "vehicle_id": f"bus-{d}", "route_id": "R12",
                      "tapped_at": (day + dt.timedelta(seconds=t)).isoformat()} for i, t in enumerate(times)])
    return taps


def _upload(creds: tuple[str, str, str], taps: list[dict[str, Any]], batch_size: int, out: list[int],
            port: int) -> None:
    """One validator back online: its backlog in batches, each retried until acknowledged."""
    http = HttpClient(port, timeout=600)
    device_id, key_id, secret = creds
    for start in range(0, len(taps), batch_size):
        body = json.dumps({"taps": taps[start:start + batch_size]}).encode()
        while True:
            try:
                status, payload = http.request("POST", BATCHES, body,
                                               signed_headers(device_id, key_id, secret, BATCHES, body))
            except OSError:
                status, payload = 0, b""
            if status == 200:
                out[0] += len(json.loads(payload)["results"])
                break
            out[1] += 1
            time.sleep(0.2)


def _upload_process(creds: list[tuple[str, str, str]], per_device: list[list[dict[str, Any]]], batch_size: int,
                    queue: Any, port: int) -> None:
    counts = [[0, 0] for _ in creds]
    started = time.perf_counter()
    threads = [threading.Thread(target=_upload, args=(c, taps, batch_size, n, port), daemon=True)
               for c, taps, n in zip(creds, per_device, counts, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = os.times()
    queue.put((sum(n[0] for n in counts), sum(n[1] for n in counts), time.perf_counter() - started,
               cpu.user + cpu.system))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=1_000_000,
                        help="backlog size (the goal's 1 M by default: a smaller run projects a rate a 1 M run does "
                             "not keep, as the tables outgrow PostgreSQL's buffer cache)")
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--uploaders", type=int, default=4)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--online", type=int, default=16, help="concurrent online validators")
    parser.add_argument("--online-rate", type=float, default=100.0, help="offered online taps/s in all")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--batch-workers", type=int, default=2,
                        help="workers of a separate gunicorn for /batches under nice 10; 0 = share the online pool")
    parser.add_argument("--batch-keepalive", type=int, default=0,
                        help="keep-alive seconds of the batch pool; 0 (the default) closes the connection after each "
                             "batch, so the kernel spreads batches, not connections, over its workers")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
    fresh_database(url)
    numbers, creds = prepare(url, redis_url, args.cards, args.uploaders + args.online)
    uploader_creds, online_creds = creds[:args.uploaders], creds[args.uploaders:]
    per_device = backlog(numbers, args.taps, args.uploaders)
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "CARD_HASH_KEY": HASH_KEY,
           "SECRET_KEY": secrets.token_hex(16)}
    mp = multiprocessing.get_context("fork")
    proc = start_gunicorn("app:create_app()", PORT, env, args.workers, args.threads)
    batch_proc = (start_gunicorn("app:create_app()", PORT_BATCH, env, args.batch_workers, args.threads, nice=10,
                                 keepalive=args.batch_keepalive)
                  if args.batch_workers else None)
    try:
        drive(PORT, online_creds, numbers, 2.0, args.online, seq_base=1)  # warm-up
        analyze(url)
        alone = drive(PORT, online_creds, numbers, 10.0, args.online, seq_base=1_000_000, rate=args.online_rate)
        print(f"online alone: {alone.taps_per_s:.0f} taps/s, p99 {alone.p99_ms:.1f} ms, {alone.errors} errors",
              flush=True)
        queue = mp.Queue()
        plain = [(c.device_id, c.key_id, c.secret) for c in uploader_creds]
        uploader = mp.Process(target=_upload_process, args=(plain, per_device, args.batch, queue,
                                                                  PORT_BATCH if batch_proc else PORT))
        stop = mp.Event()
        uploader.start()
        result: list[Any] = []
        waiter = threading.Thread(target=lambda: (result.append(queue.get()), stop.set()), daemon=True)
        waiter.start()
        during = drive(PORT, online_creds, numbers, 3600.0, args.online, seq_base=2_000_000, rate=args.online_rate,
                       stop=stop)
        waiter.join()
        uploader.join()
    finally:
        for p in (proc, batch_proc):
            if p is not None:
                p.terminate()
                p.wait(10)
    applied, retried, upload_s, upload_cpu = result[0]
    rate = applied / upload_s
    print(f"backlog: {applied} taps in {upload_s:.1f} s ({rate:.0f} taps/s, {retried} retried batches of "
          f"{args.batch}; uploader used {upload_cpu:.1f} CPU-s); online meanwhile: {during.taps_per_s:.0f} taps/s, "
          f"p50 {during.p50_ms:.1f} ms, p99 {during.p99_ms:.1f} ms, {during.errors} errors; "
          f"{args.workers}x{args.threads} gunicorn"
          + (f" + {args.batch_workers}x{args.threads} at nice 10 for batches" if batch_proc else "")
          + f"; load average {os.getloadavg()[0]:.2f}", flush=True)
    print(f"backlog_taps={applied} seconds={upload_s:.1f} backlog_taps_per_s={rate:.0f} "
          f"projected_1m_s={1_000_000 / rate:.0f} online_p99_ms={during.p99_ms:.1f} "
          f"online_alone_p99_ms={alone.p99_ms:.1f}")


if __name__ == "__main__":
    main()
