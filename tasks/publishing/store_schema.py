"""The forecast store's schema: its columns, tables and view, and the migrations of older stores.

Versions: the SQLite file keeps its version in PRAGMA user_version (files of versions 1-3 are
migrated in place by the next publish); a server keeps it in the table `schema_versions`
(component 'store'), which the monitor's tables share (tasks/monitoring/store.py). Reads and
writes are tasks/publishing/store.py's.
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tasks.columns import SERIES_ID, TIMESTAMP
from tasks.publishing.lineage import LINEAGE_FIELDS

HORIZON_STEP = "horizon_step"
FORECAST = "forecast"
FORECAST_COLUMNS = (SERIES_ID, TIMESTAMP, HORIZON_STEP, FORECAST)
# Prediction-interval bounds (optional in a publish; NULL when absent), innermost level first.
INTERVAL_LEVELS = (80, 95)
INTERVAL_COLUMNS = tuple(f"{b}_{lv}" for lv in INTERVAL_LEVELS for b in ("lo", "hi"))
# Which model produced a row (tasks/evaluation/selection.py: the LSTM or a baseline); optional in a
# publish, "lstm" when absent (and for every row stored before schema version 4).
MODEL = "model"
DEFAULT_MODEL = "lstm"
# Why that model (tasks/evaluation/selection.py and short.py: "chosen on 2 folds", "too short for
# the LSTM (40 < 72 steps): best candidate on 1 fold", ...); optional in a publish, UNKNOWN when
# absent and for every row stored before schema version 7.
REASON = "reason"
# Columns of a stored forecast row, in this order; the view and export add STALE.
ROW_COLUMNS = ("run_key", *FORECAST_COLUMNS, *INTERVAL_COLUMNS, MODEL, REASON, *LINEAGE_FIELDS)
# True on a current row kept from an earlier run for a series the latest run did not forecast
# (quarantined by ingest): its forecasts stay visible, marked as not refreshed.
STALE = "stale"
VIEW_COLUMNS = (*ROW_COLUMNS, STALE)
RUN_COLUMNS = ("run_key", *LINEAGE_FIELDS, "last_published_at", "publish_seq", "n_rows")

# ISO 8601 without zone; fractional seconds only when present (Python's isoformat does the same).
TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.f"
# 1: forecasts without intervals; 2: + INTERVAL_COLUMNS; 3: + stale_series and the view's STALE
# 4: + MODEL; 5: + every lineage field an older store lacks (`trained_through`), 'unknown' on old
# rows (an older store is migrated in place, inside the publish's transaction).
# 6: + `covariates` in the lineage, migrated by the same code. 7: + REASON, UNKNOWN on old rows.
SCHEMA_VERSION = 7
# What an older store's rows and runs hold for a lineage field added since they were written.
UNKNOWN = "unknown"
BATCH_SIZE = 10_000
# The journal of a publish in progress, beside the store (tasks/publishing/transaction.py).
JOURNAL_NAME = ".publish-journal.json"

_LINEAGE_DDL = ",\n    ".join(f"{f} TEXT NOT NULL" for f in LINEAGE_FIELDS)
_INTERVAL_DDL = ",\n    ".join(f"{c} REAL" for c in INTERVAL_COLUMNS)
# Written for SQLite (whose files keep exactly this DDL); _ddl() adapts it to PostgreSQL.
_SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS runs (
    run_key TEXT PRIMARY KEY,
    {_LINEAGE_DDL},
    last_published_at TEXT NOT NULL,
    publish_seq INTEGER NOT NULL UNIQUE,
    n_rows INTEGER NOT NULL
)""",
    f"""CREATE TABLE IF NOT EXISTS forecasts (
    run_key TEXT NOT NULL,
    {SERIES_ID} TEXT NOT NULL,
    {TIMESTAMP} TEXT NOT NULL,
    {HORIZON_STEP} INTEGER NOT NULL,
    {FORECAST} REAL NOT NULL,
    {_INTERVAL_DDL},
    {MODEL} TEXT NOT NULL DEFAULT '{DEFAULT_MODEL}',
    {REASON} TEXT NOT NULL DEFAULT '{UNKNOWN}',
    {_LINEAGE_DDL},
    UNIQUE (run_key, {SERIES_ID}, {TIMESTAMP})
)""",
    f"""CREATE TABLE IF NOT EXISTS stale_series (
    run_key TEXT NOT NULL,
    {SERIES_ID} TEXT NOT NULL,
    source_run TEXT NOT NULL,
    PRIMARY KEY (run_key, {SERIES_ID})
)""",
    f"""CREATE VIEW current_forecasts AS
SELECT {", ".join(ROW_COLUMNS)}, 0 AS {STALE} FROM forecasts
WHERE run_key = (SELECT run_key FROM runs ORDER BY publish_seq DESC LIMIT 1)
UNION ALL
SELECT {", ".join(f"f.{c}" for c in ROW_COLUMNS)}, 1 AS {STALE} FROM forecasts AS f
JOIN stale_series AS s ON f.run_key = s.source_run AND f.{SERIES_ID} = s.{SERIES_ID}
WHERE s.run_key = (SELECT run_key FROM runs ORDER BY publish_seq DESC LIMIT 1)""",
)

