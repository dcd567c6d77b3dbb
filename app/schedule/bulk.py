"""Fast bulk inserts of DataFrames: PostgreSQL ``COPY`` through psycopg 3, executemany batches elsewhere."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Boolean, Date, Float, Integer, Table
from sqlalchemy.engine import Connection

__all__ = ["CHUNK_ROWS", "conform", "insert_frame"]

CHUNK_ROWS = 100_000
Advance = Callable[[int], None]


def conform(table: Table, frame: pd.DataFrame, feed_version_id: int) -> pd.DataFrame:
    """The frame's columns in the table's order and types; absent columns become NULL (or the
    column's Python default); an autoincrement surrogate ``id`` is left to the database."""
    out: dict[str, object] = {}
    n = len(frame)
    for column in table.columns:
        if column.name == "id" and column.primary_key:
            continue
        if column.name == "feed_version_id":
            out[column.name] = np.full(n, feed_version_id, dtype=np.int64)
            continue
        scalar = column.default is not None and column.default.is_scalar
        default = getattr(column.default, "arg", None) if scalar else None
        if column.name in frame.columns:
            values = frame[column.name]
        else:
            values = pd.Series([None] * n, index=frame.index, dtype=object)
        typed = _typed(column.type, values)
        if default is not None:
            typed = typed.fillna(default)
        out[column.name] = typed.reset_index(drop=True)
    return pd.DataFrame(out)


def _typed(sqltype: object, values: pd.Series) -> pd.Series:
    if isinstance(sqltype, Boolean):
        return values.astype("boolean")
    if isinstance(sqltype, Integer):
        return pd.to_numeric(values, errors="raise").round().astype("Int64")
    if isinstance(sqltype, Float):
        return values.astype("Float64")
    if isinstance(sqltype, Date):
        return values.astype(object)
    text = values if pd.api.types.is_string_dtype(values) else values.astype("string")
    text = text.str.strip()
    return text.where(text != "", None)


def insert_frame(conn: Connection, table: Table, frame: pd.DataFrame, advance: Advance | None = None) -> int:
    """Insert all rows of a conformed frame inside the connection's transaction; returns the row count."""
    if frame.empty:
        return 0
    if conn.dialect.name == "postgresql":
        _copy(conn, table, frame, advance)
    else:
        _executemany(conn, table, frame, advance)
    return len(frame)


def _copy(conn: Connection, table: Table, frame: pd.DataFrame, advance: Advance | None) -> None:
    """Stream CSV made by Arrow's writer (C++, far faster than ``DataFrame.to_csv``) into ``COPY``;
    the queued writer sends from a thread, so PostgreSQL parses one chunk while we format the next."""
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    raw = conn.connection.driver_connection
    assert raw is not None
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    options = pa_csv.WriteOptions(include_header=False, batch_size=8192)
    sql = f'COPY "{table.name}" ({columns}) FROM STDIN (FORMAT csv)'
    with raw.cursor() as cursor, cursor.copy(sql, writer=QueuedLibpqWriter(cursor)) as copy:
        for start in range(0, len(frame), CHUNK_ROWS):
            chunk = arrow.slice(start, CHUNK_ROWS)
            buffer = io.BytesIO()
            pa_csv.write_csv(chunk, buffer, options)
            copy.write(buffer.getvalue())
            if advance:
                advance(chunk.num_rows)


def _executemany(conn: Connection, table: Table, frame: pd.DataFrame, advance: Advance | None) -> None:
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    marks = ", ".join("?" for _ in frame.columns)
    sql = f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})'
    for start in range(0, len(frame), CHUNK_ROWS):
        chunk = frame.iloc[start:start + CHUNK_ROWS]
        rows = list(chunk.astype(object).where(chunk.notna(), None).itertuples(index=False, name=None))
        conn.exec_driver_sql(sql, rows)
        if advance:
            advance(len(chunk))
