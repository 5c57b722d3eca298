"""The published-forecasts store: every published run in one database (SQLAlchemy Core; an
embedded SQLite file by default, PostgreSQL through `publish.url`, tasks/db.py), plus a Parquet
export of the current forecasts.

Layout:
  runs               one row per run (run_key = md5 of data, params and model md5s), its lineage,
                     row count, first and last publish time and a publish sequence number
  forecasts          every forecast row ever published, each with its prediction intervals
                     (lo_80, hi_80, lo_95, hi_95; NULL where a level was not calibrated) and
                     its run's lineage; UNIQUE (run_key, series_id, timestamp), so
                     republishing adds nothing
  stale_series       per run, the series it had no forecasts for (quarantined by ingest) whose
                     last published forecasts it keeps showing, and the run they come from
  current_forecasts  view: the rows of the most recently published run, plus the rows its
                     stale series keep from earlier runs (column `stale` = 1 on those)

Writes happen in place, in one database transaction (no copy of the store: a publish costs the
same however much history the store holds). The transaction stays open while the export and the
other files of the publish are staged; then the journal is written (naming the run and its
publish sequence number), the database COMMITs (the commit point), and the files are renamed
(tasks/transaction.py). A crash before the COMMIT leaves the database as it was (the database
rolls back; the next start discards the temps); after it, the next start renames the files, so
the export never shows another run than the store. Readers see the previous run or the new one,
never a part: the view is read in one transaction (SQLite: a shared lock; PostgreSQL: one
REPEATABLE READ snapshot). Publishers serialise on BEGIN IMMEDIATE (SQLite) or a transaction
advisory lock (PostgreSQL).

Schema versions: the SQLite file keeps its version in PRAGMA user_version as always (files
of versions 1-3 are migrated in place by the next publish); a server keeps it in the table
`schema_versions` (component 'store'), which the monitor's tables share.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tasks.columns import SERIES_ID, TIMESTAMP
from tasks.db import PG_LOCK_KEY, Database, NoStore, locate
from tasks.faults import fault_point
from tasks.io import write_json_to
from tasks.lineage import LINEAGE_FIELDS
from tasks.transaction import DatabaseWrite, Transaction

HORIZON_STEP = "horizon_step"
FORECAST = "forecast"
FORECAST_COLUMNS = (SERIES_ID, TIMESTAMP, HORIZON_STEP, FORECAST)
# Prediction-interval bounds (optional in a publish; NULL when absent), innermost level first.
INTERVAL_LEVELS = (80, 95)
INTERVAL_COLUMNS = tuple(f"{b}_{lv}" for lv in INTERVAL_LEVELS for b in ("lo", "hi"))
# Which model produced a row (tasks/selection.py: the LSTM or a baseline); optional in a
# publish, "lstm" when absent (and for every row stored before schema version 4).
MODEL = "model"
DEFAULT_MODEL = "lstm"
# Columns of a stored forecast row, in this order; the view and export add STALE.
ROW_COLUMNS = ("run_key", *FORECAST_COLUMNS, *INTERVAL_COLUMNS, MODEL, *LINEAGE_FIELDS)
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
# 6: + `covariates` in the lineage, migrated by the same code.
SCHEMA_VERSION = 6
# What an older store's rows and runs hold for a lineage field added since they were written.
UNKNOWN = "unknown"
BATCH_SIZE = 10_000
# The journal of a publish in progress, beside the store (tasks/transaction.py).
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


# ---------------------------------------------------------------- inputs
def run_key(lineage: Mapping[str, str]) -> str:
    """Identity of a run: the same data, params and model give the same key, whatever the time.
    The model is identified by its weights and config (`model_id`, tasks/model_id.py) when the
    lineage has it: two saves of the same weights differ in their file's bytes (date_saved)."""
    model = lineage.get("model_id") or lineage["model_md5"]
    parts = (lineage["data_md5"], lineage["params_md5"], model)
    return hashlib.md5(":".join(parts).encode()).hexdigest()


def _check_lineage(lineage: Mapping[str, str]) -> None:
    missing = [f for f in LINEAGE_FIELDS if not lineage.get(f)]
    if missing:
        raise ValueError(f"lineage lacks {missing}: every stored row must say where it came from")


