"""The published-forecasts store: idempotent publishes, the current view, the export, crashes."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from tasks import store as store_mod
from tasks.lineage import LINEAGE_FIELDS
from tasks.store import journal_for, list_runs, publish_forecasts, read_current, run_key
from tasks.transaction import PublishWriteError, recover

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
    }


@pytest.fixture
def paths(tmp_path) -> tuple[Path, Path]:
    return tmp_path / "published" / "forecasts.sqlite", tmp_path / "published" / "forecasts.parquet"


def _publish(paths, forecasts=None, lineage=None) -> dict:
    store, export = paths
    return publish_forecasts(
        _forecasts() if forecasts is None else forecasts, lineage or _lineage(), store, export
    )


def _count(store: Path, table: str) -> int:
    with sqlite3.connect(store) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


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
        "store": str(store),
        "export": str(export),
    }
    current = read_current(store)
    assert current.height == 2 * H
    for field, value in _lineage().items():
        assert current[field].to_list() == [value] * (2 * H)
    assert current.select("series_id", "timestamp", "horizon_step", "forecast").equals(
        _forecasts().sort("series_id", "timestamp")
    )
    # DELETE journal mode: nothing but the store and the export beside each other.
    assert _files(store.parent) == {"forecasts.sqlite", "forecasts.parquet"}


def test_timestamps_are_stored_as_iso_strings(paths):
    _publish(paths)
    with sqlite3.connect(paths[0]) as conn:
        first = conn.execute("SELECT timestamp FROM forecasts ORDER BY timestamp LIMIT 1")
        assert first.fetchone()[0] == "1961-01-01T00:00:00"


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
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT COUNT(*) FROM current_forecasts").fetchone()[0] == len(exported)


def _snapshot(paths) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in paths[0].parent.iterdir()}


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

    monkeypatch.setattr(store_mod, "_insert_batch", insert_then_crash)
    with pytest.raises(PublishWriteError, match="forecasts.sqlite: simulated crash"):
        _publish(paths, _forecasts(offset=1.0), _lineage(model_md5="n" * 32))
    assert calls == [2, 2]
    # Byte-identical, and no temp or journal file left beside them.
    assert _snapshot(paths) == before


def test_a_failed_rename_after_the_commit_point_is_rolled_forward(paths, monkeypatch):
    """Once the journal is written the publish only goes forward: a rename that fails leaves
    the old files, and the next start (recover, or any publish) completes it."""
    _publish(paths)
    store, export = paths
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst) == store:
            raise OSError("simulated crash at rename")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="simulated crash"):
        _publish(paths, _forecasts(offset=1.0), _lineage(model_md5="n" * 32))
    monkeypatch.undo()
    assert set(read_current(store)["model_md5"]) == {"m" * 32}
    assert recover(journal_for(store)) == [str(store), str(export)]
    assert set(read_current(store)["model_md5"]) == {"n" * 32}
    assert pl.read_parquet(export)["model_md5"].unique().to_list() == ["n" * 32]
    assert _files(store.parent) == {store.name, export.name}


def test_crash_on_first_publish_leaves_nothing(paths, monkeypatch):
    def crash(conn, batch):
        raise OSError("simulated crash")

    monkeypatch.setattr(store_mod, "_insert_batch", crash)
    with pytest.raises(PublishWriteError):
        _publish(paths)
    assert _files(paths[0].parent) == set()


def test_stale_temp_files_of_a_killed_publish_are_removed(paths):
    _publish(paths)
    stale = paths[0].parent / ".forecasts.sqlite.abc123.sqlite-journal"
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
    assert not paths[0].parent.exists() or _files(paths[0].parent) == set()


def test_incomplete_lineage_is_refused(paths):
    lineage = _lineage()
    del lineage["git_commit"]
    with pytest.raises(ValueError, match="git_commit"):
        _publish(paths, lineage=lineage)


def test_reading_a_missing_store_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no forecast store"):
        read_current(tmp_path / "nothing.sqlite")
    assert not (tmp_path / "nothing.sqlite").exists()


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
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION == 5


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
    assert not paths[0].parent.exists() or _files(paths[0].parent) == set()


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


def test_a_version_1_store_is_read_and_then_migrated_by_the_next_publish(paths):
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
    champion, champion_meta = _champion(paths[0].parent)
    also = [
        (champion, lambda tmp: tmp.write_bytes(model)),
        (champion_meta, lambda tmp: tmp.write_text(meta)),
    ]
    return publish_forecasts(_forecasts(offset), _lineage(model_md5=md5), *paths, also=also)


def _everything(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _is_new(paths) -> bool:
    store, export = paths
    champion, meta = _champion(store.parent)
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
from tests.tasks.test_store import NEW_MODEL, _publish_all
_publish_all((Path({store!r}), Path({export!r})), NEW_MODEL, "new", 1.0, "n" * 32)
print("not killed")
"""
# Every write and rename of a publish (tasks/transaction.py), in the order they happen.
STAGED = [f"publish.staged.{n}" for n in ("forecasts.sqlite", "forecasts.parquet")]
STAGED += [f"publish.staged.{n}" for n in ("champion.keras", "champion.json")]
RENAMED = [p.replace("staged", "renamed") for p in STAGED]
KILL_POINTS = [*STAGED, "publish.journal", *RENAMED]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_at_each_write_and_rename_leaves_all_old_or_all_new(paths, tmp_path, point):
    """A real SIGKILL (tasks/faults.py) at each point of a publish: before the journal every
    published file is byte-identical (no cleanup ran); after it, the next start rolls the
    publish forward and every file is new. Never the store of one run and the export or
    champion of another."""
    import signal
    import subprocess
    import sys

    store, export = paths
    publish_forecasts(
        _forecasts(), _lineage(), store, export,
        also=[(p, lambda tmp: tmp.write_bytes(b"old")) for p in _champion(store.parent)],
    )  # fmt: skip
    before = _everything(store.parent)
    marker = tmp_path / "killed-at"
    script = KILLED_PUBLISH.format(
        root=str(Path(__file__).resolve().parents[2]), store=str(store), export=str(export)
    )
    env = {**os.environ, "FORECAST_KILL_AT": point, "FORECAST_KILL_MARKER": str(marker)}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)
    assert marker.read_text().split()[0] == point
    published = {store.name, export.name, *(p.name for p in _champion(store.parent))}
    if point in STAGED:
        # Before the commit point: the published files are the old bytes, as they are.
        assert {k: v for k, v in _everything(store.parent).items() if k in published} == {
            k: v for k, v in before.items() if k in published
        }
        assert recover(journal_for(store)) == []  # nothing to roll forward
        assert _everything(store.parent).keys() >= published
        assert {n: (store.parent / n).read_bytes() for n in published} == {
            n: before[n] for n in published
        }
    else:
        # After it: the next start renames what the kill left, and everything is new.
        left = [n for n in published if any(store.parent.glob(f".{n}.*"))]
        assert journal_for(store).exists()
        assert sorted(Path(p).name for p in recover(journal_for(store))) == sorted(left)
        assert _is_new(paths)
        assert not journal_for(store).exists()
    # The next publish removes the leftovers and goes through.
    _publish_all(paths, NEW_MODEL, "new", 1.0, "n" * 32)
    assert _is_new(paths)
    assert _files(store.parent) == published


