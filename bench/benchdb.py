"""The one way benchmarks get a database: created if missing, schema reset, migrated to head."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db import make_engine
from app.migrate import upgrade

__all__ = ["fresh_database"]


def fresh_database(url: str) -> None:
    """Create the PostgreSQL database of ``url`` if needed, drop everything in it, and migrate it."""
    parsed = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = make_engine(parsed.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}).scalar():
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade(url)
