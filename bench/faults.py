"""Fault injection: taps keep flowing while workers die, PostgreSQL restarts and responses get lost.

For each schedule (a seed): start gunicorn on a fresh PostgreSQL database, run simulated validators that send
online taps and offline batches (shuffled, some sent 2-3 times, some responses dropped so the validator
retries), while a fault thread kill -9s a gunicorn worker mid-request, terminates the service's database
connections, and — in the first ``--pg-restarts`` schedules, once each — restarts the PostgreSQL server itself
(``pg_ctlcluster --skip-systemctl-redirect <version> main restart``: a fast shutdown that aborts every open
transaction, then a start). Afterwards every tap is retried until acknowledged, and the ledger is checked:
every acknowledged tap is in the database exactly once, no tap is charged twice, and the invariants hold.
The last line is ``schedules=<n> lost=0 duplicated=0`` (any other figure is a failure).

The server is shared on this machine, so restarts are few (default 2 in a run) and only this bench does them;
``--pg-restarts 0`` leaves the server alone.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/qala_bench_faults .venv/bin/python bench/faults.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

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
DEFAULT_REDIS = "redis://127.0.0.1:6379/7"
PORT = 18743


class Validator(threading.Thread):
    """Online taps and offline batches; remembers every tap until the server acknowledges it."""

    def __init__(self, creds: Any, numbers: list[str], deadline: float, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.creds, self.numbers, self.deadline, self.rng = creds, numbers, deadline, rng
        self.seq = 0
        self.unacked: dict[int, dict[str, Any]] = {}
        self.acked: set[int] = set()
        self.http = requests.Session()

    def new_tap(self) -> dict[str, Any]:
        self.seq += 1
        at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.rng.randrange(0, 3600))
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
            return None
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
            result = self.send("/api/v1/validators/taps", self.new_tap(), drop=self.rng.random() < 0.1)
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


def inject_faults(master: int, url: str, deadline: float, rng: random.Random, log: list[str],
                  restart_pg: bool) -> None:
    engine = make_engine(url)
    restart_at = time.monotonic() + rng.uniform(2.0, 5.0) if restart_pg else float("inf")
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.5, 2.0))
        if time.monotonic() >= restart_at:
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


def run_schedule(seed: int, seconds: float, url: str, redis_url: str,
                 restart_pg: bool) -> tuple[int, int, list[str]]:
    rng = random.Random(seed)
    fresh_database(url)
    numbers, creds = prepare(url, redis_url, 200, 6)
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "CARD_HASH_KEY": HASH_KEY, "SECRET_KEY": "bench"}
    proc = start_gunicorn("app:create_app()", PORT, env, workers=2, threads=4)
    deadline = time.monotonic() + seconds
    validators = [Validator(c, numbers, deadline, random.Random(rng.random())) for c in creds]
    log: list[str] = []
    faults = threading.Thread(target=inject_faults, args=(proc.pid, url, deadline, rng, log, restart_pg),
                              daemon=True)
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
    print(f"schedule {seed}: {taps} taps acknowledged, {unacked} never acknowledged, {len(log)} faults "
          f"({sum('kill' in f for f in log)} worker kills, {sum('restarted' in f for f in log)} PostgreSQL "
          f"restarts, {sum('terminated' in f for f in log)} connection terminations), lost={lost} "
          f"duplicated={duplicated} "
          f"invariants={'ok' if not problems else problems[:3]}", flush=True)
    return lost + unacked, duplicated, problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--pg-restarts", type=int, default=2, help="schedules (the first ones) that restart "
                        "PostgreSQL once; the server is shared, keep this small")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
    lost = duplicated = broken = 0
    for seed in range(args.schedules):
        schedule_lost, schedule_duplicated, problems = run_schedule(seed, args.seconds, url, redis_url,
                                                                    restart_pg=seed < args.pg_restarts)
        lost += schedule_lost
        duplicated += schedule_duplicated
        broken += bool(problems)
    suffix = f" invariant_failures={broken}" if broken else ""
    print(f"schedules={args.schedules} lost={lost} duplicated={duplicated}{suffix}")


if __name__ == "__main__":
    main()