def _check_forecasts(forecasts: pl.DataFrame) -> None:
    missing = [c for c in FORECAST_COLUMNS if c not in forecasts.columns]
    if missing:
        raise ValueError(f"forecasts lack columns {missing} (have {forecasts.columns})")
    if forecasts.height == 0:
        raise ValueError("forecasts are empty: nothing to publish")
    nulls = {c: n for c in FORECAST_COLUMNS if (n := forecasts[c].null_count())}
    if nulls:
        raise ValueError(f"forecasts hold nulls: {nulls}")
    if not isinstance(forecasts[TIMESTAMP].dtype, pl.Datetime | pl.Date):
        raise ValueError(
            f"forecasts.{TIMESTAMP} must be Datetime, got {forecasts[TIMESTAMP].dtype}"
        )
    bad = forecasts.filter(~pl.col(FORECAST).cast(pl.Float64).is_finite()).height
    if bad:
        raise ValueError(f"forecasts hold {bad} non-finite values (NaN/inf)")
    if forecasts[HORIZON_STEP].min() < 1:  # type: ignore[operator]
        raise ValueError(f"{HORIZON_STEP} must start at 1")
    dupes = forecasts.height - forecasts.select(SERIES_ID, TIMESTAMP).n_unique()
    if dupes:
        # INSERT OR IGNORE would silently keep one of them: refuse instead.
        raise ValueError(f"forecasts hold {dupes} duplicate ({SERIES_ID}, {TIMESTAMP}) rows")
    _check_intervals(forecasts)


def _check_intervals(forecasts: pl.DataFrame) -> None:
    """Bounds come in pairs, are finite, hold the forecast, and nest (80 % inside 95 %)."""
    present = [lv for lv in INTERVAL_LEVELS if f"lo_{lv}" in forecasts.columns]
    for lv in INTERVAL_LEVELS:
        if (f"lo_{lv}" in forecasts.columns) != (f"hi_{lv}" in forecasts.columns):
            raise ValueError(f"forecasts hold only one of lo_{lv} / hi_{lv}")
    f = pl.col(FORECAST)
    for lv in present:
        lo, hi = pl.col(f"lo_{lv}").cast(pl.Float64), pl.col(f"hi_{lv}").cast(pl.Float64)
        nulls = forecasts.select(lo.null_count() + hi.null_count()).item()
        if nulls:
            raise ValueError(f"forecasts hold {nulls} null lo_{lv}/hi_{lv} bounds")
        bad = forecasts.filter(~lo.is_finite() | ~hi.is_finite()).height
        if bad:
            raise ValueError(f"forecasts hold {bad} non-finite lo_{lv}/hi_{lv} bounds")
        outside = forecasts.filter((lo > f) | (hi < f)).height
        if outside:
            raise ValueError(f"{outside} forecasts lie outside their lo_{lv}..hi_{lv} interval")
    for inner, outer in zip(present, present[1:], strict=False):
        wider = (pl.col(f"lo_{outer}") <= pl.col(f"lo_{inner}")) & (
            pl.col(f"hi_{outer}") >= pl.col(f"hi_{inner}")
        )
        bad = forecasts.filter(~wider).height
        if bad:
            raise ValueError(f"{bad} {outer} % intervals do not contain the {inner} % ones")


