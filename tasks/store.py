"""The published-forecasts store: one SQLite file holding every published run, plus a Parquet
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

Crash safety: a publish copies the store to a temp file beside it and writes there in one SQLite
transaction; the export is written from that temp store's view. Both (and whatever else the
publish writes: the champion) are then renamed into place as one unit (tasks/transaction.py):
a failure before the journal leaves every file untouched byte for byte, a kill after it is
rolled forward at the next start, so the export never shows another run than the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import polars as pl

from tasks.columns import SERIES_ID, TIMESTAMP
from tasks.lineage import LINEAGE_FIELDS
from tasks.transaction import Transaction

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
# rows (an older store is migrated in place, inside the publish's transaction on the temp copy).
SCHEMA_VERSION = 5
# What an older store's rows and runs hold for a lineage field added since they were written.
UNKNOWN = "unknown"
BATCH_SIZE = 10_000
# The journal of a publish in progress, beside the store (tasks/transaction.py).
JOURNAL_NAME = ".publish-journal.json"

_LINEAGE_DDL = ",\n    ".join(f"{f} TEXT NOT NULL" for f in LINEAGE_FIELDS)
_INTERVAL_DDL = ",\n    ".join(f"{c} REAL" for c in INTERVAL_COLUMNS)
# Separate statements: executescript() would COMMIT the open transaction before running them.
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
    f"""CREATE VIEW IF NOT EXISTS current_forecasts AS
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


