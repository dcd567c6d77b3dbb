"""Benchmark: online taps through gunicorn + PostgreSQL with real signed HTTP, against a bare psycopg endpoint.

Prepares a fresh database with cards and validators, starts gunicorn twice (the Qala app, then a bare WSGI
app that runs the same SQL per tap with psycopg and no framework, signature or fare logic), and drives each
with many concurrent simulated validators for a fixed time. The last line is
``taps_per_s=<n> p99_ms=<n> ratio_to_bare=<x>`` (ratio = bare taps/s ÷ Qala taps/s; 1.0 = no overhead).

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/qala_bench_taps \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/6 .venv/bin/python bench/taps.py [--seconds 10] [--clients 32] [--rate 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app, get_db  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.ticketing import cards, devices  # noqa: E402
from app.ticketing.cardnumbers import number_hash  # noqa: E402
from app.ticketing.context import get_ticketing  # noqa: E402
from bench.benchdb import fresh_database  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/qala_bench_taps"
DEFAULT_REDIS = "redis://127.0.0.1:6379/6"
PORT_APP, PORT_BARE = 18741, 18742
HASH_KEY = "bench-card-hash-key"


def prepare(url: str, redis_url: str, n_cards: int, n_devices: int) -> tuple[list[str], list[Any]]:
    """Cards with large balances and registered validators."""
    app = create_app({"DATABASE_URL": url, "REDIS_URL": redis_url, "CARD_HASH_KEY": HASH_KEY})
    ctx = get_ticketing(app)
    numbers, creds = [], []
    with get_db(app).session() as session:
        for _ in range(n_cards):
            card, number, _ = cards.issue_card(session, ctx)
            cards.top_up(session, card, 10_000_000, "kiosk")
            numbers.append(number)
        creds = [devices.register_device(session, f"bench validator {i}") for i in range(n_devices)]
        session.commit()
    get_db(app).engine.dispose()
    return numbers, creds


def start_gunicorn(target: str, port: int, env: dict[str, str], workers: int, threads: int) -> subprocess.Popen[bytes]:
    cmd = [str(ROOT / ".venv/bin/gunicorn"), "-w", str(workers), "-k", "gthread", "--threads", str(threads),
           "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--chdir", str(ROOT), target]
    proc = subprocess.Popen(cmd, env={**os.environ, **env})
    for _ in range(300):  # up to 30 s: app import is slow on a loaded 2-core machine
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
            return proc
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gunicorn {target} did not start")


class Validator(threading.Thread):
    """One simulated validator: signed online taps back to back until the deadline."""

    def __init__(self, port: int, creds: Any, numbers: list[str], deadline: float, seq0: int, signed: bool,
                 interval: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.port, self.creds, self.numbers, self.deadline, self.seq, self.signed = (
            port, creds, numbers, deadline, seq0, signed)
        self.interval = interval  # > 0: one tap every `interval` s (open loop), else back to back
        self.latencies: list[float] = []
        self.errors = 0

    def run(self) -> None:
        http = requests.Session()
        rng = random.Random(self.seq)
        path = "/api/v1/validators/taps"
        scheduled = time.perf_counter() + rng.uniform(0, self.interval)
        while time.perf_counter() < self.deadline:
            if self.interval:
                time.sleep(max(0.0, scheduled - time.perf_counter()))
            self.seq += 1
            tap = {"seq": self.seq, "card": rng.choice(self.numbers), "vehicle_id": f"bus-{rng.randrange(2500)}",
                   "route_id": "R12", "tapped_at": dt.datetime.now(dt.UTC).isoformat()}
            body = json.dumps(tap).encode()
            headers = devices.signing_headers(self.creds, "POST", path, body) if self.signed else {}
            started = scheduled if self.interval else time.perf_counter()  # a late send counts as latency
            scheduled += self.interval
            response = http.post(f"http://127.0.0.1:{self.port}{path}", data=body,
                                 headers={**headers, "Content-Type": "application/json"}, timeout=10)
            self.latencies.append(time.perf_counter() - started)
            self.errors += response.status_code != 200


def drive(port: int, creds: list[Any], numbers: list[str], seconds: float, clients: int,
          signed: bool, seq_base: int, rate: float = 0.0) -> tuple[float, float, int]:
    deadline = time.perf_counter() + seconds
    interval = clients / rate if rate else 0.0
    threads = [Validator(port, creds[i % len(creds)], numbers, deadline, seq_base + i * 10_000_000, signed,
                         interval) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies = sorted(x for t in threads for x in t.latencies)
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else float("nan")
    return len(latencies) / seconds, p99, sum(t.errors for t in threads)


# --- the bare endpoint: the same SQL per tap, psycopg only -------------------------------------------------

_local = threading.local()


def _conn() -> Any:
    import psycopg

    if not hasattr(_local, "conn"):
        _local.conn = psycopg.connect(os.environ["DATABASE_URL"])
    return _local.conn


def _bare_tap(tap: dict[str, Any]) -> dict[str, Any]:
    device = "bare"
    key = f"{device}:{tap['seq']}"
    conn = _conn()
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT id FROM taps WHERE tap_key = %s", (key,))
        hashed = number_hash(HASH_KEY, tap["card"])
        cur.execute("SELECT id, rider_category, status, masked FROM cards WHERE number_hash = %s", (hashed,))
        card_id, _, _, masked = cur.fetchone()
        cur.execute("SELECT id, balance FROM ledger_accounts WHERE card_id = %s FOR UPDATE", (card_id,))
        account_id, _ = cur.fetchone()
        cur.execute("SELECT tap_key, tapped_at, vehicle_id FROM taps WHERE card_id = %s AND tapped_at >= now() - "
                    "interval '1 day' AND outcome IN ('accepted', 'double_tap')", (card_id,))
        cur.fetchall()
        cur.execute("INSERT INTO taps (tap_key, device_id, device_seq, body_hash, card_id, card_masked, vehicle_id, "
                    "route_id, tapped_at, offline, outcome, fare, uncollected) VALUES (%s, %s, %s, %s, %s, %s, %s, "
                    "%s, %s, false, 'accepted', 12000, 0) RETURNING id",
                    (key, device, tap["seq"], "x" * 64, card_id, masked, tap["vehicle_id"], tap["route_id"],
                     tap["tapped_at"]))
        (tap_id,) = cur.fetchone()
        cur.execute("UPDATE ledger_accounts SET balance = balance - 12000 WHERE id = %s AND balance - 12000 >= 0 "
                    "RETURNING balance", (account_id,))
        (balance,) = cur.fetchone()
        cur.execute("INSERT INTO ledger_transactions (kind, charge_key, tap_id) VALUES ('fare', %s, %s) RETURNING id",
                    (f"fare:{key}", tap_id))
        (tx_id,) = cur.fetchone()
        cur.execute("INSERT INTO ledger_entries (transaction_id, account_id, amount) VALUES (%s, %s, -12000), "
                    "(%s, (SELECT id FROM ledger_accounts WHERE code = 'revenue'), 12000)", (tx_id, account_id, tx_id))
    return {"decision": "accept", "fare": 12000, "balance": balance}


def bare_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A WSGI app with no framework: /healthz and the tap SQL."""
    if environ["PATH_INFO"] == "/healthz":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status":"ok"}']
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.dumps(_bare_tap(json.loads(environ["wsgi.input"].read(size)))).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--cards", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offered taps/s in all (open loop; latency from the scheduled send); 0 = as fast as "
                             "the validators can")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
    fresh_database(url)
    numbers, creds = prepare(url, redis_url, args.cards, max(8, args.clients))
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "CARD_HASH_KEY": HASH_KEY,
           "SECRET_KEY": secrets.token_hex(16)}
    with make_engine(url).begin() as conn:  # the bare endpoint taps as device "bare"
        conn.execute(text("INSERT INTO devices (id, name, active) VALUES ('bare', 'bare', true)"))
    results = {}
    for name, target, port, signed in (("qala", "app:create_app()", PORT_APP, True),
                                       ("bare", "bench.taps:bare_app", PORT_BARE, False)):
        proc = start_gunicorn(target, port, env, args.workers, args.threads)
        try:
            drive(port, creds, numbers, 1.0, args.clients, signed, seq_base=1)  # warm-up
            results[name] = drive(port, creds, numbers, args.seconds, args.clients, signed, seq_base=5_000_000,
                                  rate=args.rate)
        finally:
            proc.terminate()
            proc.wait(10)
        rate_, p99, errors = results[name]
        print(f"{name}: {rate_:.0f} taps/s, p99 {p99:.1f} ms, {errors} errors "
              f"({args.clients} validators, {args.workers}x{args.threads} gunicorn)", flush=True)
    qala, bare = results["qala"], results["bare"]
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
    print(f"taps_per_s={qala[0]:.0f} p99_ms={qala[1]:.1f} ratio_to_bare={bare[0] / qala[0]:.2f}")


if __name__ == "__main__":
    main()