_ROW_SCHEMA = {
    "run_key": pl.String,
    SERIES_ID: pl.String,
    TIMESTAMP: pl.String,
    HORIZON_STEP: pl.Int64,
    FORECAST: pl.Float64,
    **dict.fromkeys(INTERVAL_COLUMNS, pl.Float64),
    MODEL: pl.String,
    REASON: pl.String,
    **dict.fromkeys(LINEAGE_FIELDS, pl.String),
    STALE: pl.Int64,
}
_RUN_SCHEMA = {
    "run_key": pl.String,
    **dict.fromkeys(LINEAGE_FIELDS, pl.String),
    "last_published_at": pl.String,
    "publish_seq": pl.Int64,
    "n_rows": pl.Int64,
}


def _ddl(statement: str, dialect: str) -> str:
    # PostgreSQL's REAL is 4 bytes; SQLite's REAL is its DOUBLE PRECISION.
    return statement if dialect == "sqlite" else statement.replace(" REAL", " DOUBLE PRECISION")


def has_table(conn: Connection, name: str) -> bool:
    return sa.inspect(conn).has_table(name)


def component_version(conn: Connection, component: str) -> int:
    """The schema version `component` recorded in `schema_versions` (0: none yet)."""
    if not has_table(conn, "schema_versions"):
        return 0
    sql = sa.text("SELECT version FROM schema_versions WHERE component = :c")
    return conn.execute(sql, {"c": component}).scalar() or 0


def set_component_version(conn: Connection, component: str, version: int) -> None:
    """Record `component`'s schema version in `schema_versions` (the store's on a server, the
    monitor tables' on every backend: tasks/monitoring/store.py)."""
    conn.exec_driver_sql(
        "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER)"
    )
    conn.execute(
        sa.text(
            "INSERT INTO schema_versions (component, version) VALUES (:c, :v) "
            "ON CONFLICT (component) DO UPDATE SET version = excluded.version"
        ),
        {"c": component, "v": version},
    )


def _version(conn: Connection) -> int:
    if conn.dialect.name == "sqlite":
        return conn.exec_driver_sql("PRAGMA user_version").scalar()
    return component_version(conn, "store")


def _set_version(conn: Connection, version: int) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA user_version = {version}")
        return
    set_component_version(conn, "store", version)


def _migrate_v1(conn: Connection) -> None:
    """Version 1 -> 2: add the interval columns (NULL for the old rows) and rebuild the view."""
    for column in INTERVAL_COLUMNS:
        conn.exec_driver_sql(f"ALTER TABLE forecasts ADD COLUMN {column} REAL")
    conn.exec_driver_sql("DROP VIEW IF EXISTS current_forecasts")


def _columns(conn: Connection, table: str) -> set[str]:
    """Column names of a table or view (empty when it does not exist)."""
    try:
        return {c["name"] for c in sa.inspect(conn).get_columns(table)}
    except sa.exc.NoSuchTableError:
        return set()


def _add_lineage_columns(conn: Connection) -> None:
    """Version <= 5 -> 6: every LINEAGE_FIELDS column runs or forecasts lacks is added (UNKNOWN
    on the old rows) and the view rebuilt with it. By name, not by version: a lineage field
    added later is migrated by the same code."""
    for table in ("runs", "forecasts"):
        for name in (f for f in LINEAGE_FIELDS if f not in _columns(conn, table)):
            conn.exec_driver_sql(
                f"ALTER TABLE {table} ADD COLUMN {name} TEXT NOT NULL DEFAULT '{UNKNOWN}'"
            )
    conn.exec_driver_sql("DROP VIEW IF EXISTS current_forecasts")


def _add_reason_column(conn: Connection) -> None:
    """Version <= 6 -> 7: the REASON column (UNKNOWN on the old rows: why their model was
    published was not recorded) and the view rebuilt with it."""
    if REASON not in _columns(conn, "forecasts"):
        conn.exec_driver_sql(
            f"ALTER TABLE forecasts ADD COLUMN {REASON} TEXT NOT NULL DEFAULT '{UNKNOWN}'"
        )
    conn.exec_driver_sql("DROP VIEW IF EXISTS current_forecasts")


def _ensure_schema(conn: Connection) -> None:
    version = _version(conn)
    if version not in (0, 1, 2, 3, 4, 5, 6, SCHEMA_VERSION):
        raise ValueError(
            f"forecast store has schema version {version}, this code writes "
            f"{SCHEMA_VERSION}: refusing to write to it"
        )
    # Versions 1-3 exist only as SQLite files (a server store starts at 4).
    if version == 1:
        _migrate_v1(conn)
    if version == 2:
        conn.exec_driver_sql("DROP VIEW IF EXISTS current_forecasts")  # rebuilt with STALE
    if version in (1, 2, 3):
        # Every row stored before version 4 was the LSTM's; the view is rebuilt with MODEL.
        conn.exec_driver_sql(
            f"ALTER TABLE forecasts ADD COLUMN {MODEL} TEXT NOT NULL DEFAULT '{DEFAULT_MODEL}'"
        )
        conn.exec_driver_sql("DROP VIEW IF EXISTS current_forecasts")
    if version in (1, 2, 3, 4, 5):
        _add_lineage_columns(conn)
    if version in (1, 2, 3, 4, 5, 6):
        _add_reason_column(conn)
    *tables, view = _SCHEMA
    for statement in tables:
        conn.exec_driver_sql(_ddl(statement, conn.dialect.name))
    if "current_forecasts" not in sa.inspect(conn).get_view_names():
        conn.exec_driver_sql(view)
    if version != SCHEMA_VERSION:
        _set_version(conn, SCHEMA_VERSION)