# ---------------------------------------------------------------- sqlite
def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so the whole publish is one unit.
    conn = sqlite3.connect(path, isolation_level=None)
    # DELETE journal: no -wal/-shm files beside the store, and the journal is gone after commit.
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _connect_ro(path: Path) -> sqlite3.Connection:
    path = Path(path)
    if not path.is_file():
        # sqlite3.connect would create an empty database here: say what is missing instead.
        raise FileNotFoundError(f"no forecast store at {path} (nothing published yet?)")
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Version 1 -> 2: add the interval columns (NULL for the old rows) and rebuild the view."""
    for column in INTERVAL_COLUMNS:
        conn.execute(f"ALTER TABLE forecasts ADD COLUMN {column} REAL")
    conn.execute("DROP VIEW IF EXISTS current_forecasts")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """Column names of a table or view (empty when it does not exist)."""
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _add_lineage_columns(conn: sqlite3.Connection) -> None:
    """Version <= 4 -> 5: every LINEAGE_FIELDS column runs or forecasts lacks is added (UNKNOWN
    on the old rows) and the view rebuilt with it. By name, not by version: a lineage field
    added later is migrated by the same code."""
    for table in ("runs", "forecasts"):
        for name in (f for f in LINEAGE_FIELDS if f not in _columns(conn, table)):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} TEXT NOT NULL DEFAULT '{UNKNOWN}'")
    conn.execute("DROP VIEW IF EXISTS current_forecasts")


def _ensure_schema(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, 1, 2, 3, 4, SCHEMA_VERSION):
        raise ValueError(
            f"forecast store has schema version {version}, this code writes "
            f"{SCHEMA_VERSION}: refusing to write to it"
        )
    if version == 1:
        _migrate_v1(conn)
    if version == 2:
        conn.execute("DROP VIEW IF EXISTS current_forecasts")  # rebuilt with STALE below
    if version in (1, 2, 3):
        # Every row stored before version 4 was the LSTM's; the view is rebuilt with MODEL.
        conn.execute(
            f"ALTER TABLE forecasts ADD COLUMN {MODEL} TEXT NOT NULL DEFAULT '{DEFAULT_MODEL}'"
        )
        conn.execute("DROP VIEW IF EXISTS current_forecasts")
    if version in (1, 2, 3, 4):
        _add_lineage_columns(conn)
    for statement in _SCHEMA:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _insert_batch(conn: sqlite3.Connection, batch: Sequence[tuple]) -> None:
    placeholders = ", ".join("?" * len(ROW_COLUMNS))
    conn.executemany(
        f"INSERT OR IGNORE INTO forecasts ({', '.join(ROW_COLUMNS)}) VALUES ({placeholders})",
        batch,
    )


def _insert_rows(conn: sqlite3.Connection, rows: pl.DataFrame) -> int:
    """Insert rows not yet stored; returns how many were new."""
    before = conn.total_changes
    for batch in rows.iter_slices(BATCH_SIZE):
        _insert_batch(conn, batch.rows())
    return conn.total_changes - before


def _keep_stale(conn: sqlite3.Connection, key: str, keep: Sequence[str]) -> int:
    """Before the run `key` becomes the latest: the series of `keep` that it has no rows for
    keep the rows they show in the current view (their own, or rows they already kept), marked
    stale. Returns how many series are kept."""
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS keep ({SERIES_ID} TEXT PRIMARY KEY)")
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS kept ({SERIES_ID} TEXT, source_run TEXT)")
    conn.execute("DELETE FROM temp.keep")
    conn.execute("DELETE FROM temp.kept")
    conn.executemany("INSERT OR IGNORE INTO temp.keep VALUES (?)", [(str(k),) for k in keep])
    # Read from the view before touching stale_series: republishing the latest run must find
    # the rows it keeps already.
    conn.execute(
        f"INSERT INTO temp.kept SELECT DISTINCT {SERIES_ID}, run_key FROM current_forecasts "
        f"WHERE {SERIES_ID} IN (SELECT {SERIES_ID} FROM temp.keep) AND {SERIES_ID} NOT IN "
        f"(SELECT {SERIES_ID} FROM forecasts WHERE run_key = ?)",
        (key,),
    )
    conn.execute("DELETE FROM stale_series WHERE run_key = ?", (key,))
    conn.execute(
        f"INSERT INTO stale_series (run_key, {SERIES_ID}, source_run) "
        f"SELECT ?, {SERIES_ID}, source_run FROM temp.kept",
        (key,),
    )
    return conn.execute("SELECT COUNT(*) FROM temp.kept").fetchone()[0]


def _record_run(conn: sqlite3.Connection, key: str, lineage: Mapping[str, str]) -> None:
    """Add the run, or mark an existing one as the latest published (the view follows it)."""
    seq = conn.execute("SELECT COALESCE(MAX(publish_seq), 0) + 1 FROM runs").fetchone()[0]
    n_rows = conn.execute("SELECT COUNT(*) FROM forecasts WHERE run_key = ?", (key,)).fetchone()[0]
    values = (key, *(str(lineage[f]) for f in LINEAGE_FIELDS), lineage["published_at"], seq, n_rows)
    # On conflict the first publish's lineage (published_at, flow_run_id) is kept: it matches
    # the stored rows, which INSERT OR IGNORE also left as they were.
    conn.execute(
        f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))}) "
        "ON CONFLICT(run_key) DO UPDATE SET last_published_at = excluded.last_published_at, "
        "publish_seq = excluded.publish_seq, n_rows = excluded.n_rows",
        values,
    )


def _write_store(
    path: Path, rows: pl.DataFrame, key: str, lineage: Mapping[str, str], keep: Sequence[str] = ()
) -> dict:
    conn = _connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            _ensure_schema(conn)
            inserted = _insert_rows(conn, rows)
            stale = _keep_stale(conn, key, keep)
            _record_run(conn, key, lineage)
            runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return {
        "rows_inserted": inserted,
        "rows_existing": rows.height - inserted,
        "stale_series": stale,
        "runs_in_store": runs,
    }


def _frame(
    conn: sqlite3.Connection, sql: str, schema: Mapping[str, type[pl.DataType]]
) -> pl.DataFrame:
    cursor = conn.execute(sql)
    parts = [pl.DataFrame(schema=dict(schema))]
    while batch := cursor.fetchmany(BATCH_SIZE):  # a batch of Python tuples at a time
        parts.append(pl.DataFrame(batch, schema=dict(schema), orient="row"))
    return pl.concat(parts)


def _read_view(path: Path) -> pl.DataFrame:
    conn = _connect_ro(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
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
    finally:
        conn.close()
    return frame.with_columns(
        pl.col(TIMESTAMP).str.to_datetime(TS_FORMAT, time_unit="us", strict=True),
        pl.col(STALE).cast(pl.Boolean),
    )


# ---------------------------------------------------------------- files
@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Serialise publishers on this machine: two copy-and-replace writers would lose a run.

    flock on the directory itself, so no lock file is left beside the store.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def journal_for(store: str | Path) -> Path:
    """Where a publish into `store`'s directory keeps its journal (tasks/transaction.py)."""
    return Path(store).parent / JOURNAL_NAME


