"""Reading the forecast store: the current view and the runs, each in one transaction, so a
reader sees the previous run or the new one, never a part (tasks/publishing/store.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import polars as pl
from sqlalchemy.engine import Connection

from tasks.columns import SERIES_ID, TIMESTAMP
from tasks.publishing.db import Database, NoStore, locate
from tasks.publishing.lineage import LINEAGE_FIELDS
from tasks.publishing.store_schema import (
    _ROW_SCHEMA,
    _RUN_SCHEMA,
    BATCH_SIZE,
    DEFAULT_MODEL,
    INTERVAL_COLUMNS,
    MODEL,
    REASON,
    ROW_COLUMNS,
    RUN_COLUMNS,
    STALE,
    TS_FORMAT,
    UNKNOWN,
    _columns,
    _version,
    has_table,
)


def _frame(conn: Connection, sql: str, schema: Mapping[str, type[pl.DataType]]) -> pl.DataFrame:
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        return _copy_frame(conn, sql, schema)
    # The driver's own cursor, in the connection's transaction: plain tuples, a batch at a time.
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        parts = [pl.DataFrame(schema=dict(schema))]
        while batch := cursor.fetchmany(BATCH_SIZE):
            parts.append(pl.DataFrame(batch, schema=dict(schema), orient="row"))
    finally:
        cursor.close()
    return pl.concat(parts)


def _copy_frame(conn: Connection, sql: str, schema: Mapping[str, type[pl.DataType]]):
    """PostgreSQL: the query's rows as CSV through COPY TO (in this transaction), parsed by
    polars: no Python object per value."""
    import io

    buffer = io.BytesIO()
    cursor = conn.connection.cursor()
    try:
        with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
            for chunk in copy:
                buffer.write(chunk)
    finally:
        cursor.close()
    if buffer.tell() == 0:
        return pl.DataFrame(schema=dict(schema))
    buffer.seek(0)
    return pl.read_csv(buffer, has_header=False, new_columns=list(schema), schema=dict(schema))


def _read_view(conn: Connection) -> pl.DataFrame:
    version = _version(conn)
    view = _columns(conn, "current_forecasts")
    # An older store (not yet migrated by a publish) reads with NULL intervals (version 1),
    # nothing stale (versions 1 and 2), UNKNOWN for lineage fields it lacks (<= 4) and for the
    # reason (<= 6).
    columns = [
        f"NULL AS {c}"
        if version < 2 and c in INTERVAL_COLUMNS
        else f"'{DEFAULT_MODEL}' AS {c}"
        if version < 4 and c == MODEL
        else f"'{UNKNOWN}' AS {c}"
        if (c in LINEAGE_FIELDS or c == REASON) and view and c not in view
        else c
        for c in ROW_COLUMNS
    ] + [STALE if version >= 3 else f"0 AS {STALE}"]
    frame = _frame(
        conn,
        f"SELECT {', '.join(columns)} FROM current_forecasts ORDER BY {SERIES_ID}, {TIMESTAMP}",
        _ROW_SCHEMA,
    )
    return frame.with_columns(
        pl.col(TIMESTAMP).str.to_datetime(TS_FORMAT, time_unit="us", strict=True),
        pl.col(STALE).cast(pl.Boolean),
    )


@contextlib.contextmanager
def reading(store: str | Path | Database) -> Iterator[Connection]:
    """One read transaction: a consistent snapshot (SQLite: a shared lock for its duration;
    PostgreSQL: REPEATABLE READ), so a concurrent publish is seen whole or not at all."""
    db = locate(store)
    engine = db.engine(write=False)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                if not has_table(conn, "runs"):
                    raise NoStore(f"no forecast store at {db.masked} (nothing published yet?)")
                yield conn
    finally:
        engine.dispose()


def read_current(store: str | Path | Database) -> pl.DataFrame:
    """The current forecasts (the most recently published run, and the stale rows it keeps),
    sorted by series and time."""
    with reading(store) as conn:
        return _read_view(conn)


def list_runs(store: str | Path | Database) -> pl.DataFrame:
    """Every run in the store, oldest publish first."""
    with reading(store) as conn:
        have = _columns(conn, "runs")  # an older store: UNKNOWN for lineage fields it lacks
        columns = [c if c in have or not have else f"'{UNKNOWN}' AS {c}" for c in RUN_COLUMNS]
        sql = f"SELECT {', '.join(columns)} FROM runs ORDER BY publish_seq"
        return _frame(conn, sql, _RUN_SCHEMA)