def test_kill_points_are_the_ones_the_publish_passes(paths, monkeypatch):
    """The list above is every fault point a publish passes: none missed, none stale."""
    from tasks import transaction

    seen = []
    monkeypatch.setattr(transaction, "fault_point", seen.append)
    _publish_all(paths, NEW_MODEL, "new", 1.0, "n" * 32)
    assert seen == KILL_POINTS


def test_published_files_are_0644_like_a_plain_open(paths):
    from tasks.io import UMASK

    _publish_all(paths, NEW_MODEL, "new", 1.0, "n" * 32)
    modes = {p.name: p.stat().st_mode & 0o777 for p in paths[0].parent.iterdir()}
    assert modes == dict.fromkeys(modes, 0o666 & ~UMASK) and len(modes) == 4


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
    config do not: the store keys the run by those (tasks/model_id.py), so republishing a
    resumed run's bit-identical model adds no run; other weights do."""
    import time

    import keras

    from tasks.io import md5_file
    from tasks.model_id import model_id

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


def test_a_version_2_store_reads_nothing_stale_and_is_migrated(paths):
    store, export = paths
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
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5


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


def test_a_version_3_store_is_migrated_with_its_rows_marked_lstm(paths):
    store, export = paths
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
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
        by_run = dict(conn.execute("SELECT model_md5, group_concat(DISTINCT model) FROM "
                                   "forecasts GROUP BY model_md5").fetchall())  # fmt: skip
    assert by_run == {"m" * 32: "lstm", "n" * 32: "seasonal_naive"}
    assert set(read_current(store)["model"]) == {"seasonal_naive"}


# ---------------------------------------------------------------- trained_through (schema 5)
def test_a_version_4_store_gains_trained_through_unknown_on_its_old_rows(paths):
    store, export = paths
    _publish(paths)
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
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
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
