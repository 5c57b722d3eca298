"""The published-forecasts store: idempotent publishes, the current view, the export, crashes.

Every test taking `paths` runs twice: against the embedded SQLite file and against a real
PostgreSQL server the session starts (tests/pgserver.py), through the same calls; the tests of
SQLite files' own history (schema versions 1-4, PRAGMA user_version) and of full or read-only
disks take `file_paths`."""

from __future__ import annotations

import os
import re
import sqlite3
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from tasks.publishing import store as store_mod
from tasks.publishing.db import locate
from tasks.publishing.lineage import LINEAGE_FIELDS
from tasks.publishing.store import JOURNAL_NAME, list_runs, publish_forecasts, read_current, run_key
from tasks.publishing.transaction import PublishWriteError, recover
from tests.waits import HANG_S

H = 3


def _forecasts(offset: float = 0.0) -> pl.DataFrame:
    rows = [
        (sid, datetime(1961, month, 1), month, 100.0 * (i + 1) + month + offset)
        for i, sid in enumerate(("a", "b"))
        for month in range(1, H + 1)
    ]
    return pl.DataFrame(
        rows,
        schema={
            "series_id": pl.String,
            "timestamp": pl.Datetime("us"),
            "horizon_step": pl.Int64,
            "forecast": pl.Float64,
        },
        orient="row",
    )


def _lineage(model_md5: str = "m" * 32, published_at: str = "2024-01-01T00:00:00.000000Z"):
    return {
        "model_version": model_md5[:12],
        "git_commit": "c" * 40,
        "data_md5": "d" * 32,
        "params_md5": "p" * 32,
        "model_md5": model_md5,
        "flow_run_id": "none",
        "published_at": published_at,
        "trained_through": "1960-12-01T00:00:00",
        "covariates": '{"future":[],"past":[],"static":[]}',
    }


@pytest.fixture
def file_paths(tmp_path) -> tuple[Path, Path]:
    return tmp_path / "published" / "forecasts.sqlite", tmp_path / "published" / "forecasts.parquet"


@pytest.fixture(params=["sqlite", "postgresql"])
def paths(request, tmp_path) -> tuple[Path | str, Path]:
    """(store, export): the store a SQLite file, or a PostgreSQL URL (password as ${VAR})."""
    if request.param == "sqlite":
        return request.getfixturevalue("file_paths")
    return request.getfixturevalue("pg_url"), tmp_path / "published" / "forecasts.parquet"


def _journal(paths) -> Path:
    return paths[1].parent / JOURNAL_NAME


def _dir(paths) -> Path:
    """The directory of the published files (and of the SQLite store)."""
    return paths[1].parent


def _is_file(paths) -> bool:
    return isinstance(paths[0], Path)


def _publish(paths, forecasts=None, lineage=None) -> dict:
    store, export = paths
    return publish_forecasts(
        _forecasts() if forecasts is None else forecasts, lineage or _lineage(), store, export
    )


def _count(store: Path | str, table: str) -> int:
    engine = locate(store).engine()
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()
    finally:
        engine.dispose()


def _files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_first_publish_stores_rows_with_lineage(paths):
    summary = _publish(paths)
    store, export = paths
    assert summary == {
        "run_key": run_key(_lineage()),
        "rows_inserted": 2 * H,
        "rows_existing": 0,
        "stale_series": 0,
        "runs_in_store": 1,
        # the file, or the URL with its password masked (and no ${VAR} either)
        "store": str(store) if _is_file(paths) else locate(store).masked,
        "export": str(export),
    }
    if not _is_file(paths):
        assert summary["store"].startswith("postgresql+psycopg://forecast:***@127.0.0.1:")
        assert os.environ["FORECAST_TEST_PG_PASSWORD"] not in repr(summary)
    current = read_current(store)
    assert current.height == 2 * H
    for field, value in _lineage().items():
        assert current[field].to_list() == [value] * (2 * H)
    assert current.select("series_id", "timestamp", "horizon_step", "forecast").equals(
        _forecasts().sort("series_id", "timestamp")
    )
    # DELETE journal mode: nothing but the store and the export beside each other.
    assert _files(_dir(paths)) == ({store.name} if _is_file(paths) else set()) | {export.name}


def test_timestamps_are_stored_as_iso_strings(paths):
    _publish(paths)
    engine = locate(paths[0]).engine()
    with engine.connect() as conn:
        first = conn.exec_driver_sql("SELECT timestamp FROM forecasts ORDER BY timestamp LIMIT 1")
        assert first.scalar() == "1961-01-01T00:00:00"
    engine.dispose()


def test_same_inputs_twice_add_no_duplicates(paths):
    _publish(paths)
    later = _lineage(published_at="2024-02-01T00:00:00.000000Z")
    summary = _publish(paths, lineage=later)
    assert summary["rows_inserted"] == 0
    assert summary["rows_existing"] == 2 * H
    assert summary["runs_in_store"] == 1
    assert _count(paths[0], "forecasts") == 2 * H
    runs = list_runs(paths[0])
    assert runs.height == 1
    # The first publish time stays; the latest one is recorded beside it.
    assert runs["published_at"].item() == "2024-01-01T00:00:00.000000Z"
    assert runs["last_published_at"].item() == "2024-02-01T00:00:00.000000Z"
    assert runs["n_rows"].item() == 2 * H