def _iso(ts: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        # Store UTC wall time so every row compares on one clock.
        ts = ts.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return ts.cast(pl.Datetime("us")).dt.strftime(TS_FORMAT)


def _rows(forecasts: pl.DataFrame, lineage: Mapping[str, str], key: str) -> pl.DataFrame:
    """Validated rows in ROW_COLUMNS order (turned into Python tuples a batch at a time when
    inserted: 240k rows as tuples at once held 400 MB)."""
    _check_lineage(lineage)
    _check_forecasts(forecasts)
    frame = forecasts.select(
        pl.lit(key).alias("run_key"),
        pl.col(SERIES_ID).cast(pl.String),
        _iso(pl.col(TIMESTAMP), forecasts[TIMESTAMP].dtype),
        pl.col(HORIZON_STEP).cast(pl.Int64),
        pl.col(FORECAST).cast(pl.Float64),
        *(
            (pl.col(c) if c in forecasts.columns else pl.lit(None)).cast(pl.Float64).alias(c)
            for c in INTERVAL_COLUMNS
        ),
        (pl.col(MODEL) if MODEL in forecasts.columns else pl.lit(DEFAULT_MODEL))
        .cast(pl.String)
        .alias(MODEL),
        *(pl.lit(str(lineage[f])).alias(f) for f in LINEAGE_FIELDS),
    )
    return frame


# ---------------------------------------------------------------- database
# exec_driver_sql passes parameters to the driver as they are: its own placeholder.
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": "?"}


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
    monitor tables' on every backend: tasks/monitor_store.py)."""
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


def _ensure_schema(conn: Connection) -> None:
    version = _version(conn)
    if version not in (0, 1, 2, 3, 4, 5, SCHEMA_VERSION):
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
    *tables, view = _SCHEMA
    for statement in tables:
        conn.exec_driver_sql(_ddl(statement, conn.dialect.name))
    if "current_forecasts" not in sa.inspect(conn).get_view_names():
        conn.exec_driver_sql(view)
    if version != SCHEMA_VERSION:
        _set_version(conn, SCHEMA_VERSION)


def _insert_batch(conn: Connection, batch: Sequence[tuple]) -> None:
    placeholders = ", ".join([_PLACEHOLDER[conn.dialect.paramstyle]] * len(ROW_COLUMNS))
    # ON CONFLICT DO NOTHING (SQLite and PostgreSQL alike): a row already stored stays as it was.
    conn.exec_driver_sql(
        f"INSERT INTO forecasts ({', '.join(ROW_COLUMNS)}) VALUES ({placeholders}) "
        "ON CONFLICT DO NOTHING",
        list(batch),
    )


def _run_rows(conn: Connection, key: str) -> int:
    sql = sa.text("SELECT COUNT(*) FROM forecasts WHERE run_key = :k")
    return conn.execute(sql, {"k": key}).scalar()


def _copy_rows(conn: Connection, rows: pl.DataFrame) -> None:
    """PostgreSQL: COPY into a temporary table (dropped at commit), then one INSERT ... SELECT
    ON CONFLICT DO NOTHING: a round trip per batch, not per row."""
    columns = ", ".join(ROW_COLUMNS)
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE incoming ON COMMIT DROP AS SELECT {columns} FROM forecasts WITH NO DATA"
    )
    cursor = conn.connection.cursor()
    try:
        # CSV from polars a batch at a time (an unquoted empty field is NULL in CSV COPY).
        with cursor.copy(f"COPY incoming ({columns}) FROM STDIN (FORMAT csv)") as copy:
            for batch in rows.iter_slices(BATCH_SIZE * 10):
                copy.write(batch.write_csv(include_header=False, float_precision=None))
    finally:
        cursor.close()
    conn.exec_driver_sql(
        f"INSERT INTO forecasts ({columns}) SELECT {columns} FROM incoming ON CONFLICT DO NOTHING"
    )
    conn.exec_driver_sql("DROP TABLE incoming")


def _insert_rows(conn: Connection, rows: pl.DataFrame, key: str) -> int:
    """Insert rows not yet stored; returns how many were new (counted through the unique index
    on run_key, series_id, timestamp: drivers' executemany row counts are not reliable)."""
    before = _run_rows(conn, key)
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        _copy_rows(conn, rows)
    else:
        for batch in rows.iter_slices(BATCH_SIZE):
            _insert_batch(conn, batch.rows())
    return _run_rows(conn, key) - before


def _keep_stale(conn: Connection, key: str, keep: Sequence[str]) -> int:
    """Before the run `key` becomes the latest: the series of `keep` that it has no rows for
    keep the rows they show in the current view (their own, or rows they already kept), marked
    stale. Returns how many series are kept."""
    kept: list[tuple[str, str]] = []
    if keep:
        keep_set = {str(k) for k in keep}
        fresh = {
            r[0]
            for r in conn.execute(
                sa.text(f"SELECT DISTINCT {SERIES_ID} FROM forecasts WHERE run_key = :k"),
                {"k": key},
            )
        }
        # Read from the view before touching stale_series: republishing the latest run must
        # find the rows it keeps already.
        shown = conn.exec_driver_sql(
            f"SELECT DISTINCT {SERIES_ID}, run_key FROM current_forecasts"
        ).all()
        kept = [(s, src) for s, src in shown if s in keep_set and s not in fresh]
    conn.execute(sa.text("DELETE FROM stale_series WHERE run_key = :k"), {"k": key})
    if kept:
        conn.execute(
            sa.text(
                f"INSERT INTO stale_series (run_key, {SERIES_ID}, source_run) VALUES (:k, :s, :src)"
            ),
            [{"k": key, "s": s, "src": src} for s, src in kept],
        )
    return len(kept)


def _record_run(conn: Connection, key: str, lineage: Mapping[str, str]) -> int:
    """Add the run, or mark an existing one as the latest published (the view follows it);
    returns its publish sequence number."""
    seq = conn.exec_driver_sql("SELECT COALESCE(MAX(publish_seq), 0) + 1 FROM runs").scalar()
    values = {
        "run_key": key,
        **{f: str(lineage[f]) for f in LINEAGE_FIELDS},
        "last_published_at": lineage["published_at"],
        "publish_seq": seq,
        "n_rows": _run_rows(conn, key),
    }
    # On conflict the first publish's lineage (published_at, flow_run_id) is kept: it matches
    # the stored rows, which ON CONFLICT DO NOTHING also left as they were.
    conn.execute(
        sa.text(
            f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) "
            f"VALUES ({', '.join(':' + c for c in RUN_COLUMNS)}) "
            "ON CONFLICT (run_key) DO UPDATE SET last_published_at = excluded.last_published_at, "
            "publish_seq = excluded.publish_seq, n_rows = excluded.n_rows"
        ),
        values,
    )
    return seq


