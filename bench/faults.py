"""Fault injection: taps keep flowing while workers die, PostgreSQL and Redis restart and responses get lost.

For each schedule (a seed): start gunicorn on a fresh PostgreSQL database and the bench's own Redis, run
simulated validators that send online taps and offline batches (shuffled, some sent 2-3 times, some responses
dropped so the validator retries), while a fault thread kill -9s a gunicorn worker mid-request, terminates the
service's database connections, kill -9s the Redis server and starts it again 1-3 s later (empty: it runs without
persistence, so every nonce and the deny-list cache are gone), and — in the first ``--pg-restarts`` schedules,
once each — restarts the PostgreSQL server itself (``pg_ctlcluster --skip-systemctl-redirect <version> main
restart``: a fast shutdown that aborts every open transaction, then a start). Afterwards every tap is retried
until acknowledged, and the ledger is checked: every acknowledged tap is in the database exactly once, no tap is
charged twice, and the invariants hold. Every answer's status is counted: a 500 is a failure (a 503 while Redis
is away is the service saying "retry", and the validators do).
The last line is ``schedules=<n> lost=0 duplicated=0 server_errors=0`` (any other figure is a failure).

Redis is a ``redis-server`` this bench starts on a free port of its own (``--redis-kills 0``: never killed), never
the shared one. The PostgreSQL server is shared on this machine, so restarts are few (default 2 in a run) and
only this bench does them; ``--pg-restarts 0`` leaves the server alone.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/qala_bench_faults .venv/bin/python bench/faults.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis
import requests
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app, get_db  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.models import LedgerTransaction, Tap  # noqa: E402
from app.ticketing import ledger  # noqa: E402
from app.ticketing.devices import signing_headers  # noqa: E402
from bench.taps import HASH_KEY, fresh_database, prepare, start_gunicorn  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/qala_bench_faults"
PORT = 18743


class PrivateRedis:
    """A ``redis-server`` of this bench alone (a free port, no persistence), to kill -9 and start again."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed")
        self.binary = binary
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.dir = tempfile.mkdtemp(prefix="qala-faults-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
            finally:
                client.close()
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Validator(threading.Thread):
    """Online taps and offline batches; remembers every tap until the server acknowledges it."""

    def __init__(self, creds: Any, numbers: list[str], deadline: float, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.creds, self.numbers, self.deadline, self.rng = creds, numbers, deadline, rng
        self.seq = 0
        self.unacked: dict[int, dict[str, Any]] = {}
        self.acked: set[int] = set()
        self.statuses: Counter[int] = Counter()  # every answer's status (0: no answer, the connection failed)
        self.refusals: Counter[str] = Counter()  # the error codes of 4xx answers
        self.http = requests.Session()

    def new_tap(self, online: bool = False) -> dict[str, Any]:
        """An online tap happens now (the server refuses one dated 10 minutes away); offline ones up to an hour
        ago."""
        self.seq += 1
        at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=0 if online else self.rng.randrange(0, 3600))
        tap = {"seq": self.seq, "card": self.rng.choice(self.numbers), "vehicle_id": f"bus-{self.rng.randrange(50)}",
               "route_id": "R12", "tapped_at": at.isoformat()}
        self.unacked[self.seq] = tap
        return tap

    def send(self, path: str, payload: Any, drop: bool = False) -> Any:
        body = json.dumps(payload).encode()
        headers = {**signing_headers(self.creds, "POST", path, body), "Content-Type": "application/json"}
        try:
            response = self.http.post(f"http://127.0.0.1:{PORT}{path}", data=body, headers=headers, timeout=5)
        except requests.RequestException:
            self.statuses[0] += 1
            return None
        self.statuses[response.status_code] += 1
        if 400 <= response.status_code < 500:
            self.refusals[str(response.json().get("error", {}).get("code"))] += 1
        if response.status_code == 503:  # Redis away: the validator waits as told (briefly here) and retries
            time.sleep(min(float(response.headers.get("Retry-After", 1)), 0.2))
        if drop or response.status_code != 200:
            return None  # the response was lost: the validator will retry
        return response.json()

    def ack(self, result: dict[str, Any]) -> None:
        if result.get("decision") in ("accept", "deny"):
            seq = int(result["device_seq"])
            self.acked.add(seq)
            self.unacked.pop(seq, None)

    def step(self) -> None:
        if self.rng.random() < 0.5:
            result = self.send("/api/v1/validators/taps", self.new_tap(online=True), drop=self.rng.random() < 0.1)
            if result:
                self.ack(result)
            return
        # now and then a large backlog, so batches over 250 taps (committed per chunk of cards) are faulted too
        for _ in range(self.rng.randrange(260, 400) if self.rng.random() < 0.1 else self.rng.randrange(1, 20)):
            self.new_tap()
        self.flush(repeats=self.rng.randrange(1, 4))

    def flush(self, repeats: int = 1) -> None:
        batch = list(self.unacked.values())[:500]
        for _ in range(repeats):
            self.rng.shuffle(batch)
            result = self.send("/api/v1/validators/batches", {"taps": batch}, drop=self.rng.random() < 0.1)
            for item in (result or {}).get("results", []):
                self.ack(item)

    def run(self) -> None:
        while time.monotonic() < self.deadline:
            self.step()


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def restart_postgres() -> str:
    """Restart the local PostgreSQL cluster (fast shutdown: open transactions abort, connections drop)."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    started = time.monotonic()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True,
                   capture_output=True, timeout=120)
    return f"restarted PostgreSQL {version} in {time.monotonic() - started:.1f} s"


def restart_redis(server: PrivateRedis, rng: random.Random) -> str:
    """kill -9 the bench's Redis, leave it down 1-3 s while taps flow, start it again (empty)."""
    server.kill()
    down = rng.uniform(1.0, 3.0)
    time.sleep(down)
    server.start()
    return f"killed Redis (-9), restarted it empty after {down:.1f} s"


def inject_faults(master: int, url: str, deadline: float, rng: random.Random, log: list[str],
                  restart_pg: bool, redis_server: PrivateRedis | None) -> None:
    engine = make_engine(url)
    restart_at = time.monotonic() + rng.uniform(2.0, 5.0) if restart_pg else float("inf")
    redis_at = time.monotonic() + rng.uniform(1.0, 4.0) if redis_server is not None else float("inf")
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.5, 2.0))
        if redis_server is not None and time.monotonic() >= redis_at:
            redis_at = float("inf")
            log.append(restart_redis(redis_server, rng))
        elif time.monotonic() >= restart_at:
            restart_at = float("inf")
            log.append(restart_postgres())
        elif rng.random() < 0.6 and (pids := worker_pids(master)):
            pid = rng.choice(pids)
            os.kill(pid, signal.SIGKILL)
            log.append(f"kill -9 worker {pid}")
        else:
            try:
                with engine.begin() as conn:
                    n = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                          "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
                log.append(f"terminated {n} database connections")
            except Exception as exc:  # the server may be coming back from a restart
                log.append(f"could not terminate connections: {type(exc).__name__}")
    engine.dispose()


