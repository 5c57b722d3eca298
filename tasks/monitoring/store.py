"""The monitor's access to the forecast store: every SQL statement of monitoring is here (a
later SQLAlchemy backend of the store replaces this module alone).

Tables, beside the store's runs/forecasts (tasks/publishing/store.py), created IF NOT EXISTS and
versioned on their own (table `schema_versions`, component 'monitor'), so they do not touch the
store's PRAGMA user_version that publish checks and migrates:
  monitor_steps     per run, series and target timestamp: actual, error, scaled error, sMAPE
                    term, inside the 80/95 % interval
  monitor_series    per run and series: n_observed, mase, rmse, smape, coverage_80/95
  monitor_runs      per run: n_series, n_observed and the mean of those over its series
  run_expectations  per run and metric: the backtest figure the run was published with
Every table holds the latest scoring of a run (rescored in full as more actuals arrive) and
`scored_at`.

Written in place in the store's database (SQLite file or server, tasks/publishing/db.py) in one
transaction, serialised with publishes the way they serialise with each other (BEGIN
IMMEDIATE on SQLite, the advisory lock on PostgreSQL): a crash leaves the previous scores, a
concurrent publish is never lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tasks.columns import SERIES_ID, TIMESTAMP
from tasks.faults import fault_point
from tasks.publishing import store as forecast_store
from tasks.publishing import store_schema
from tasks.publishing.db import Database, locate

COMPONENT = "monitor"
# 1: monitor_steps, monitor_series, monitor_runs, run_expectations.
SCHEMA_VERSION = 1
TS_FORMAT = store_schema.TS_FORMAT
_FORECAST_COLUMNS = (
    "run_key",
    SERIES_ID,
    TIMESTAMP,
    "horizon_step",
    "forecast",
    *store_schema.INTERVAL_COLUMNS,
)
STEP_COLUMNS = (
    "run_key",
    SERIES_ID,
    TIMESTAMP,
    "horizon_step",
    "forecast",
    "actual",
    "error",
    "abs_error",
    "scaled_error",
    "smape",
    "in_80",
    "in_95",
)
SERIES_COLUMNS = (
    "run_key",
    SERIES_ID,
    "n_observed",
    "mase",
    "rmse",
    "smape",
    "coverage_80",
    "coverage_95",
)
RUN_COLUMNS = (
    "run_key",
    "n_series",
    "n_observed",
    "mase",
    "rmse",
    "smape",
    "coverage_80",
    "coverage_95",
)
_TEXT = {"run_key", SERIES_ID, TIMESTAMP}
_INT = {"horizon_step", "n_observed", "n_series"}


def _ddl(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    def sql_type(c: str) -> str:
        return "TEXT NOT NULL" if c in _TEXT else "INTEGER NOT NULL" if c in _INT else "REAL"

    body = ",\n    ".join(f"{c} {sql_type(c)}" for c in columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (\n    {body},\n    scored_at TEXT NOT NULL,\n"
        f"    PRIMARY KEY ({', '.join(key)})\n)"
    )


# `schema_versions` is created by store_schema.set_component_version.
_SCHEMA = (
    _ddl("monitor_steps", STEP_COLUMNS, ("run_key", SERIES_ID, TIMESTAMP)),
    _ddl("monitor_series", SERIES_COLUMNS, ("run_key", SERIES_ID)),
    _ddl("monitor_runs", RUN_COLUMNS, ("run_key",)),
    """CREATE TABLE IF NOT EXISTS run_expectations (
    run_key TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    source TEXT NOT NULL,
    PRIMARY KEY (run_key, metric)
)""",
)
_TABLES = {
    "monitor_steps": STEP_COLUMNS,
    "monitor_series": SERIES_COLUMNS,
    "monitor_runs": RUN_COLUMNS,
}


def _version(conn: Connection) -> int:
    return store_schema.component_version(conn, COMPONENT)


def _ensure_schema(conn: Connection) -> None:
    """Version 0 (a store no monitor has written) -> 1: create the tables. A newer version is
    refused: this code would misread it."""
    version = _version(conn)
    if version > SCHEMA_VERSION:
        raise ValueError(
            f"the store's monitor tables have schema version {version}, this code writes "
            f"{SCHEMA_VERSION}: refusing to write to them"
        )
    for statement in _SCHEMA:
        conn.exec_driver_sql(store_schema._ddl(statement, conn.dialect.name))
    store_schema.set_component_version(conn, COMPONENT, SCHEMA_VERSION)


# ---------------------------------------------------------------- read
def read_published(store: str | Path | Database) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(runs, forecasts) of every published run: runs = run_key, model_md5, published_at,
    publish_seq; forecasts = run_key, series_id, timestamp (Datetime), horizon_step, forecast
    and the interval bounds (null where not published)."""
    with forecast_store.reading(store) as conn:
        runs = conn.exec_driver_sql(
            "SELECT run_key, model_md5, published_at, publish_seq FROM runs ORDER BY publish_seq"
        ).all()
        have = {c["name"] for c in sa.inspect(conn).get_columns("forecasts")}
        columns = [c if c in have else f"NULL AS {c}" for c in _FORECAST_COLUMNS]
        rows = conn.exec_driver_sql(f"SELECT {', '.join(columns)} FROM forecasts").all()
    runs_frame = pl.DataFrame(
        [tuple(r) for r in runs],
        schema={
            "run_key": pl.String,
            "model_md5": pl.String,
            "published_at": pl.String,
            "publish_seq": pl.Int64,
        },
        orient="row",
    )
    schema = {
        "run_key": pl.String,
        SERIES_ID: pl.String,
        TIMESTAMP: pl.String,
        "horizon_step": pl.Int64,
        "forecast": pl.Float64,
        **dict.fromkeys(store_schema.INTERVAL_COLUMNS, pl.Float64),
    }
    forecasts = pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
    forecasts = forecasts.with_columns(
        pl.col(TIMESTAMP).str.to_datetime(TS_FORMAT, time_unit="us", strict=True)
    )
    return runs_frame, forecasts


