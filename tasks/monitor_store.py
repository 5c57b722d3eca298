"""The monitor's access to the forecast store: every SQL statement of monitoring is here (a
later SQLAlchemy backend of the store replaces this module alone).

Tables, beside the store's runs/forecasts (tasks/store.py), created IF NOT EXISTS and versioned
on their own (table `schema_versions`, component 'monitor'), so they do not touch the store's
PRAGMA user_version that publish checks and migrates:
  monitor_steps     per run, series and target timestamp: actual, error, scaled error, sMAPE
                    term, inside the 80/95 % interval
  monitor_series    per run and series: n_observed, mase, rmse, smape, coverage_80/95
  monitor_runs      per run: n_series, n_observed and the mean of those over its series
  run_expectations  per run and metric: the backtest figure the run was published with
Every table holds the latest scoring of a run (rescored in full as more actuals arrive) and
`scored_at`.

Written like a publish (tasks/transaction.py): under the store directory's lock, into a copy of
the store, in one SQLite transaction, renamed into place through the publish journal; a crash
leaves the store as it was, a concurrent publish is never lost (the copy is taken under the
lock).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from tasks import store as forecast_store
from tasks.columns import SERIES_ID, TIMESTAMP
from tasks.transaction import Transaction

COMPONENT = "monitor"
# 1: monitor_steps, monitor_series, monitor_runs, run_expectations.
SCHEMA_VERSION = 1
TS_FORMAT = forecast_store.TS_FORMAT
_FORECAST_COLUMNS = (
    "run_key",
    SERIES_ID,
    TIMESTAMP,
    "horizon_step",
    "forecast",
    *forecast_store.INTERVAL_COLUMNS,
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


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER)",
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


def _connect_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(sql, (name,)).fetchone() is not None


def _version(conn: sqlite3.Connection) -> int:
    if not _has_table(conn, "schema_versions"):
        return 0
    row = conn.execute(
        "SELECT version FROM schema_versions WHERE component = ?", (COMPONENT,)
    ).fetchone()
    return row[0] if row else 0


def _ensure_schema(conn: sqlite3.Connection) -> None:
    """Version 0 (a store no monitor has written) -> 1: create the tables. A newer version is
    refused: this code would misread it."""
    version = _version(conn)
    if version > SCHEMA_VERSION:
        raise ValueError(
            f"the store's monitor tables have schema version {version}, this code writes "
            f"{SCHEMA_VERSION}: refusing to write to them"
        )
    for statement in _SCHEMA:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
        "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
        (COMPONENT, SCHEMA_VERSION),
    )


# ---------------------------------------------------------------- read
def read_published(store: str | Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(runs, forecasts) of every published run: runs = run_key, model_md5, published_at,
    publish_seq; forecasts = run_key, series_id, timestamp (Datetime), horizon_step, forecast
    and the interval bounds (null where not published)."""
    conn = _connect_ro(Path(store))
    try:
        runs = conn.execute(
            "SELECT run_key, model_md5, published_at, publish_seq FROM runs ORDER BY publish_seq"
        ).fetchall()
        have = {r[1] for r in conn.execute("PRAGMA table_info(forecasts)")}
        columns = [c if c in have else f"NULL AS {c}" for c in _FORECAST_COLUMNS]
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM forecasts").fetchall()
    finally:
        conn.close()
    runs_frame = pl.DataFrame(
        runs,
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
        **dict.fromkeys(forecast_store.INTERVAL_COLUMNS, pl.Float64),
    }
    forecasts = pl.DataFrame(rows, schema=schema, orient="row").with_columns(
        pl.col(TIMESTAMP).str.to_datetime(TS_FORMAT, time_unit="us", strict=True)
    )
    return runs_frame, forecasts


def read_expectations(store: str | Path) -> dict[str, dict[str, float]]:
    """{run_key: {metric: backtest figure}} recorded so far ({} before any monitor wrote)."""
    conn = _connect_ro(Path(store))
    try:
        if not _has_table(conn, "run_expectations"):
            return {}
        rows = conn.execute("SELECT run_key, metric, value FROM run_expectations").fetchall()
    finally:
        conn.close()
    out: dict[str, dict[str, float]] = {}
    for key, metric, value in rows:
        out.setdefault(key, {})[metric] = value
    return out


def read_scores(store: str | Path, table: str) -> pl.DataFrame:
    """One monitor table (monitor_steps, monitor_series, monitor_runs), sorted by its key."""
    columns = _TABLES[table]
    conn = _connect_ro(Path(store))
    try:
        if not _has_table(conn, table):
            rows = []
        else:
            order = ", ".join(c for c in ("run_key", SERIES_ID, TIMESTAMP) if c in columns)
            cols = ", ".join((*columns, "scored_at"))
            rows = conn.execute(f"SELECT {cols} FROM {table} ORDER BY {order}").fetchall()
    finally:
        conn.close()
    schema = {
        c: pl.String if c in _TEXT else pl.Int64 if c in _INT else pl.Float64 for c in columns
    }
    return pl.DataFrame(rows, schema={**schema, "scored_at": pl.String}, orient="row")


# ---------------------------------------------------------------- write
def _text(frame: pl.DataFrame, columns: tuple[str, ...]) -> list[tuple]:
    if TIMESTAMP in frame.columns:
        frame = frame.with_columns(pl.col(TIMESTAMP).dt.strftime(TS_FORMAT))
    return frame.select(columns).rows()


def _fill(
    path: Path,
    tables: Mapping[str, pl.DataFrame],
    expectations: Mapping[str, Mapping[str, float]],
    source: str,
    scored_at: str,
) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("BEGIN IMMEDIATE")
        try:
            _ensure_schema(conn)
            for table, frame in tables.items():
                columns = _TABLES[table]
                # The latest scoring of a run replaces its earlier one as a whole.
                conn.executemany(
                    f"DELETE FROM {table} WHERE run_key = ?",
                    [(k,) for k in frame["run_key"].unique().to_list()],
                )
                conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}, scored_at) "
                    f"VALUES ({', '.join('?' * (len(columns) + 1))})",
                    [(*row, scored_at) for row in _text(frame, columns)],
                )
            # The figure a run was published with never changes: the first one recorded stays.
            conn.executemany(
                "INSERT OR IGNORE INTO run_expectations (run_key, metric, value, source) "
                "VALUES (?, ?, ?, ?)",
                [
                    (key, metric, value, source)
                    for key, figures in expectations.items()
                    for metric, value in figures.items()
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


def write_monitor(
    store: str | Path,
    journal: str | Path,
    tables: Mapping[str, pl.DataFrame],
    expectations: Mapping[str, Mapping[str, float]],
    source: str,
    scored_at: str,
) -> None:
    """Replace the scores of the runs in `tables` ({table: frame}) and record `expectations`
    (where the run has none yet, from `source`), all at once or not at all."""
    store = Path(store)
    with forecast_store.directory_lock(store.parent), Transaction(journal) as txn:

        def fill(tmp: Path) -> None:
            shutil.copyfile(store, tmp)  # under the lock: no publish can land in between
            _fill(tmp, tables, expectations, source, scored_at)

        txn.write(store, fill)
        txn.commit()
