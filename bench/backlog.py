"""Benchmark: a backlog of offline taps applied through the batch endpoint while online taps keep flowing.

Prepares a fresh database (as ``bench/taps.py`` does), starts gunicorn, measures online taps alone, then
uploads the backlog (yesterday's taps, several validators uploading batches concurrently, signed HTTP)
while the same online validators keep tapping. The last line is
``backlog_taps=<n> seconds=<s> backlog_taps_per_s=<r> projected_1m_s=<s> online_p99_ms=<p> online_alone_p99_ms=<p>``;
``projected_1m_s`` is a straight-line extrapolation of the measured rate to 1,000,000 taps.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/qala_bench_taps \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/6 .venv/bin/python bench/backlog.py [--taps 20000] [--uploaders 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.ticketing import devices  # noqa: E402
from bench.taps import DEFAULT_REDIS, DEFAULT_URL, HASH_KEY, Validator, fresh_database, prepare, start_gunicorn  # noqa: E402

PORT = 18743
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


class Uploader(threading.Thread):
    """One validator back online: its backlog in batches, each retried until acknowledged."""

    def __init__(self, creds: Any, taps: list[dict[str, Any]], batch_size: int) -> None:
        super().__init__(daemon=True)
        self.creds, self.taps, self.batch_size = creds, taps, batch_size
        self.applied = 0
        self.failures = 0

    def run(self) -> None:
        http = requests.Session()
        for start in range(0, len(self.taps), self.batch_size):
            body = json.dumps({"taps": self.taps[start:start + self.batch_size]}).encode()
            while True:
                headers = devices.signing_headers(self.creds, "POST", BATCHES, body)
                response = http.post(f"http://127.0.0.1:{PORT}{BATCHES}", data=body, timeout=600,
                                     headers={**headers, "Content-Type": "application/json"})
                if response.status_code == 200:
                    self.applied += len(response.json()["results"])
                    break
                self.failures += 1


def online(creds: list[Any], numbers: list[str], seconds: float, clients: int, seq_base: int,
           stop: threading.Event | None = None) -> tuple[float, float, int]:
    """Online taps for ``seconds`` (or until ``stop`` is set): taps/s, p99 ms, errors."""
    deadline = time.perf_counter() + seconds
    threads = [Validator(PORT, creds[i % len(creds)], numbers, deadline, seq_base + i * 10_000_000, True)
               for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    if stop is not None:
        stop.wait(seconds)
        for t in threads:
            t.deadline = 0.0
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies = sorted(x for t in threads for x in t.latencies)
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else float("nan")
    return len(latencies) / elapsed, p99, sum(t.errors for t in threads)


def _set_when_joined(threads: list[Uploader], done: threading.Event) -> None:
    for t in threads:
        t.join()
    done.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=20_000, help="backlog size")
    parser.add_argument("--cards", type=int, default=0, help="default: one card per 4 backlog taps (max 10,000)")
    parser.add_argument("--uploaders", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--online", type=int, default=8, help="concurrent online validators")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
    fresh_database(url)
    numbers, creds = prepare(url, redis_url, args.cards or min(10_000, max(100, args.taps // 4)),
                             args.uploaders + args.online)
    uploader_creds, online_creds = creds[:args.uploaders], creds[args.uploaders:]
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "CARD_HASH_KEY": HASH_KEY,
           "SECRET_KEY": secrets.token_hex(16)}
    proc = start_gunicorn("app:create_app()", PORT, env, args.workers, args.threads)
    try:
        online(online_creds, numbers, 1.0, args.online, seq_base=1)  # warm-up
        alone = online(online_creds, numbers, 10.0, args.online, seq_base=1_000_000)
        print(f"online alone: {alone[0]:.0f} taps/s, p99 {alone[1]:.1f} ms, {alone[2]} errors", flush=True)
        uploaders = [Uploader(c, taps, args.batch)
                     for c, taps in zip(uploader_creds, backlog(numbers, args.taps, args.uploaders), strict=True)]
        done = threading.Event()
        started = time.perf_counter()
        for u in uploaders:
            u.start()
        threading.Thread(target=_set_when_joined, args=(uploaders, done), daemon=True).start()
        during = online(online_creds, numbers, 3600.0, args.online, seq_base=2_000_000, stop=done)
        seconds = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(10)
    applied = sum(u.applied for u in uploaders)
    rate = applied / seconds
    print(f"backlog: {applied} taps in {seconds:.1f} s ({rate:.0f} taps/s, {sum(u.failures for u in uploaders)} "
          f"retried batches); online meanwhile: {during[0]:.0f} taps/s, p99 {during[1]:.1f} ms, {during[2]} errors; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    print(f"backlog_taps={applied} seconds={seconds:.1f} backlog_taps_per_s={rate:.0f} "
          f"projected_1m_s={1_000_000 / rate:.0f} online_p99_ms={during[1]:.1f} online_alone_p99_ms={alone[1]:.1f}")


if __name__ == "__main__":
    main()