def test_new_model_adds_a_run_and_the_view_follows_it(paths):
    first, second = _lineage(), _lineage(model_md5="n" * 32)
    _publish(paths, lineage=first)
    summary = _publish(paths, _forecasts(offset=0.5), second)
    store, export = paths
    assert summary["rows_inserted"] == 2 * H
    assert summary["runs_in_store"] == 2
    assert _count(store, "forecasts") == 4 * H
    runs = list_runs(store)
    assert runs["run_key"].to_list() == [run_key(first), run_key(second)]
    assert runs["n_rows"].to_list() == [2 * H, 2 * H]
    current = read_current(store)
    assert set(current["model_md5"]) == {"n" * 32}
    assert current["forecast"].to_list() == _forecasts(0.5).sort("series_id")["forecast"].to_list()
    assert pl.read_parquet(export).equals(current)


def test_republishing_an_older_run_makes_it_current_again(paths):
    first, second = _lineage(), _lineage(model_md5="n" * 32)
    _publish(paths, lineage=first)
    _publish(paths, _forecasts(offset=0.5), second)
    summary = _publish(paths, lineage=first)
    assert summary["rows_inserted"] == 0
    assert set(read_current(paths[0])["model_md5"]) == {"m" * 32}
    assert pl.read_parquet(paths[1]).equals(read_current(paths[0]))


def test_export_equals_the_view(paths):
    _publish(paths)
    store, export = paths
    exported = pl.read_parquet(export)
    assert exported.equals(read_current(store))
    assert _count(store, "current_forecasts") == len(exported)


def _snapshot(paths) -> dict:
    """Every file beside the export, and what the store holds. A SQLite rollback journal that
    a killed writer left (`forecasts.sqlite-journal`) is SQLite's own: the database file is as
    it was, and the next connection that writes rolls it back and deletes it."""
    files = {p.name: p.read_bytes() for p in _dir(paths).iterdir()}
    files = {n: b for n, b in files.items() if not n.endswith(".sqlite-journal")}
    return {**files, "<current>": read_current(paths[0]), "<runs>": list_runs(paths[0])}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].equals(b[k]) if isinstance(a[k], pl.DataFrame) else a[k] == b[k] for k in a
    )


def test_crash_mid_insert_leaves_store_and_export_untouched(paths, monkeypatch):
    _publish(paths)
    before = _snapshot(paths)
    monkeypatch.setattr(store_mod, "BATCH_SIZE", 2)
    real_insert = store_mod._insert_batch
    calls = []

    def insert_then_crash(conn, batch):
        calls.append(len(batch))
        if len(calls) > 1:
            raise OSError("simulated crash after the first batch")
        real_insert(conn, batch)

    def copy_then_crash(conn, rows):  # PostgreSQL inserts through COPY: all rows, then crash
        store_mod._copy_rows.__wrapped__(conn, rows)
        calls.extend([2, 2])
        raise OSError("simulated crash after the rows were written")

    copy_then_crash.__wrapped__ = store_mod._copy_rows
    monkeypatch.setattr(store_mod, "_insert_batch", insert_then_crash)
    monkeypatch.setattr(store_mod, "_copy_rows", copy_then_crash)
    name = paths[0].name if _is_file(paths) else re.escape("forecast:***@")
    with pytest.raises(PublishWriteError, match=f"{name}.*: simulated crash"):
        _publish(paths, _forecasts(offset=1.0), _lineage(model_md5="n" * 32))
    assert calls == [2, 2]
    # Byte-identical files, the same store content, and no temp or journal file left.
    assert _same(_snapshot(paths), before)


def test_a_failed_rename_after_the_commit_point_is_rolled_forward(paths, monkeypatch):
    """Once the database has committed the publish only goes forward: a rename that fails
    leaves the old export, and the next start (recover, or any publish) completes it."""
    _publish(paths)
    store, export = paths
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst) == export:
            raise OSError("simulated crash at rename")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="simulated crash"):
        _publish(paths, _forecasts(offset=1.0), _lineage(model_md5="n" * 32))
    monkeypatch.undo()
    assert set(read_current(store)["model_md5"]) == {"n" * 32}  # committed
    assert pl.read_parquet(export)["model_md5"].unique().to_list() == ["m" * 32]
    assert recover(_journal(paths)) == [str(export)]
    assert pl.read_parquet(export)["model_md5"].unique().to_list() == ["n" * 32]
    assert pl.read_parquet(export).equals(read_current(store))
    assert _files(_dir(paths)) == ({store.name} if _is_file(paths) else set()) | {export.name}


def test_crash_on_first_publish_leaves_nothing(paths, monkeypatch):
    def crash(conn, batch):
        raise OSError("simulated crash")

    monkeypatch.setattr(store_mod, "_insert_batch", crash)
    monkeypatch.setattr(store_mod, "_copy_rows", crash)
    with pytest.raises(PublishWriteError):
        _publish(paths)
    assert not _dir(paths).exists() or _files(_dir(paths)) == set()
    with pytest.raises(FileNotFoundError, match="no forecast store"):
        read_current(paths[0])


def test_stale_temp_files_of_a_killed_publish_are_removed(paths):
    _publish(paths)
    stale = _dir(paths) / ".forecasts.parquet.abc123.parquet"
    stale.write_bytes(b"left by kill -9")
    _publish(paths)
    assert not stale.exists()