def _write(
    conn: Connection, rows: pl.DataFrame, key: str, lineage: Mapping[str, str], keep: Sequence[str]
) -> tuple[dict, int]:
    _ensure_schema(conn)
    inserted = _insert_rows(conn, rows, key)
    fault_point("publish.db.inserted")  # rows written, not committed
    stale = _keep_stale(conn, key, keep)
    seq = _record_run(conn, key, lineage)
    runs = conn.exec_driver_sql("SELECT COUNT(*) FROM runs").scalar()
    counts = {
        "rows_inserted": inserted,
        "rows_existing": rows.height - inserted,
        "stale_series": stale,
        "runs_in_store": runs,
    }
    return counts, seq


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
    # nothing stale (versions 1 and 2) and UNKNOWN for lineage fields it lacks (<= 4).
    columns = [
        f"NULL AS {c}"
        if version < 2 and c in INTERVAL_COLUMNS
        else f"'{DEFAULT_MODEL}' AS {c}"
        if version < 4 and c == MODEL
        else f"'{UNKNOWN}' AS {c}"
        if c in LINEAGE_FIELDS and view and c not in view
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


# ---------------------------------------------------------------- files
@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Serialise publishers on this machine (the files they rename; the database serialises
    its own writers).

    flock on the directory itself, so no lock file is left beside the store.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def journal_for(store: str | Path | Database) -> Path:
    """Where a publish into a SQLite file's directory keeps its journal
    (tasks/transaction.py); a server store has no directory: the caller names the journal."""
    db = locate(store)
    if db.file is None:
        raise ValueError(f"a publish into {db.masked} needs a journal path (publish_journal)")
    return db.file.parent / JOURNAL_NAME


def _open_write(db: Database) -> tuple[Connection, sa.RootTransaction]:
    if db.file is not None:
        db.file.parent.mkdir(parents=True, exist_ok=True)
    conn = db.engine().connect()
    try:
        trans = conn.begin()
        if conn.dialect.name == "postgresql":
            # Publishers on other machines wait here until this transaction ends.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
    except BaseException:
        conn.close()
        raise
    return conn, trans


def _stage(
    txn: Transaction,
    db: Database,
    write: Callable[[Connection], tuple[dict, str, int]],
) -> tuple[dict, pl.DataFrame]:
    """Run write(conn) -> (counts, run key, publish_seq) in a new database transaction that
    `txn` commits (or rolls back) with the publish's files; returns the summary and the current
    view as it will be after the commit (this transaction sees its own writes)."""
    from tasks.transaction import _is_io

    created = db.file is not None and not db.file.exists()
    conn: Connection | None = None

    def rollback() -> None:
        try:
            if trans.is_active:
                trans.rollback()
        finally:
            conn.close()
            if created:  # a first publish that failed leaves no empty store behind
                for leftover in (db.file, Path(f"{db.file}-journal")):
                    leftover.unlink(missing_ok=True)

    def commit() -> None:
        try:
            trans.commit()
        finally:
            conn.close()

    try:
        conn, trans = _open_write(db)
        counts, key, seq = write(conn)
        current = _read_view(conn)
    except BaseException as err:
        if conn is not None:
            rollback()
        elif created and db.file is not None:
            db.file.unlink(missing_ok=True)
        if isinstance(err, Exception) and _is_io(err):
            raise txn.failed(db.file or db.masked, err) from err
        raise
    marker = {
        "store": db.masked,
        "url": db.template,  # as configured: ${VAR} unexpanded, never a password
        "file": str(db.file) if db.file is not None else None,
        "run_key": key,
        "publish_seq": seq,
    }
    txn.bind_database(DatabaseWrite(marker=marker, commit=commit, rollback=rollback))
    return {"run_key": key, **counts, "store": db.masked}, current


def stage_store(
    txn: Transaction,
    forecasts: pl.DataFrame,
    lineage: Mapping[str, str],
    store: str | Path | Database,
    keep: Sequence[str] = (),
) -> tuple[dict, pl.DataFrame]:
    """Write this run into the store in one open database transaction that `txn` commits (or
    rolls back) with the publish's files; returns its summary and the current view as it will
    be after the commit (what the exports get). `keep`: series (quarantined by ingest) whose
    current forecasts stay in the current view, marked stale, when this run has none for them."""
    # The caller may name the run (a rollback republishing a stored run keeps its key).
    key = lineage.get("run_key") or run_key(lineage)
    rows = _rows(forecasts, lineage, key)

    def write(conn: Connection) -> tuple[dict, str, int]:
        counts, seq = _write(conn, rows, key, lineage, keep)
        return counts, key, seq

    return _stage(txn, locate(store), write)


def stage_republish(
    txn: Transaction, store: str | Path | Database, key: str, published_at: str
) -> tuple[dict, pl.DataFrame]:
    """Make run `key`, already in the store, the current one again (a rollback): a new publish
    sequence number and last_published_at; its rows, lineage and stale series as stored."""

    def write(conn: Connection) -> tuple[dict, str, int]:
        found = conn.execute(
            sa.text(f"SELECT {', '.join(LINEAGE_FIELDS)} FROM runs WHERE run_key = :k"),
            {"k": key},
        ).first() if has_table(conn, "runs") else None  # fmt: skip
        if found is None:
            raise ValueError(f"run {key} is not in the store {locate(store).masked}")
        lineage = {**found._asdict(), "published_at": published_at}
        seq = _record_run(conn, key, lineage)
        runs = conn.exec_driver_sql("SELECT COUNT(*) FROM runs").scalar()
        counts = {"rows_inserted": 0, "rows_existing": _run_rows(conn, key),
                  "stale_series": 0, "runs_in_store": runs}  # fmt: skip
        return counts, key, seq

    return _stage(txn, locate(store), write)


def stage_export(txn: Transaction, current: pl.DataFrame, export: str | Path) -> None:
    """Write the Parquet export of the current forecasts to a temp file of `txn`."""
    txn.write(export, current.write_parquet)


def manifest(summary: Mapping, current: pl.DataFrame) -> dict:
    """What a publish into a server store wrote, as its DVC out: the run, the rows of the
    current view and their content hash (md5 of their CSV text), so `dvc status` changes
    exactly when the published forecasts do. No URL password (the store is masked)."""
    return {
        "store": summary["store"],
        "run_key": summary["run_key"],
        "rows": current.height,
        "content_md5": hashlib.md5(current.write_csv().encode()).hexdigest(),
    }


def publish_forecasts(
    forecasts: pl.DataFrame,
    lineage: Mapping[str, str],
    store: str | Path | Database,
    export: str | Path,
    keep: Sequence[str] = (),
    also: Sequence[tuple[str | Path, Callable[[Path], object]]] = (),
    journal: str | Path | None = None,
) -> dict:
    """Add `forecasts` (series_id, timestamp, horizon_step, forecast, optionally lo_80, hi_80,
    lo_95, hi_95) with `lineage` to the store and rewrite the export with the current
    forecasts, and write `also` ((path, fill(temp)) pairs): all of them or none
    (tasks/transaction.py). Idempotent for the same inputs. `keep`: see stage_store."""
    db = locate(store)
    # A server store's journal: beside the export (the files this machine renames).
    journal = Path(
        journal or (journal_for(db) if db.is_file else Path(export).parent / JOURNAL_NAME)
    )
    with directory_lock(journal.parent), Transaction(journal) as txn:
        summary, current = stage_store(txn, forecasts, lineage, db, keep)
        stage_export(txn, current, export)
        for path, fill in also:
            txn.write(path, fill)
        txn.commit()
    return {**summary, "export": str(export)}


def republish(
    store: str | Path | Database,
    key: str,
    export: str | Path,
    published_at: str,
    also: Sequence[tuple[str | Path, Callable[[Path], object]]] = (),
    journal: str | Path | None = None,
    manifest_path: str | Path | None = None,
) -> dict:
    """stage_republish, the export of the view it makes current, `also` and (for a server
    store) its manifest, all or nothing like publish_forecasts."""
    db = locate(store)
    journal = Path(
        journal or (journal_for(db) if db.is_file else Path(export).parent / JOURNAL_NAME)
    )
    with directory_lock(journal.parent), Transaction(journal) as txn:
        summary, current = stage_republish(txn, db, key, published_at)
        stage_export(txn, current, export)
        if manifest_path is not None:
            content = manifest(summary, current)
            txn.write(manifest_path, lambda tmp: write_json_to(tmp, content))
        for path, fill in also:
            txn.write(path, fill)
        txn.commit()
    return {**summary, "export": str(export), "current": current}


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
