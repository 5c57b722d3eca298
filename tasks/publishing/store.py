"""The published-forecasts store: every published run in one database (SQLAlchemy Core; an
embedded SQLite file by default, PostgreSQL through `publish.url`, tasks/publishing/db.py), plus a
Parquet export of the current forecasts.

Layout:
  runs               one row per run (run_key = md5 of data, params and model md5s), its lineage,
                     row count, first and last publish time and a publish sequence number
  forecasts          every forecast row ever published, each with its prediction intervals
                     (lo_80, hi_80, lo_95, hi_95; NULL where a level was not calibrated), the
                     model that produced it and why (`model`, `reason`) and its run's lineage;
                     UNIQUE (run_key, series_id, timestamp), so
                     republishing adds nothing
  stale_series       per run, the series it had no forecasts for (quarantined by ingest) whose
                     last published forecasts it keeps showing, and the run they come from
  current_forecasts  view: the rows of the most recently published run, plus the rows its
                     stale series keep from earlier runs (column `stale` = 1 on those)

Writes happen in place, in one database transaction (no copy of the store: a publish costs the
same however much history the store holds). The transaction stays open while the export and the
other files of the publish are staged; then the journal is written (naming the run and its
publish sequence number), the database COMMITs (the commit point), and the files are renamed
(tasks/publishing/transaction.py). A crash before the COMMIT leaves the database as it was (the
database rolls back; the next start discards the temps); after it, the next start renames the files,
so the export never shows another run than the store. Readers see the previous run or the new one,
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

from tasks.columns import SERIES_ID
from tasks.faults import fault_point
from tasks.io import write_json_to
from tasks.publishing.db import PG_LOCK_KEY, Database, locate
from tasks.publishing.lineage import LINEAGE_FIELDS

# Re-exported: readers and the publish's callers keep importing them from the store.
from tasks.publishing.store_read import _read_view, list_runs, read_current, reading  # noqa: F401
from tasks.publishing.store_rows import _rows, run_key  # noqa: F401

# What the store uses, and (FORECAST_COLUMNS, MODEL, STALE, TS_FORMAT, SCHEMA_VERSION, _version)
# what its callers keep importing from it.
from tasks.publishing.store_schema import (  # noqa: F401
    BATCH_SIZE,
    FORECAST_COLUMNS,
    INTERVAL_COLUMNS,
    JOURNAL_NAME,
    MODEL,
    ROW_COLUMNS,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    STALE,
    TS_FORMAT,
    _ensure_schema,
    _version,
    has_table,
)
from tasks.publishing.transaction import DatabaseWrite, Transaction

# ---------------------------------------------------------------- database
# exec_driver_sql passes parameters to the driver as they are: its own placeholder.
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": "?"}


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
    (tasks/publishing/transaction.py); a server store has no directory: the caller names the
    journal."""
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
    from tasks.publishing.transaction import _is_io

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
    (tasks/publishing/transaction.py). Idempotent for the same inputs. `keep`: see stage_store."""
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