def read_expectations(store: str | Path | Database) -> dict[str, dict[str, float]]:
    """{run_key: {metric: backtest figure}} recorded so far ({} before any monitor wrote)."""
    with forecast_store.reading(store) as conn:
        if not store_schema.has_table(conn, "run_expectations"):
            return {}
        rows = conn.exec_driver_sql("SELECT run_key, metric, value FROM run_expectations").all()
    out: dict[str, dict[str, float]] = {}
    for key, metric, value in rows:
        out.setdefault(key, {})[metric] = value
    return out


def read_scores(store: str | Path | Database, table: str) -> pl.DataFrame:
    """One monitor table (monitor_steps, monitor_series, monitor_runs), sorted by its key."""
    columns = _TABLES[table]
    with forecast_store.reading(store) as conn:
        if not store_schema.has_table(conn, table):
            rows = []
        else:
            order = ", ".join(c for c in ("run_key", SERIES_ID, TIMESTAMP) if c in columns)
            cols = ", ".join((*columns, "scored_at"))
            rows = [
                tuple(r)
                for r in conn.exec_driver_sql(f"SELECT {cols} FROM {table} ORDER BY {order}")
            ]
    schema = {
        c: pl.String if c in _TEXT else pl.Int64 if c in _INT else pl.Float64 for c in columns
    }
    return pl.DataFrame(rows, schema={**schema, "scored_at": pl.String}, orient="row")


# ---------------------------------------------------------------- write
def _text(frame: pl.DataFrame, columns: tuple[str, ...]) -> list[tuple]:
    if TIMESTAMP in frame.columns:
        frame = frame.with_columns(pl.col(TIMESTAMP).dt.strftime(TS_FORMAT))
    return frame.select(columns).rows()


def _write(
    conn: Connection,
    tables: Mapping[str, pl.DataFrame],
    expectations: Mapping[str, Mapping[str, float]],
    source: str,
    scored_at: str,
) -> None:
    _ensure_schema(conn)
    for table, frame in tables.items():
        columns = _TABLES[table]
        # The latest scoring of a run replaces its earlier one as a whole.
        keys = frame["run_key"].unique().to_list()
        if keys:
            conn.execute(
                sa.text(f"DELETE FROM {table} WHERE run_key = :k"), [{"k": k} for k in keys]
            )
        rows = [dict(zip((*columns, "scored_at"), (*row, scored_at), strict=True))
                for row in _text(frame, columns)]  # fmt: skip
        if rows:
            conn.execute(
                sa.text(
                    f"INSERT INTO {table} ({', '.join(columns)}, scored_at) "
                    f"VALUES ({', '.join(':' + c for c in (*columns, 'scored_at'))})"
                ),
                rows,
            )
    # The figure a run was published with never changes: the first one recorded stays.
    values = [
        {"k": key, "m": metric, "v": value, "s": source}
        for key, figures in expectations.items()
        for metric, value in figures.items()
    ]
    if values:
        conn.execute(
            sa.text(
                "INSERT INTO run_expectations (run_key, metric, value, source) "
                "VALUES (:k, :m, :v, :s) ON CONFLICT DO NOTHING"
            ),
            values,
        )


def write_monitor(
    store: str | Path | Database,
    tables: Mapping[str, pl.DataFrame],
    expectations: Mapping[str, Mapping[str, float]],
    source: str,
    scored_at: str,
) -> None:
    """Replace the scores of the runs in `tables` ({table: frame}) and record `expectations`
    (where the run has none yet, from `source`), all at once or not at all: one database
    transaction, in place."""
    conn, trans = forecast_store._open_write(locate(store))
    try:
        _write(conn, tables, expectations, source, scored_at)
        fault_point("monitor.written")  # every row written, not committed
        trans.commit()
    finally:
        if trans.is_active:
            trans.rollback()
        conn.close()
    fault_point("monitor.committed")
