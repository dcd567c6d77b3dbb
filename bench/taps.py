"""Benchmark: online taps through gunicorn + PostgreSQL with real signed HTTP, against a bare psycopg endpoint.

Prepares a fresh database with cards (bulk-loaded, each with a top-up in the ledger) and validators, starts
two gunicorns side by side with the deployment's settings (``app/gunicorn.conf.py``) — the Qala app, and a
bare WSGI app that runs the same SQL per tap with no framework, signature, nonce or fare logic — and drives
them in alternating rounds (``--rounds``, so a change in the load of this shared machine falls on both alike)
with many concurrent simulated validators.

The SQL is the group call: Qala commits the online taps a worker receives together with one
``qala_online_taps`` call (``app.ticketing.fastpath``, ``app.ticketing.coalesce``), so the fair bare endpoint
groups its taps the same way (the same coalescer and function, on a per-thread psycopg connection); what the
ratio measures is everything else Qala does per request (signature, nonce, schema check, parsing, fare prices).

The validators run in a separate process on raw keep-alive HTTP/1.1 sockets, building and signing each tap
just before sending it (a few µs), so the load generator takes little of the machine's two cores; its own
CPU time is printed. Each validator taps its own share of the cards in a fixed cycle (a rider's card is not
tapped on two buses seconds apart). ``--rate R`` offers R taps/s in all (open loop: latency counts from the
scheduled send, so a server that falls behind is charged for it); without it each validator taps back to back.

The last line is ``taps_per_s=<n> p99_ms=<n> ratio_to_bare=<x>`` (ratio = bare taps/s ÷ Qala taps/s, so
1.0 means no overhead over the bare SQL; with ``--rate`` both serve the same offered rate and the ratio is
of their p99 latencies instead).

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/qala_bench_taps \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/6 .venv/bin/python bench/taps.py [--seconds 10] [--clients 32] [--rate 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import multiprocessing
import os
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app, get_db  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.ticketing import devices  # noqa: E402
from app.ticketing.cardnumbers import code_hash, generate_card, mask, number_hash  # noqa: E402
from app.ticketing.coalesce import Coalescer  # noqa: E402
from app.ticketing.context import get_ticketing  # noqa: E402
from app.ticketing.fares import rating_window  # noqa: E402
from app.ticketing.fastpath import GROUP_CALL, flat_prices, group_params  # noqa: E402
from app.ticketing.profiles import build_profile  # noqa: E402
from bench.benchdb import fresh_database  # noqa: E402

__all__ = ["DEFAULT_REDIS", "DEFAULT_URL", "HASH_KEY", "HttpClient", "analyze", "drive", "fresh_database",
           "prepare", "start_gunicorn"]

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/qala_bench_taps"
DEFAULT_REDIS = "redis://127.0.0.1:6379/6"
PORT_APP, PORT_BARE = 18741, 18742
HASH_KEY = "bench-card-hash-key"
TAPS = "/api/v1/validators/taps"
BALANCE = 10_000_000


def prepare(url: str, redis_url: str, n_cards: int, n_devices: int) -> tuple[list[str], list[Any]]:
    """Cards with large balances (each a real kiosk top-up in the ledger), bulk-loaded, and registered validators."""
    app = create_app({"DATABASE_URL": url, "REDIS_URL": redis_url, "CARD_HASH_KEY": HASH_KEY})
    ctx = get_ticketing(app)
    numbers = list({generate_card()[0] for _ in range(n_cards)})
    with get_db(app).session() as session:
        creds = [devices.register_device(session, f"bench validator {i}", ctx.keys) for i in range(n_devices)]
        session.commit()
    raw = get_db(app).engine.raw_connection()
    try:
        conn: Any = raw.driver_connection
        with conn.cursor() as cur:
            cur.execute("INSERT INTO ledger_accounts (code, kind, balance) VALUES ('channel:kiosk', 'channel', 0), "
                        "('revenue', 'revenue', 0) ON CONFLICT DO NOTHING")
            with cur.copy("COPY cards (number_hash, masked, code_hash, rider_category, status) FROM STDIN") as copy:
                for number in numbers:
                    copy.write_row((number_hash(HASH_KEY, number), mask(number), code_hash(HASH_KEY, number, "000"),
                                    "standard", "active"))
            cur.execute("INSERT INTO ledger_accounts (code, kind, card_id, balance) "
                        "SELECT 'card:' || id, 'card', id, %s FROM cards", (BALANCE,))
            cur.execute("INSERT INTO ledger_transactions (kind, reason) SELECT 'top_up', 'bench:' || id "
                        "FROM ledger_accounts WHERE kind = 'card'")
            cur.execute("INSERT INTO ledger_entries (transaction_id, account_id, amount) "
                        "SELECT t.id, a.id, %s FROM ledger_transactions t "
                        "JOIN ledger_accounts a ON t.reason = 'bench:' || a.id "
                        "UNION ALL SELECT t.id, (SELECT id FROM ledger_accounts WHERE code = 'channel:kiosk'), %s "
                        "FROM ledger_transactions t WHERE t.reason LIKE 'bench:%%'", (BALANCE, -BALANCE))
            cur.execute("ANALYZE")
        conn.commit()
    finally:
        raw.close()
    get_db(app).engine.dispose()
    return numbers, creds


def analyze(url: str) -> None:
    """Refresh the planner's statistics, as autovacuum does on a live system within a minute or so.

    The database starts with no taps, and a server's connection that first plans ``qala_online_taps`` then keeps
    plans fit for an empty table (sequential scans of ``taps``) until statistics change; on a live system taps
    are never empty, so the benchmarks measure after their warm-up and this."""
    engine = make_engine(url)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    engine.dispose()


def start_gunicorn(target: str, port: int, env: dict[str, str], workers: int | None = None,
                   threads: int | None = None, nice: int = 0, keepalive: int | None = None,
                   ) -> subprocess.Popen[bytes]:
    """gunicorn with the deployment's settings (``app/gunicorn.conf.py``); ``workers``/``threads``/``keepalive``
    override them."""
    cmd = (["nice", "-n", str(nice)] if nice else []) + [
        str(ROOT / ".venv/bin/gunicorn"), "-c", str(ROOT / "app" / "gunicorn.conf.py"), "-b", f"127.0.0.1:{port}",
        "--log-level", "warning", "--chdir", str(ROOT)]
    cmd += (["-w", str(workers)] if workers else []) + (["--threads", str(threads)] if threads else [])
    cmd += (["--keep-alive", str(keepalive)] if keepalive is not None else []) + [target]
    proc = subprocess.Popen(cmd, env={**os.environ, **env})
    for _ in range(300):  # up to 30 s: app import is slow on a loaded 2-core machine
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
            return proc
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gunicorn {target} did not start")


class HttpClient:
    """One keep-alive HTTP/1.1 connection on a raw socket: far cheaper per request than ``requests``."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port, self.timeout = port, timeout
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = sock, b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, b""

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """(status, body); raises ``OSError`` when the connection fails (the caller decides about retrying)."""
        sock = self.sock or self._connect()
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        try:
            sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n{head}\r\n".encode() + body)
            while b"\r\n\r\n" not in self.buf:
                self._read(sock)
            raw_head, _, rest = self.buf.partition(b"\r\n\r\n")
            lines = raw_head.decode("latin-1").split("\r\n")
            fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(fields.get("content-length", "0"))
            self.buf = rest
            while len(self.buf) < length:
                self._read(sock)
            payload, self.buf = self.buf[:length], self.buf[length:]
        except OSError:
            self.close()
            raise
        if fields.get("connection", "").lower() == "close":
            self.close()
        return int(lines[0].split()[1]), payload

    def _read(self, sock: socket.socket) -> None:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        self.buf += chunk