def test_lineage_fields_match_the_lineage_module():
    assert set(_lineage()) == set(LINEAGE_FIELDS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop("forecast"), "lack columns"),
        (lambda f: f.head(0), "empty"),
        (lambda f: f.with_columns(pl.lit(float("nan")).alias("forecast")), "non-finite"),
        (lambda f: pl.concat([f, f.head(1)]), "duplicate"),
        (lambda f: f.with_columns(pl.lit(None, pl.Float64).alias("forecast")), "nulls"),
    ],
)
def test_bad_forecasts_are_refused_before_touching_the_store(paths, change, message):
    with pytest.raises(ValueError, match=message):
        _publish(paths, change(_forecasts()))
    assert not _dir(paths).exists() or _files(_dir(paths)) == set()


def test_incomplete_lineage_is_refused(paths):
    lineage = _lineage()
    del lineage["git_commit"]
    with pytest.raises(ValueError, match="git_commit"):
        _publish(paths, lineage=lineage)


def test_reading_a_missing_store_says_so(tmp_path, pg_url):
    with pytest.raises(FileNotFoundError, match="no forecast store"):
        read_current(tmp_path / "nothing.sqlite")
    assert not (tmp_path / "nothing.sqlite").exists()
    with pytest.raises(FileNotFoundError, match=r"no forecast store at .*forecast:\*\*\*@"):
        read_current(pg_url)  # an empty database: masked URL in the message


# ---------------------------------------------------------------- prediction intervals
def _with_intervals(forecasts: pl.DataFrame, widen: float = 1.0) -> pl.DataFrame:
    f = pl.col("forecast")
    return forecasts.with_columns(
        (f - 5 * widen).alias("lo_80"),
        (f + 5 * widen).alias("hi_80"),
        (f - 9 * widen).alias("lo_95"),
        (f + 9 * widen).alias("hi_95"),
    )


def test_intervals_are_stored_exported_and_read_back(paths):
    _publish(paths, _with_intervals(_forecasts()))
    store, export = paths
    current = read_current(store)
    assert current.columns[5:9] == ["lo_80", "hi_80", "lo_95", "hi_95"]
    assert (current["hi_95"] - current["forecast"]).to_list() == [9.0] * (2 * H)
    assert pl.read_parquet(export).equals(current)
    engine = locate(store).engine()
    with engine.connect() as conn:
        assert store_mod._version(conn) == store_mod.SCHEMA_VERSION == 7
    engine.dispose()


def test_forecasts_without_intervals_store_nulls(paths):
    _publish(paths)
    assert read_current(paths[0])["lo_80"].null_count() == 2 * H


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop("hi_80"), "only one of lo_80 / hi_80"),
        (lambda f: f.with_columns(pl.col("forecast").alias("lo_80") + 1), "outside"),
        (lambda f: f.with_columns(pl.lit(float("inf")).alias("hi_95")), "non-finite"),
        (lambda f: f.with_columns((pl.col("forecast") - 1).alias("lo_95")), "do not contain"),
        (lambda f: f.with_columns(pl.lit(None, pl.Float64).alias("lo_80")), "null"),
    ],
)
def test_bad_intervals_are_refused_before_touching_the_store(paths, change, message):
    with pytest.raises(ValueError, match=message):
        _publish(paths, change(_with_intervals(_forecasts())))
    assert not _dir(paths).exists() or _files(_dir(paths)) == set()