def stage_store(
    txn: Transaction,
    forecasts: pl.DataFrame,
    lineage: Mapping[str, str],
    store: str | Path,
    keep: Sequence[str] = (),
) -> tuple[dict, pl.DataFrame]:
    """Write the new store (the old one + this run, or the identical run marked latest) to a
    temp file of `txn`; returns its summary and its current view (what the exports get).
    `keep`: series (quarantined by ingest) whose current forecasts stay in the current view,
    marked stale, when this run has none for them."""
    store = Path(store)
    # The caller may name the run (a rollback republishing a stored run keeps its key).
    key = lineage.get("run_key") or run_key(lineage)
    rows = _rows(forecasts, lineage, key)

    def fill(tmp: Path) -> tuple[dict, pl.DataFrame]:
        if store.exists():
            shutil.copyfile(store, tmp)
        counts = _write_store(tmp, rows, key, lineage, keep)
        return counts, _read_view(tmp)

    counts, current = txn.write(store, fill)
    return {"run_key": key, **counts, "store": str(store)}, current


def stage_export(txn: Transaction, current: pl.DataFrame, export: str | Path) -> None:
    """Write the Parquet export of the current forecasts to a temp file of `txn`."""
    txn.write(export, current.write_parquet)


def publish_forecasts(
    forecasts: pl.DataFrame,
    lineage: Mapping[str, str],
    store: str | Path,
    export: str | Path,
    keep: Sequence[str] = (),
    also: Sequence[tuple[str | Path, Callable[[Path], object]]] = (),
    journal: str | Path | None = None,
) -> dict:
    """Add `forecasts` (series_id, timestamp, horizon_step, forecast, optionally lo_80, hi_80,
    lo_95, hi_95) with `lineage` to the store and rewrite the export with the current
    forecasts, and write `also` ((path, fill(temp)) pairs): all of them or none
    (tasks/transaction.py). Idempotent for the same inputs. `keep`: see stage_store."""
    store = Path(store)
    with directory_lock(store.parent), Transaction(journal or journal_for(store)) as txn:
        summary, current = stage_store(txn, forecasts, lineage, store, keep)
        stage_export(txn, current, export)
        for path, fill in also:
            txn.write(path, fill)
        txn.commit()
    return {**summary, "export": str(export)}


def read_current(store: str | Path) -> pl.DataFrame:
    """The current forecasts (the most recently published run, and the stale rows it keeps),
    sorted by series and time."""
    return _read_view(Path(store))


def list_runs(store: str | Path) -> pl.DataFrame:
    """Every run in the store, oldest publish first."""
    conn = _connect_ro(Path(store))
    try:
        have = _columns(conn, "runs")  # an older store: UNKNOWN for lineage fields it lacks
        columns = [c if c in have or not have else f"'{UNKNOWN}' AS {c}" for c in RUN_COLUMNS]
        return _frame(
            conn, f"SELECT {', '.join(columns)} FROM runs ORDER BY publish_seq", _RUN_SCHEMA
        )
    finally:
        conn.close()