def signed_headers(device_id: str, key_id: str, secret: str, path: str, body: bytes) -> dict[str, str]:
    """The validator's signature headers (the same construction as ``app.ticketing.devices.sign``, v2: no query
    string, no Idempotency-Key)."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(12)
    message = "\n".join(["POST", path, "", timestamp, nonce, "", hashlib.sha256(body).hexdigest()])
    signature = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return {"X-Qala-Device": device_id, "X-Qala-Key": key_id, "X-Qala-Timestamp": timestamp, "X-Qala-Nonce": nonce,
            "X-Qala-Signature": signature}


@dataclass
class DriveResult:
    taps_per_s: float
    p99_ms: float
    p50_ms: float
    errors: int
    loadgen_cpu_s: float
    seconds: float
    latencies: list[float] = field(default_factory=list, repr=False)  # seconds, sorted

    @staticmethod
    def merge(parts: list[DriveResult]) -> DriveResult:
        """Several drives of one target as one (rounds interleaved with another target's)."""
        latencies = sorted(x for p in parts for x in p.latencies)
        seconds = sum(p.seconds for p in parts)
        return DriveResult(len(latencies) / seconds, _pct(latencies, 0.99), _pct(latencies, 0.5),
                           sum(p.errors for p in parts), sum(p.loadgen_cpu_s for p in parts), seconds, latencies)


def _pct(latencies: list[float], q: float) -> float:
    return latencies[int(q * (len(latencies) - 1))] * 1000 if latencies else float("nan")


def _validator(port: int, creds: tuple[str, str, str], numbers: list[str], deadline: float, seq0: int,
               interval: float, seed: int, out: list[float], errors: list[int], stop: Any, card_start: int) -> None:
    rng = random.Random(seed)
    http = HttpClient(port)
    device_id, key_id, secret = creds
    seq = seq0
    mine = numbers[:]  # this validator's share of the cards (see _drive_process), each tapped once per cycle,
    random.Random(len(mine)).shuffle(mine)  # in the same order in every run; card_start moves along the cycle
    scheduled = time.perf_counter() + rng.uniform(0, interval)
    while time.perf_counter() < deadline and not (stop is not None and stop.is_set()):
        if interval:
            time.sleep(max(0.0, scheduled - time.perf_counter()))
        seq += 1
        tap = {"seq": seq, "card": mine[(card_start + seq - seq0) % len(mine)],
               "vehicle_id": f"bus-{rng.randrange(2500)}", "route_id": "R12",
               "tapped_at": dt.datetime.now(dt.UTC).isoformat()}
        body = json.dumps(tap).encode()
        started = scheduled if interval else time.perf_counter()  # a late send counts as latency
        scheduled += interval
        try:
            status, _ = http.request("POST", TAPS, body, signed_headers(device_id, key_id, secret, TAPS, body))
        except OSError:
            status = 0
        out.append(time.perf_counter() - started)
        if status != 200:
            errors.append(status)


def _drive_process(port: int, creds: list[tuple[str, str, str]], numbers: list[str], seconds: float, clients: int,
                   seq_base: int, rate: float, queue: Any, stop: Any, card_start: int) -> None:
    interval = clients / rate if rate else 0.0
    deadline = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[int] = []
    started = time.perf_counter()
    # Each validator taps its own share of the cards: a card is not tapped on two buses seconds apart, which a
    # random pick among all cards would do often enough (at 1,000 taps/s and 100,000 cards, 4 % of taps within 2 s
    # of another ride of the card) to send those taps to the general path as possible double taps.
    threads = [threading.Thread(target=_validator, args=(port, creds[i % len(creds)], numbers[i::clients], deadline,
                                                         seq_base + i * 10_000_000, interval, seq_base + i,
                                                         latencies[i], errors, stop, card_start), daemon=True)
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cpu = os.times()
    queue.put(([x for part in latencies for x in part], len(errors), cpu.user + cpu.system, elapsed))


def drive(port: int, creds: list[Any], numbers: list[str], seconds: float, clients: int, seq_base: int,
          rate: float = 0.0, stop: Any = None, card_start: int = 0) -> DriveResult:
    """Run ``clients`` validators in a separate process for ``seconds`` (or until ``stop``, an mp.Event, is set);
    each taps its own share of ``numbers`` in a fixed cycle from position ``card_start``."""
    mp = multiprocessing.get_context("fork")
    queue = mp.Queue()
    plain = [(c.device_id, c.key_id, c.secret) for c in creds]
    proc = mp.Process(target=_drive_process, args=(port, plain, numbers, seconds, clients, seq_base, rate, queue,
                                                   stop, card_start))
    proc.start()
    latencies, errors, cpu, elapsed = queue.get()
    proc.join()
    latencies.sort()
    if not latencies:
        return DriveResult(0.0, float("nan"), float("nan"), errors, cpu, elapsed)
    return DriveResult(len(latencies) / elapsed, _pct(latencies, 0.99), _pct(latencies, 0.5), errors, cpu, elapsed,
                       latencies)


# --- the bare endpoint: the same SQL per tap, psycopg only -------------------------------------------------

_BARE: dict[str, Any] = {}


def _bare_group(taps: list[tuple[dict[str, Any], Any]]) -> list[tuple[Any, ...]]:
    import psycopg

    if "conn" not in _BARE:  # one connection per process, used by one group at a time, as in Qala
        _BARE["conn"] = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    rows = _BARE["conn"].execute(GROUP_CALL, group_params(taps)).fetchall()
    return [row[1:] for row in sorted(rows)]


def _bare_tap(tap: dict[str, Any]) -> dict[str, Any]:
    """The same group call as Qala's online tap (concurrent taps of the process share one call and one commit)."""
    if not _BARE:  # what Qala computes per tap from the fare profile, computed once here
        profile = build_profile("almaty_2024")
        at = dt.datetime.now(dt.UTC)
        prices = flat_prices(profile, "R12", at)
        assert prices is not None
        start, end = rating_window(profile, at)
        _BARE.update(window=(start.isoformat(), end.isoformat()), prices=prices, double=profile.config.double_tap_s,
                     group=Coalescer(_bare_group, 32))
    start, end = _BARE["window"]
    item = {"k": f"bare:{tap['seq']}", "d": "bare", "s": tap["seq"], "b": "x" * 64,
            "c": number_hash(HASH_KEY, tap["card"]), "v": tap["vehicle_id"], "r": tap["route_id"],
            "t": tap["tapped_at"], "ws": start, "we": end, "dt": _BARE["double"]}
    row = _BARE["group"].submit((item, _BARE["prices"]))
    return {"decision": "accept" if row[0] == "accepted" else "deny", "outcome": row[0], "fare": row[2],
            "balance": row[3]}


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
    parser.add_argument("--workers", type=int, default=None, help="default: app/gunicorn.conf.py")
    parser.add_argument("--threads", type=int, default=None, help="default: app/gunicorn.conf.py")
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of Qala and bare")
    parser.add_argument("--verbose", action="store_true", help="print each round")
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
    # Both servers run side by side (the idle one costs nothing) and are driven in alternating rounds, so a
    # change in the machine's load (other sessions share it) falls on both alike.
    targets = (("qala", "app:create_app()", PORT_APP), ("bare", "bench.taps:bare_app", PORT_BARE))
    procs = {name: start_gunicorn(target, port, env, args.workers, args.threads) for name, target, port in targets}
    ports = {"qala": PORT_APP, "bare": PORT_BARE}
    # each round's taps move along the validators' card cycles, far enough that no card is tapped twice within
    # seconds (that would be a possible double tap, which takes the slower general path)
    stride = int(args.seconds / args.rounds * 4000 / args.clients) + 50
    parts: dict[str, list[DriveResult]] = {"qala": [], "bare": []}
    try:
        for i, name in enumerate(("qala", "bare")):  # warm-up: imports, connections, caches
            drive(ports[name], creds, numbers, 2.0, args.clients, seq_base=1 + i * 100_000,
                  card_start=len(numbers) // args.clients // 2 + i * stride)
        analyze(url)
        for r in range(args.rounds):
            for i, name in enumerate(("qala", "bare")):
                parts[name].append(drive(ports[name], creds, numbers, args.seconds / args.rounds, args.clients,
                                         seq_base=5_000_000 + (2 * r + i) * 100_000, rate=args.rate,
                                         card_start=(2 * r + i) * stride))
                if args.verbose:
                    part = parts[name][-1]
                    print(f"  round {r + 1} {name}: {part.taps_per_s:.0f} taps/s, p99 {part.p99_ms:.1f} ms, "
                          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(10)
    results = {name: DriveResult.merge(p) for name, p in parts.items()}
    for name, r in results.items():
        print(f"{name}: {r.taps_per_s:.0f} taps/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, {r.errors} errors "
              f"({args.clients} validators, {args.workers or 'conf'}x{args.threads or 'conf'} gunicorn, "
              f"{args.rounds} rounds; load generator used {r.loadgen_cpu_s:.1f} CPU-s in {r.seconds:.1f} s)",
              flush=True)
    qala, bare = results["qala"], results["bare"]
    ratio = qala.p99_ms / bare.p99_ms if args.rate else bare.taps_per_s / qala.taps_per_s
    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)", flush=True)
    print(f"taps_per_s={qala.taps_per_s:.0f} p99_ms={qala.p99_ms:.1f} ratio_to_bare={ratio:.2f}")


if __name__ == "__main__":
    main()