def _make_v1_store(path: Path) -> None:
    """A store as schema version 1 wrote it (no interval columns), holding one run."""
    lineage_ddl = ", ".join(f"{f} TEXT NOT NULL" for f in LINEAGE_FIELDS)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute(
        f"CREATE TABLE runs (run_key TEXT PRIMARY KEY, {lineage_ddl}, last_published_at TEXT "
        "NOT NULL, publish_seq INTEGER NOT NULL UNIQUE, n_rows INTEGER NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE forecasts (run_key TEXT NOT NULL, series_id TEXT NOT NULL, timestamp TEXT "
        f"NOT NULL, horizon_step INTEGER NOT NULL, forecast REAL NOT NULL, {lineage_ddl}, "
        "UNIQUE (run_key, series_id, timestamp))"
    )
    columns = ("run_key", "series_id", "timestamp", "horizon_step", "forecast", *LINEAGE_FIELDS)
    conn.execute(
        f"CREATE VIEW current_forecasts AS SELECT {', '.join(columns)} FROM forecasts WHERE "
        "run_key = (SELECT run_key FROM runs ORDER BY publish_seq DESC LIMIT 1)"
    )
    lin = _lineage(model_md5="o" * 32)
    key = run_key(lin)
    conn.execute(
        f"INSERT INTO forecasts VALUES (?, 'a', '1961-01-01T00:00:00', 1, 1.0, "
        f"{', '.join('?' * len(LINEAGE_FIELDS))})",
        (key, *lin.values()),
    )
    conn.execute(
        f"INSERT INTO runs VALUES (?, {', '.join('?' * len(LINEAGE_FIELDS))}, ?, 1, 1)",
        (key, *lin.values(), lin["published_at"]),
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_a_version_1_store_is_read_and_then_migrated_by_the_next_publish(file_paths):
    paths = file_paths
    store, _ = paths
    _make_v1_store(store)
    old = read_current(store)  # readable before any migration, intervals null
    assert old["forecast"].to_list() == [1.0] and old["lo_80"].null_count() == 1
    _publish(paths, _with_intervals(_forecasts()))
    assert list_runs(store).height == 2
    assert read_current(store)["lo_80"].null_count() == 0
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION
        # the old run's row kept, with NULL intervals
        old_rows = conn.execute("SELECT lo_80 FROM forecasts WHERE model_md5 = ?", ("o" * 32,))
        assert old_rows.fetchall() == [(None,)]


def test_publishing_intervals_twice_is_idempotent(paths):
    _publish(paths, _with_intervals(_forecasts()))
    summary = _publish(paths, _with_intervals(_forecasts()))
    assert summary["rows_inserted"] == 0
    assert _count(paths[0], "forecasts") == 2 * H


# ---------------------------------------------------------------- all or nothing (issue 11)
NEW_MODEL = b"new champion model " * 5000  # ~95 KB: the largest file of the publish


def _champion(directory: Path) -> tuple[Path, Path]:
    return directory / "champion.keras", directory / "champion.json"


def _publish_all(paths, model: bytes, meta: str, offset: float, md5: str) -> dict:
    """A publish like the stage's: store, export, champion model and its metadata."""
    champion, champion_meta = _champion(_dir(paths))
    also = [
        (champion, lambda tmp: tmp.write_bytes(model)),
        (champion_meta, lambda tmp: tmp.write_text(meta)),
    ]
    return publish_forecasts(_forecasts(offset), _lineage(model_md5=md5), *paths, also=also)


def _everything(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _is_new(paths) -> bool:
    store, export = paths
    champion, meta = _champion(_dir(paths))
    return (
        set(read_current(store)["model_md5"]) == {"n" * 32}
        and pl.read_parquet(export)["model_md5"].unique().to_list() == ["n" * 32]
        and champion.read_bytes() == NEW_MODEL
        and meta.read_text() == "new"
    )


KILLED_PUBLISH = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from tests.tasks.publishing.test_store import NEW_MODEL, _publish_all
store = {store!r}
store = store if "://" in store else Path(store)
_publish_all((store, Path({export!r})), NEW_MODEL, "new", 1.0, "n" * 32)
print("not killed")
"""
# Every write and rename of a publish (tasks/publishing/transaction.py), in the order they happen:
# the rows go into the open database transaction, the files to temps, then the journal, the
# database COMMIT (the commit point) and the renames.
STAGED = [f"publish.staged.{n}" for n in ("forecasts.parquet", "champion.keras", "champion.json")]
RENAMED = [p.replace("staged", "renamed") for p in STAGED]
BEFORE_COMMIT = ["publish.db.inserted", *STAGED, "publish.journal"]
KILL_POINTS = [*BEFORE_COMMIT, "publish.committed", *RENAMED]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_at_each_write_and_rename_leaves_all_old_or_all_new(paths, tmp_path, point):
    """A real SIGKILL (tasks/faults.py: the process kills itself, no cleanup runs) at each
    point of a publish: before the database COMMIT the store holds the previous run and every
    published file is byte-identical, and the next start discards the temps; after it, the
    next start renames them and every file is new. Never the store of one run and the export
    or champion of another."""
    import signal
    import subprocess
    import sys

    store, export = paths
    directory = _dir(paths)
    publish_forecasts(
        _forecasts(), _lineage(), store, export,
        also=[(p, lambda tmp: tmp.write_bytes(b"old")) for p in _champion(directory)],
    )  # fmt: skip
    before = _snapshot(paths)
    marker = tmp_path / "killed-at"
    script = KILLED_PUBLISH.format(
        root=str(Path(__file__).resolve().parents[3]), store=str(store), export=str(export)
    )
    env = {**os.environ, "FORECAST_KILL_AT": point, "FORECAST_KILL_MARKER": str(marker)}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=HANG_S
    )
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)
    assert marker.read_text().split()[0] == point
    files = {export.name, *(p.name for p in _champion(directory))}
    published = files | ({store.name} if _is_file(paths) else set())
    if point in BEFORE_COMMIT:
        # Before the commit point: the published files are the old bytes, as the kill left
        # them, and the store (read by another process) shows the previous run.
        assert {n: (directory / n).read_bytes() for n in files} == {n: before[n] for n in files}
        assert read_current(store).equals(before["<current>"])
        assert recover(_journal(paths)) == []  # nothing to roll forward: temps discarded
        assert not _journal(paths).exists()
        # Temps staged before the journal stay until the next publish removes them (below).
        now = {k: v for k, v in _snapshot(paths).items() if not k.startswith(".")}
        assert _same(now, before)
    else:
        # After it: the next start renames what the kill left, and everything is new.
        assert set(read_current(store)["model_md5"]) == {"n" * 32}
        left = [n for n in files if any(directory.glob(f".{n}.*"))]
        assert _journal(paths).exists()
        assert sorted(Path(p).name for p in recover(_journal(paths))) == sorted(left)
        assert _is_new(paths)
        assert not _journal(paths).exists()
    # The next publish removes the leftovers and goes through.
    _publish_all(paths, NEW_MODEL, "new", 1.0, "n" * 32)
    assert _is_new(paths)
    assert _files(directory) == published


def test_kill_points_are_the_ones_the_publish_passes(paths, monkeypatch):
    """The list above is every fault point a publish passes: none missed, none stale."""
    from tasks.publishing import transaction

    seen = []
    monkeypatch.setattr(transaction, "fault_point", seen.append)
    monkeypatch.setattr(store_mod, "fault_point", seen.append)
    _publish_all(paths, NEW_MODEL, "new", 1.0, "n" * 32)
    assert seen == KILL_POINTS


def test_published_files_are_0644_like_a_plain_open(paths):
    from tasks.io import UMASK

    _publish_all(paths, NEW_MODEL, "new", 1.0, "n" * 32)
    modes = {p.name: p.stat().st_mode & 0o777 for p in _dir(paths).iterdir()}
    assert modes == dict.fromkeys(modes, 0o666 & ~UMASK) and len(modes) == 3 + _is_file(paths)


# ---------------------------------------------------------------- full and read-only disks
@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB tmpfs (mounting needs root; elsewhere the test is skipped)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill(disk: Path, leave: int) -> None:
    """Take the disk's free space down to about `leave` bytes."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(disk / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def _store_and_export_bytes(tmp_path: Path) -> int:
    """What the new store and export take on disk: the same two publishes on a roomy disk."""
    paths = (tmp_path / "roomy/forecasts.sqlite", tmp_path / "roomy/forecasts.parquet")
    _publish_all(paths, b"old", "old", 0.0, "m" * 32)
    _publish_all(paths, NEW_MODEL, "new", 1.0, "n" * 32)
    return sum(p.stat().st_size for p in paths)


@pytest.mark.parametrize(
    ("room_for_store_and_export", "fails_on"),
    [(False, "forecasts.sqlite"), (True, "champion.keras")],
)
def test_disk_full_mid_publish_changes_nothing_and_names_the_file(
    small_disk, tmp_path, room_for_store_and_export, fails_on
):
    # With room for the new store and export plus half the champion (~95 KB), the champion's
    # temp is the write that fails: the store and export temps exist by then.
    leave = _store_and_export_bytes(tmp_path) + 45_000 if room_for_store_and_export else 0
    paths = (small_disk / "published/forecasts.sqlite", small_disk / "published/forecasts.parquet")
    _publish_all(paths, b"old", "old", 0.0, "m" * 32)
    before = _everything(paths[0].parent)
    _fill(small_disk, leave)
    with pytest.raises(PublishWriteError) as err:
        _publish_all(paths, NEW_MODEL, "new", 1.0, "n" * 32)
    message = str(err.value)
    assert f"cannot write {paths[0].parent / fails_on}: No space left on device" in message
    assert "nothing was published" in message
    assert _everything(paths[0].parent) == before  # no temp left either
    (small_disk / "filler").unlink()
    _publish_all(paths, NEW_MODEL, "new", 1.0, "n" * 32)
    assert _is_new(paths)


def test_read_only_disk_changes_nothing_and_names_the_file(small_disk):
    import subprocess

    paths = (small_disk / "published/forecasts.sqlite", small_disk / "published/forecasts.parquet")
    _publish_all(paths, b"old", "old", 0.0, "m" * 32)
    before = _everything(paths[0].parent)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(PublishWriteError, match=r"forecasts.sqlite: Read-only file system"):
        _publish_all(paths, NEW_MODEL, "new", 1.0, "n" * 32)
    assert _everything(paths[0].parent) == before


# ---------------------------------------------------------------- one model, one run
def test_the_same_weights_saved_twice_are_one_run(paths, tmp_path):
    """A .keras file's bytes change with every save (metadata.json date_saved), its weights and
    config do not: the store keys the run by those (tasks/publishing/model_id.py), so republishing a
    resumed run's bit-identical model adds no run; other weights do."""
    import time

    import keras

    from tasks.io import md5_file
    from tasks.publishing.model_id import model_id

    model = keras.Sequential([keras.Input((4, 1)), keras.layers.LSTM(3), keras.layers.Dense(2)])
    first, again, other = (tmp_path / f"{n}.keras" for n in ("first", "again", "other"))
    model.save(first)
    time.sleep(1.1)  # date_saved has a resolution of seconds
    model.save(again)
    weights = model.get_weights()
    weights[0][0, 0] += 1e-6
    model.set_weights(weights)
    model.save(other)
    assert md5_file(first) != md5_file(again)

    def lineage(path: Path) -> dict:
        return {**_lineage(model_md5=md5_file(path)), "model_id": model_id(path)}

    assert _publish(paths, lineage=lineage(first))["runs_in_store"] == 1
    assert _publish(paths, lineage=lineage(again))["runs_in_store"] == 1
    assert _publish(paths, lineage=lineage(other))["runs_in_store"] == 2


# ---------------------------------------------------------------- quarantined series: stale
def _only(series: str, offset: float) -> pl.DataFrame:
    return _forecasts(offset).filter(pl.col("series_id") == series)


def _view(store: Path) -> dict[str, tuple]:
    """series -> (model_md5s, stale flags, forecasts) of the current view."""
    current = read_current(store)
    return {
        sid: (set(part["model_md5"]), set(part["stale"]), part["forecast"].to_list())
        for (sid,), part in current.group_by("series_id", maintain_order=True)
    }


def test_a_quarantined_series_keeps_its_last_forecasts_marked_stale(paths):
    store, export = paths
    _publish(paths)  # model m: a and b
    b_before = _view(store)["b"][2]
    second = _lineage(model_md5="n" * 32)
    summary = publish_forecasts(_only("a", 0.5), second, store, export, keep=("b",))
    assert summary["stale_series"] == 1
    view = _view(store)
    assert view["a"] == ({"n" * 32}, {False}, _only("a", 0.5)["forecast"].to_list())
    assert view["b"] == ({"m" * 32}, {True}, b_before)  # its own lineage: model m made them
    assert pl.read_parquet(export).equals(read_current(store))
    assert list_runs(store)["n_rows"].to_list() == [2 * H, H]  # nothing copied into run 2
    # Quarantined again under a third model: still the rows model m made, still stale.
    third = _lineage(model_md5="o" * 32)
    publish_forecasts(_only("a", 0.7), third, store, export, keep=("b",))
    assert _view(store)["b"] == ({"m" * 32}, {True}, b_before)
    # The same run published again (idempotent) keeps them too.
    publish_forecasts(_only("a", 0.7), third, store, export, keep=("b",))
    assert _view(store)["b"] == ({"m" * 32}, {True}, b_before)
    # Back from quarantine: fresh forecasts, nothing stale.
    publish_forecasts(_forecasts(0.9), _lineage(model_md5="q" * 32), store, export)
    assert {sid: v[:2] for sid, v in _view(store).items()} == {
        "a": ({"q" * 32}, {False}),
        "b": ({"q" * 32}, {False}),
    }


def test_keeping_a_series_never_published_or_forecast_anew_keeps_nothing(paths):
    store, export = paths
    _publish(paths)
    second = _lineage(model_md5="n" * 32)
    summary = publish_forecasts(_forecasts(0.5), second, store, export, keep=("a", "zzz"))
    assert summary["stale_series"] == 0  # a has new forecasts; zzz never had any
    assert not read_current(store)["stale"].any()
    assert read_current(store).height == 2 * H


def test_a_version_2_store_reads_nothing_stale_and_is_migrated(file_paths):
    store, export = paths = file_paths
    _publish(paths)
    with sqlite3.connect(store) as conn:  # back to what schema version 2 wrote
        conn.execute("DROP VIEW current_forecasts")
        conn.execute("DROP TABLE stale_series")
        conn.execute("ALTER TABLE forecasts DROP COLUMN model")
        columns = [c for c in store_mod.ROW_COLUMNS if c != "model"]
        conn.execute(
            f"CREATE VIEW current_forecasts AS SELECT {', '.join(columns)} FROM "
            "forecasts WHERE run_key = (SELECT run_key FROM runs ORDER BY publish_seq DESC "
            "LIMIT 1)"
        )
        conn.execute("PRAGMA user_version = 2")
    assert not read_current(store)["stale"].any()
    publish_forecasts(_only("a", 0.5), _lineage(model_md5="n" * 32), store, export, keep=("b",))
    assert _view(store)["b"][:2] == ({"m" * 32}, {True})
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7


# ---------------------------------------------------------------- model column (schema 4)
def test_each_row_says_which_model_produced_it(paths):
    store, export = paths
    mixed = _forecasts().with_columns(
        model=pl.when(pl.col("series_id") == "a").then(pl.lit("lstm")).otherwise(pl.lit("drift"))
    )
    _publish(paths, mixed)
    current = read_current(store)
    assert dict(zip(current["series_id"], current["model"], strict=True)) == {
        "a": "lstm",
        "b": "drift",
    }
    assert pl.read_parquet(export)["model"].to_list() == current["model"].to_list()
    # a publish without the column (one model) stores the LSTM
    _publish(paths, _forecasts(1.0), _lineage(model_md5="n" * 32))
    assert set(read_current(store)["model"]) == {"lstm"}


def test_a_version_3_store_is_migrated_with_its_rows_marked_lstm(file_paths):
    store, export = paths = file_paths
    _publish(paths)
    with sqlite3.connect(store) as conn:  # back to what schema version 3 wrote
        conn.execute("DROP VIEW current_forecasts")
        conn.execute("ALTER TABLE forecasts DROP COLUMN model")
        columns = [c for c in store_mod.ROW_COLUMNS if c != "model"]
        conn.execute(
            f"CREATE VIEW current_forecasts AS SELECT {', '.join(columns)}, 0 AS stale FROM "
            "forecasts WHERE run_key = (SELECT run_key FROM runs ORDER BY publish_seq DESC "
            "LIMIT 1)"
        )
        conn.execute("PRAGMA user_version = 3")
    assert set(read_current(store)["model"]) == {"lstm"}  # read before any migration
    mixed = _only("a", 0.5).with_columns(model=pl.lit("seasonal_naive"))
    publish_forecasts(mixed, _lineage(model_md5="n" * 32), store, export)
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
        by_run = dict(conn.execute("SELECT model_md5, group_concat(DISTINCT model) FROM "
                                   "forecasts GROUP BY model_md5").fetchall())  # fmt: skip
    assert by_run == {"m" * 32: "lstm", "n" * 32: "seasonal_naive"}
    assert set(read_current(store)["model"]) == {"seasonal_naive"}


# ---------------------------------------------------------------- trained_through (schema 5)
def test_a_version_4_store_gains_trained_through_unknown_on_its_old_rows(file_paths):
    store, export = file_paths
    _publish(file_paths)
    with sqlite3.connect(store) as conn:  # back to what schema version 4 wrote
        conn.execute("DROP VIEW current_forecasts")
        conn.execute("ALTER TABLE forecasts DROP COLUMN trained_through")
        conn.execute("ALTER TABLE runs DROP COLUMN trained_through")
        columns = [c for c in store_mod.ROW_COLUMNS if c != "trained_through"]
        conn.execute(
            f"CREATE VIEW current_forecasts AS SELECT {', '.join(columns)}, 0 AS stale FROM "
            "forecasts WHERE run_key = (SELECT run_key FROM runs ORDER BY publish_seq DESC "
            "LIMIT 1)"
        )
        conn.execute("PRAGMA user_version = 4")
    # Read before any migration: the field is there, unknown.
    assert set(read_current(store)["trained_through"]) == {"unknown"}
    assert list_runs(store)["trained_through"].to_list() == ["unknown"]
    lineage = _lineage(model_md5="n" * 32) | {"trained_through": "1961-06-01T00:00:00"}
    publish_forecasts(_only("a", 0.5), lineage, store, export, keep=("b",))
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
        by_run = dict(conn.execute("SELECT model_md5, group_concat(DISTINCT trained_through) "
                                   "FROM forecasts GROUP BY model_md5").fetchall())  # fmt: skip
    assert by_run == {"m" * 32: "unknown", "n" * 32: "1961-06-01T00:00:00"}
    assert list_runs(store)["trained_through"].to_list() == ["unknown", "1961-06-01T00:00:00"]
    # Row level: each current row says what its model trained through, a kept stale row too.
    current = read_current(store)
    assert dict(zip(current["series_id"], current["trained_through"], strict=True)) == {
        "a": "1961-06-01T00:00:00",
        "b": "unknown",
    }
    assert pl.read_parquet(export)["trained_through"].to_list() == (
        current["trained_through"].to_list()
    )


# ---------------------------------------------------------------- reason column (schema 7)
def test_each_row_says_why_its_model_and_a_version_6_store_gains_the_column(file_paths):
    store, export = file_paths
    _publish(file_paths)
    with sqlite3.connect(store) as conn:  # back to what schema version 6 wrote
        conn.execute("DROP VIEW current_forecasts")
        conn.execute("ALTER TABLE forecasts DROP COLUMN reason")
        columns = [c for c in store_mod.ROW_COLUMNS if c != "reason"]
        conn.execute(
            f"CREATE VIEW current_forecasts AS SELECT {', '.join(columns)}, 0 AS stale FROM "
            "forecasts WHERE run_key = (SELECT run_key FROM runs ORDER BY publish_seq DESC "
            "LIMIT 1)"
        )
        conn.execute("PRAGMA user_version = 6")
    assert set(read_current(store)["reason"]) == {"unknown"}  # read before any migration
    why = "too short for the LSTM (3 < 72 steps) and for any fold: naive by default"
    mixed = _only("a", 0.5).with_columns(model=pl.lit("naive"), reason=pl.lit(why))
    publish_forecasts(mixed, _lineage(model_md5="n" * 32), store, export, keep=("b",))
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION == 7
        by_run = dict(conn.execute("SELECT model_md5, group_concat(DISTINCT reason) FROM "
                                   "forecasts GROUP BY model_md5").fetchall())  # fmt: skip
    assert by_run == {"m" * 32: "unknown", "n" * 32: why}
    current = read_current(store)
    assert dict(zip(current["series_id"], current["reason"], strict=True)) == {
        "a": why,
        "b": "unknown",  # the stale row kept from the run before reasons
    }
    assert pl.read_parquet(export)["reason"].to_list() == current["reason"].to_list()


# ---------------------------------------------------------------- database URL (issue 14)
def _many(n_series: int, offset: float) -> pl.DataFrame:
    steps = pl.DataFrame({"horizon_step": list(range(1, H + 1))})
    series = pl.DataFrame({"series_id": [f"s{i:04d}" for i in range(n_series)]})
    return (
        series.join(steps, how="cross")
        .with_columns(
            pl.datetime(1961, pl.col("horizon_step"), 1).cast(pl.Datetime("us")).alias("timestamp"),
            (pl.col("horizon_step") * 1.0 + offset).alias("forecast"),
        )
        .select("series_id", "timestamp", "horizon_step", "forecast")
    )


def test_a_concurrent_reader_sees_the_old_run_or_the_new_one_never_a_part(paths):
    """A publisher thread alternates two runs of 2,000 series; every read meanwhile (its own
    connection) is one whole run: all its rows, one run key, one forecast value per step."""
    import threading

    n = 2_000
    store, export = paths
    runs = {0.0: _lineage(), 0.5: _lineage(model_md5="n" * 32)}
    publish_forecasts(_many(n, 0.0), runs[0.0], store, export)
    errors: list[BaseException] = []

    def publisher() -> None:
        try:
            for i in range(6):
                offset = 0.5 if i % 2 == 0 else 0.0
                publish_forecasts(_many(n, offset), runs[offset], store, export)
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    thread = threading.Thread(target=publisher)
    thread.start()
    seen = []
    while thread.is_alive():
        current = read_current(store)
        assert current.height == n * H
        assert current["run_key"].n_unique() == 1
        offset = (current["forecast"] - current["horizon_step"]).unique().to_list()
        assert len(offset) == 1 and offset[0] in runs
        assert set(current["model_md5"]) == {runs[offset[0]]["model_md5"]}
        seen.append(offset[0])
    thread.join()
    assert not errors, errors
    assert set(seen) == set(runs)  # the reader saw both runs while publishes went on
    assert set(read_current(store)["forecast"] - read_current(store)["horizon_step"]) == {0.0}


def test_a_schema_4_file_written_by_the_previous_store_code_is_read_and_written(file_paths):
    """tests/tasks/data/store_v4.sqlite was written by the copy-on-publish store (commit
    934c822): run m (series a, b), then run n (a by seasonal naive, b quarantined and kept
    stale from m). This code reads it as it is and publishes into it in place."""
    import shutil

    store, export = file_paths
    store.parent.mkdir(parents=True)
    shutil.copyfile(Path(__file__).parent / "data" / "store_v4.sqlite", store)
    current = read_current(store)
    assert current.select("series_id", "model", "stale").rows() == [
        *[("a", "seasonal_naive", False)] * H,
        *[("b", "lstm", True)] * H,
    ]
    assert current.filter(pl.col("series_id") == "a")["forecast"].to_list() == [101.5, 102.5, 103.5]
    assert list_runs(store)["n_rows"].to_list() == [2 * H, H]
    summary = publish_forecasts(_with_intervals(_forecasts(2.0)), _lineage("q" * 32), store, export)
    assert summary["rows_inserted"] == 2 * H and summary["runs_in_store"] == 3
    assert set(read_current(store)["model_md5"]) == {"q" * 32}
    assert pl.read_parquet(export).equals(read_current(store))
    with sqlite3.connect(store) as conn:  # migrated in place to schema 5
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
        assert conn.execute("SELECT COUNT(*) FROM forecasts").fetchone()[0] == 5 * H


def test_the_url_may_name_its_password_only_through_an_environment_variable(pg_server):
    from tasks.config import PublishConfig
    from tasks.publishing.db import Database, StoreURLError

    literal = pg_server.url(masked_password=False)
    with pytest.raises(ValueError, match="holds a password: put it in an environment variable"):
        PublishConfig(url=literal)
    with pytest.raises(ValueError, match="holds a password"):
        read_current(literal)  # nor through the library or `forecast published --store`
    assert PublishConfig(url=pg_server.url()).url == pg_server.url()
    assert PublishConfig(url="${FORECAST_DB_URL}").url == "${FORECAST_DB_URL}"
    unset = Database.from_url("postgresql+psycopg://u:${FORECAST_NOT_SET_VAR}@127.0.0.1/x")
    with pytest.raises(StoreURLError, match="FORECAST_NOT_SET_VAR, not set"):
        unset.url  # noqa: B018
    assert Database.from_url(pg_server.url()).masked == pg_server.url().replace(
        "${FORECAST_TEST_PG_PASSWORD}", "***"
    )


def test_republishing_a_stored_run_makes_it_current_with_its_stale_series(paths):
    """A rollback on a server store republishes a run from the database itself: it becomes
    current again with a new sequence number, its rows and stale series as stored, and the
    export and manifest follow; nothing is inserted."""
    import json

    store, export = paths
    _publish(paths)  # m: a and b
    first = read_current(store)
    publish_forecasts(_only("a", 0.5), _lineage(model_md5="n" * 32), store, export, keep=("b",))
    with_stale = read_current(store)  # n: a, b kept stale from m
    _publish(paths, _forecasts(0.9), _lineage(model_md5="q" * 32))
    manifest = _dir(paths) / "manifest.json"
    key_n = run_key(_lineage(model_md5="n" * 32))
    result = store_mod.republish(store, key_n, export, "2030-01-01T00:00:00Z",
                                 manifest_path=manifest)  # fmt: skip
    assert result["rows_inserted"] == 0 and result["runs_in_store"] == 3
    assert read_current(store).equals(with_stale)
    assert pl.read_parquet(export).equals(with_stale)
    runs = list_runs(store)
    assert runs["run_key"][-1] == key_n and runs["publish_seq"][-1] == 4
    assert (
        runs.filter(pl.col("run_key") == key_n)["last_published_at"].item()
        == "2030-01-01T00:00:00Z"
    )
    written = json.loads(manifest.read_text())
    assert written["run_key"] == key_n and written["rows"] == with_stale.height
    assert "FORECAST_TEST_PG_PASSWORD" not in manifest.read_text()
    with pytest.raises(ValueError, match="is not in the store"):
        store_mod.republish(store, "0" * 32, export, "2030-01-02T00:00:00Z")
    assert read_current(store).equals(with_stale)
    assert not first.equals(with_stale)


def test_a_connection_lost_at_the_commit_point_publishes_nothing(pg_url, tmp_path, monkeypatch):
    """The server ends the publisher's session (pg_terminate_backend, from another connection)
    right after the journal is written: the COMMIT fails, the database says the run is not
    there, and the publish ends with one error; the journal and temps are gone, every file and
    the store as they were."""
    import sqlalchemy as sa

    from tasks.publishing import transaction

    paths = (pg_url, tmp_path / "published" / "forecasts.parquet")
    _publish_all(paths, b"old", "old", 0.0, "m" * 32)
    before = _snapshot(paths)
    ended = []

    def end_the_session(point: str) -> None:
        if point != "publish.journal":
            return
        engine = locate(pg_url).engine()
        with engine.connect() as conn:
            ended.extend(conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )).scalars())  # fmt: skip
            conn.commit()
        engine.dispose()

    monkeypatch.setattr(transaction, "fault_point", end_the_session)
    with pytest.raises(PublishWriteError, match="forecast:\\*\\*\\*@.*nothing was published"):
        _publish_all(paths, NEW_MODEL, "new", 1.0, "n" * 32)
    assert ended == [True]  # exactly the publisher's session
    assert not _journal(paths).exists()
    assert _same(_snapshot(paths), before)
