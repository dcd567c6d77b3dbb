"""The PL/pgSQL function the migrations leave in the database is the current source in ``app/ticketing/sql/``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.db import make_engine
from app.ticketing import ledger

SCRATCH = "qala_sql_check"  # the file's function is created here too (and rolled back) to compare signatures


def _body(source: str) -> str:
    """The function body of a ``CREATE FUNCTION ... AS $$ body $$`` statement: what ``pg_proc.prosrc`` holds."""
    parts = source.split("$$")
    assert len(parts) == 3, "the function body is quoted with exactly one pair of $$"
    return parts[1]


def _normalised(body: str) -> str:
    """Whitespace runs as one space: re-indenting is no change, any other edit is."""
    return " ".join(body.split())


@pytest.fixture
def postgres(database_url: str) -> Iterator[Connection]:
    """A connection to the session's database, migrated to head by ``database_url`` (``app.migrate.upgrade``)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PL/pgSQL functions are PostgreSQL's (TEST_DATABASE_URL); SQLite has none")
    engine = make_engine(database_url)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def _function(conn: Connection, schema: str) -> tuple[str, str, str]:
    """(arguments, result, body) of the online taps function in ``schema``."""
    row = conn.execute(text(
        "SELECT pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.prosrc FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proname = :name AND n.nspname = :schema"),
        {"name": ledger.ONLINE_TAPS_FUNCTION, "schema": schema}).all()
    assert len(row) == 1, f"{ledger.ONLINE_TAPS_FUNCTION} is defined {len(row)} times in schema {schema}"
    return row[0][0], row[0][1], row[0][2]


def test_the_function_source_ships_in_the_package() -> None:
    source = ledger.function_source()
    assert f"CREATE OR REPLACE FUNCTION {ledger.ONLINE_TAPS_FUNCTION}(" in source
    assert "FOR UPDATE OF a SKIP LOCKED" in _body(source)
    assert _normalised(_body(source)) != _normalised(_body(source).replace("v_fare > 0", "v_fare >= 0"))


def test_the_migrated_function_is_the_current_source(postgres: Connection) -> None:
    """A change to ``app/ticketing/sql/qala_online_taps.sql`` without a migration that runs it fails here."""
    schema = postgres.execute(text("SELECT current_schema()")).scalar_one()
    arguments, result, prosrc = _function(postgres, schema)
    source = ledger.function_source()
    assert _normalised(prosrc) == _normalised(_body(source)), (
        f"the database's {ledger.ONLINE_TAPS_FUNCTION} differs from app/ticketing/sql/: a change to the .sql "
        "needs a migration that runs it")
    # the signature too: the file's function, created aside in this transaction (then rolled back), matches
    postgres.execute(text(f"CREATE SCHEMA {SCRATCH}"))
    postgres.execute(text(f"SET LOCAL search_path = {SCRATCH}, {schema}"))
    postgres.exec_driver_sql(source)
    created = _function(postgres, SCRATCH)
    postgres.rollback()
    assert (arguments, result) == created[:2]
    assert _normalised(created[2]) == _normalised(prosrc)