def verify(url: str, redis_url: str, validators: list[Validator]) -> tuple[int, int, list[str]]:
    app = create_app({"DATABASE_URL": url, "REDIS_URL": redis_url, "CARD_HASH_KEY": HASH_KEY})
    with get_db(app).session() as session:
        stored = {(d, int(s)) for d, s in session.execute(select(Tap.device_id, Tap.device_seq))}
        lost = sum(1 for v in validators for seq in v.acked if (v.creds.device_id, seq) not in stored)
        duplicated = session.scalar(select(func.count()).select_from(
            select(LedgerTransaction.tap_id).where(LedgerTransaction.kind == "fare")
            .group_by(LedgerTransaction.tap_id).having(func.count() > 1).subquery())) or 0
        problems = ledger.check_invariants(session)
    get_db(app).engine.dispose()
    return lost, duplicated, problems


def run_schedule(seed: int, seconds: float, url: str, redis_server: PrivateRedis, restart_pg: bool,
                 kill_redis: bool) -> tuple[int, int, list[str], Counter[int]]:
    rng = random.Random(seed)
    fresh_database(url)
    redis_url = redis_server.url
    numbers, creds = prepare(url, redis_url, 200, 6)
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "CARD_HASH_KEY": HASH_KEY, "SECRET_KEY": "bench"}
    proc = start_gunicorn("app:create_app()", PORT, env, workers=2, threads=4)
    deadline = time.monotonic() + seconds
    validators = [Validator(c, numbers, deadline, random.Random(rng.random())) for c in creds]
    log: list[str] = []
    faults = threading.Thread(target=inject_faults, args=(proc.pid, url, deadline, rng, log, restart_pg,
                                                          redis_server if kill_redis else None), daemon=True)
    for thread in (*validators, faults):
        thread.start()
    for thread in (*validators, faults):
        thread.join()
    for _ in range(50):  # every tap is retried until the server acknowledges it
        for validator in validators:
            while validator.unacked:
                before = len(validator.unacked)
                validator.flush()
                if len(validator.unacked) == before:
                    time.sleep(0.2)
                    break
        if not any(v.unacked for v in validators):
            break
    proc.terminate()
    proc.wait(10)
    lost, duplicated, problems = verify(url, redis_url, validators)
    unacked = sum(len(v.unacked) for v in validators)
    taps = sum(len(v.acked) for v in validators)
    statuses: Counter[int] = sum((v.statuses for v in validators), Counter())
    refusals: Counter[str] = sum((v.refusals for v in validators), Counter())
    print(f"schedule {seed}: {taps} taps acknowledged, {unacked} never acknowledged, {len(log)} faults "
          f"({sum('worker' in f for f in log)} worker kills, {sum('PostgreSQL' in f for f in log)} PostgreSQL "
          f"restarts, {sum('Redis' in f for f in log)} Redis kills, {sum('terminated' in f for f in log)} "
          f"connection terminations), answers {dict(sorted(statuses.items()))} (4xx: {dict(refusals)}), lost={lost} "
          f"duplicated={duplicated} "
          f"invariants={'ok' if not problems else problems[:3]}", flush=True)
    return lost + unacked, duplicated, problems, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--pg-restarts", type=int, default=2, help="schedules (the first ones) that restart "
                        "PostgreSQL once; the server is shared, keep this small")
    parser.add_argument("--redis-kills", type=int, default=None, help="schedules (the first ones) that kill -9 "
                        "the bench's own Redis once and start it again (default: every schedule)")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    redis_kills = args.schedules if args.redis_kills is None else args.redis_kills
    lost = duplicated = broken = 0
    statuses: Counter[int] = Counter()
    server = PrivateRedis()
    try:
        for seed in range(args.schedules):
            server.start()
            schedule_lost, schedule_duplicated, problems, answers = run_schedule(
                seed, args.seconds, url, server, restart_pg=seed < args.pg_restarts, kill_redis=seed < redis_kills)
            server.kill()
            lost += schedule_lost
            duplicated += schedule_duplicated
            broken += bool(problems)
            statuses += answers
    finally:
        server.stop()
    suffix = f" invariant_failures={broken}" if broken else ""
    server_errors = sum(n for status, n in statuses.items() if status >= 500 and status != 503)
    print(f"schedules={args.schedules} lost={lost} duplicated={duplicated} server_errors={server_errors} "
          f"unavailable_503={statuses[503]}{suffix}")


if __name__ == "__main__":
    main()
