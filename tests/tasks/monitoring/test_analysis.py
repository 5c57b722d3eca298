"""Pure scoring, alert and drift functions of tasks/monitoring/analysis.py, and the monitor's tables
in a real store (tasks/monitoring/store.py)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import numpy as np
import polars as pl
import pytest
import scipy.special
import scipy.stats

from tasks.errors import GateFailed
from tasks.monitoring import analysis as monitor
from tasks.monitoring import store as monitor_store
from tasks.monitoring.analysis import (
    Realized,
    degraded,
    drift,
    drift_decision,
    ks_2samp,
    score_published,
)
from tasks.monitoring.gate import check_drift
from tasks.publishing import store

SEASON = 4


def months(start: int, n: int) -> list[datetime]:
    return [datetime(2000 + (start + i) // 12, (start + i) % 12 + 1, 1) for i in range(n)]


def actuals(values: list[float], sid: str = "a") -> pl.DataFrame:
    return pl.DataFrame({"series_id": sid, "timestamp": months(0, len(values)), "value": values})


def forecasts(key: str, sid: str, start: int, values, lo80=None, hi80=None) -> pl.DataFrame:
    n = len(values)
    frame = pl.DataFrame(
        {
            "run_key": key,
            "series_id": sid,
            "timestamp": months(start, n),
            "horizon_step": list(range(1, n + 1)),
            "forecast": [float(v) for v in values],
            "lo_80": lo80 if lo80 is not None else [None] * n,
            "hi_80": hi80 if hi80 is not None else [None] * n,
            "lo_95": [None] * n,
            "hi_95": [None] * n,
        },
        schema_overrides={c: pl.Float64 for c in ("lo_80", "hi_80", "lo_95", "hi_95")},
    )
    return frame


HISTORY = [10.0, 20.0, 30.0, 40.0, 12.0, 24.0, 33.0, 41.0]  # origin after 8 steps
ACTUALS = HISTORY + [15.0, 22.0, 35.0]  # 3 of the run's 4 targets observed


def test_scores_equal_hand_computation():
    f = forecasts("r1", "a", 8, [14.0, 25.0, 30.0, 50.0], [13.0, 20.0, 31.0, 40.0],
                  [16.0, 23.0, 34.0, 60.0])  # fmt: skip
    got = score_published(f, actuals(ACTUALS), SEASON)
    # seasonal naive MAE of the history: |12-10|, |24-20|, |33-30|, |41-40| -> 2.5
    scale = 2.5
    y, p = np.array([15.0, 22.0, 35.0]), np.array([14.0, 25.0, 30.0])
    err = y - p
    (row,) = got.series.to_dicts()
    assert row["n_observed"] == 3
    assert row["mase"] == pytest.approx(np.mean(np.abs(err)) / scale)
    assert row["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)))
    assert row["smape"] == pytest.approx(200 * np.mean(np.abs(err) / (y + p)))
    # 15 in [13, 16]; 22 in [20, 23]; 35 not in [31, 34]
    assert row["coverage_80"] == pytest.approx(2 / 3)
    assert row["coverage_95"] is None  # no 95 % interval published
    assert got.steps["scaled_error"].to_list() == pytest.approx(list(np.abs(err) / scale))
    assert got.steps["in_80"].to_list() == [1.0, 1.0, 0.0]
    assert got.horizon["horizon_step"].to_list() == [1, 2, 3]
    (run,) = got.runs.to_dicts()
    assert run["n_series"] == 1 and run["n_observed"] == 3


def test_scale_is_the_history_before_each_runs_origin():
    """Two runs of one series: each is scaled by the history before its own first target."""
    values = [10.0, 20.0, 30.0, 40.0, 12.0, 24.0, 33.0, 41.0, 20.0, 30.0, 40.0, 50.0]
    f = pl.concat(
        [
            forecasts("r1", "a", 8, [20.0, 30.0, 40.0, 50.0]),
            forecasts("r2", "a", 9, [31.0, 41.0, 51.0]),
        ]
    )
    got = score_published(f, actuals(values), SEASON)
    r1, r2 = got.series.sort("run_key").to_dicts()
    assert r1["mase"] == 0.0
    scale_2 = np.mean(np.abs(np.array(values[4:9]) - np.array(values[:5])))
    assert r2["mase"] == pytest.approx(1.0 / scale_2)


def test_nothing_observed_scores_nothing():
    f = forecasts("r1", "a", 20, [1.0, 2.0])
    got = score_published(f, actuals(ACTUALS), SEASON)
    assert got.steps.height == got.series.height == got.runs.height == 0


def test_undefined_scale_gives_null_mase_not_an_error():
    f = forecasts("r1", "a", 3, [1.0])  # only 3 history values: no seasonal naive
    got = score_published(f, actuals(ACTUALS), SEASON)
    assert got.series["mase"].to_list() == [None]
    assert got.series["rmse"].to_list() == [pytest.approx(abs(40.0 - 1.0))]


def test_degraded_names_runs_and_series_over_the_limit():
    series = pl.DataFrame(
        {"run_key": ["r1", "r1", "r2"], "series_id": ["a", "b", "a"], "mase": [0.5, 2.0, 0.7]}
    )
    runs = pl.DataFrame({"run_key": ["r1", "r2"], "mase": [1.25, 0.7], "n_observed": [6, 3]})
    realized = Realized(steps=pl.DataFrame(), series=series, runs=runs, horizon=pl.DataFrame())
    expected = {"r1": {"mase": 0.8}, "r2": {"mase": 0.6}}
    (alert,) = degraded(realized, expected, "mase", 0.5)  # limits 1.2 and 0.9
    assert alert["run_key"] == "r1" and alert["realized"] == 1.25
    assert alert["expected"] == 0.8 and alert["limit"] == pytest.approx(1.2)
    assert alert["series"] == {"b": 2.0}
    assert degraded(realized, expected, "mase", 0.6) == []  # limit 1.28
    assert degraded(realized, {}, "mase", 0.0) == []  # no backtest figure: not judged


def test_ks_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=60), rng.normal(0.8, 1.0, size=12)
    d, p = ks_2samp(a, b)
    assert d == pytest.approx(scipy.stats.ks_2samp(a, b).statistic, abs=1e-12)
    en = np.sqrt(60 * 12 / 72)
    assert p == pytest.approx(scipy.special.kolmogorov((en + 0.12 + 0.11 / en) * d), abs=1e-9)
    assert ks_2samp(a, a) == (0.0, 1.0)
    with pytest.raises(ValueError, match="non-empty"):
        ks_2samp([], b)


def seasonal(n: int, growth: float, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.exp(5 + growth * t + 0.2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, noise, n))


def test_drift_flags_a_changed_series_not_a_steady_trend():
    steady = seasonal(120, 0.01, 0.02, 1)
    broken = seasonal(120, 0.01, 0.02, 2)
    broken[-24:] *= np.exp(np.linspace(0.0, 1.5, 24))  # growth jumps in the newest 2 years
    frame = pl.concat(
        [
            pl.DataFrame({"series_id": sid, "timestamp": months(0, 120), "value": v})
            for sid, v in (("steady", steady), ("broken", broken))
        ]
    )
    report = drift(frame, window=24, season_length=12, log=True, alpha=0.01).sort("series_id")
    assert report["series_id"].to_list() == ["broken", "steady"]
    assert report["drifted"].to_list() == [True, False]
    assert report["n_recent"].to_list() == [24, 24]
    assert report["n_reference"].to_list() == [84, 84]
    decision = drift_decision(report, "fail")
    assert decision["drifted_series"] == ["broken"] and decision["blocks_publish"]
    assert not drift_decision(report, "warn")["blocks_publish"]
    with pytest.raises(GateFailed, match="input drift in 1 series"):
        check_drift({"drift": decision})
    check_drift({"drift": drift_decision(report, "warn")})  # warn: publishing goes on


def test_drift_takes_logs_only_of_a_positive_series():
    # prepare.transform auto: logs where every value is positive, raw values elsewhere; a zero
    # never becomes -inf (which would make the KS test meaningless).
    intermittent = np.tile([0.0, 0.0, 3.0, 0.0, 5.0, 1.0], 20)
    frame = pl.DataFrame({"series_id": "s", "timestamp": months(0, 120), "value": intermittent})
    report = drift(frame, window=24, season_length=12, log=True, alpha=0.01)
    assert report["drifted"].to_list() == [False]
    assert np.isfinite(report["ks_statistic"].to_numpy()).all()


def test_drift_reports_too_short_series_as_untested():
    frame = pl.DataFrame(
        {"series_id": "s", "timestamp": months(0, 14), "value": 1.0 + np.arange(14)}
    )
    report = drift(frame, window=12, season_length=12, log=False, alpha=0.01)
    assert report["drifted"].to_list() == [None]
    assert drift_decision(report, "fail") | {} == {
        "gate": "fail",
        "drifted_series": [],
        "n_series": 1,
        "not_tested": ["s"],
        "blocks_publish": False,
    }


LINEAGE = {
    "model_version": "m",
    "git_commit": "c",
    "data_md5": "d",
    "params_md5": "p",
    "model_md5": "mm",
    "flow_run_id": "none",
    "published_at": "2026-01-01T00:00:00Z",
    "trained_through": "2025-12-01T00:00:00",
    "covariates": "{}",
}


def test_scores_round_trip_through_the_store_and_leave_the_forecasts_alone(tmp_path):
    db, export = tmp_path / "pub/forecasts.sqlite", tmp_path / "pub/forecasts.parquet"
    f = forecasts("x", "a", 8, [14.0, 25.0, 30.0, 50.0]).drop("run_key", "lo_80", "hi_80",
                                                              "lo_95", "hi_95")  # fmt: skip
    summary = store.publish_forecasts(f, LINEAGE, db, export)
    key = summary["run_key"]
    version_before = sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0]
    runs, published = monitor_store.read_published(db)
    assert runs["run_key"].to_list() == [key]
    realized = score_published(published, actuals(ACTUALS), SEASON)
    tables = {
        "monitor_steps": realized.steps,
        "monitor_series": realized.series,
        "monitor_runs": realized.runs,
    }
    journal = store.journal_for(db)
    monitor_store.write_monitor(db, tables, {key: {"mase": 0.5}}, "t", "now")
    # Rescoring replaces a run's rows; the first expectation stays.
    monitor_store.write_monitor(db, tables, {key: {"mase": 9.0}}, "t", "later")
    steps = monitor_store.read_scores(db, "monitor_steps")
    assert steps.height == 3 and set(steps["scored_at"]) == {"later"}
    assert steps["actual"].to_list() == [15.0, 22.0, 35.0]
    series = monitor_store.read_scores(db, "monitor_series")
    assert series["mase"].to_list() == pytest.approx(realized.series["mase"].to_list())
    assert monitor_store.read_expectations(db) == {key: {"mase": 0.5}}
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == version_before
    assert conn.execute("SELECT component, version FROM schema_versions").fetchall() == [
        ("monitor", monitor_store.SCHEMA_VERSION)
    ]
    conn.close()
    # A later publish (which migrates the store in place) keeps the monitor's tables.
    store.publish_forecasts(f.with_columns(pl.col("forecast") + 1), LINEAGE | {"data_md5": "e"},
                            db, export)  # fmt: skip
    assert monitor_store.read_scores(db, "monitor_runs").height == 1
    assert not journal.exists()


def test_a_newer_monitor_schema_is_refused(tmp_path):
    db, export = tmp_path / "forecasts.sqlite", tmp_path / "forecasts.parquet"
    f = forecasts("x", "a", 8, [14.0]).drop("run_key", "lo_80", "hi_80", "lo_95", "hi_95")
    store.publish_forecasts(f, LINEAGE, db, export)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER)")
    conn.execute("INSERT INTO schema_versions VALUES ('monitor', 99)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(ValueError, match="schema version 99"):
        monitor_store.write_monitor(db, {}, {"k": {"mase": 1.0}}, "t", "n")
    assert db.read_bytes() == before
    assert monitor.SCORES[0] == "mase"


WRITE_SCORES = """
import sys
from datetime import datetime
import polars as pl
from tasks.monitoring import store as monitor_store
from tasks.publishing import store
from tasks.monitoring.analysis import score_published

db = sys.argv[1]
runs, published = monitor_store.read_published(db)
actuals = pl.DataFrame({"series_id": "a", "timestamp": [datetime(2000, m, 1) for m in range(1, 13)],
                        "value": [float(v) for v in range(10, 22)]})
realized = score_published(published, actuals, 4)
tables = {"monitor_steps": realized.steps, "monitor_series": realized.series,
          "monitor_runs": realized.runs}
monitor_store.write_monitor(db, tables, {}, "t", "now")
"""


@pytest.mark.parametrize(
    ("point", "scored"),
    [("monitor.written", False), ("monitor.committed", True)],
)
def test_a_killed_monitor_write_leaves_the_old_store_or_is_rolled_forward(tmp_path, point, scored):
    """A real SIGKILL (tasks/faults.py) while the scores are written: before the COMMIT the
    database file is byte for byte the old one (SQLite rolls the transaction back at the next
    open); after it, the scores are there."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tasks.publishing.transaction import recover

    db, export = tmp_path / "forecasts.sqlite", tmp_path / "forecasts.parquet"
    f = pl.DataFrame(
        {
            "series_id": "a",
            "timestamp": months(8, 4),
            "horizon_step": [1, 2, 3, 4],
            "forecast": [18.0, 19.0, 20.0, 21.0],
        }
    )
    store.publish_forecasts(f, LINEAGE, db, export)
    before = db.read_bytes()
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "FORECAST_KILL_AT": point}
    proc = subprocess.run(
        [sys.executable, "-c", WRITE_SCORES, str(db)], cwd=root, env=env, capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    if not scored:
        assert db.read_bytes() == before
    recover(store.journal_for(db))
    assert not store.journal_for(db).exists()
    assert monitor_store.read_scores(db, "monitor_runs").height == (1 if scored else 0)
    assert store.read_current(db)["forecast"].to_list() == [18.0, 19.0, 20.0, 21.0]


def test_scores_round_trip_through_a_postgresql_store_like_a_sqlite_one(tmp_path, pg_url):
    """The monitor's tables live beside the forecasts on a server store too: the same scores
    written and read back from PostgreSQL equal those from the SQLite file."""
    f = forecasts("x", "a", 8, [14.0, 25.0, 30.0, 50.0]).drop("run_key", "lo_80", "hi_80",
                                                              "lo_95", "hi_95")  # fmt: skip
    read = {}
    for name, db in (("sqlite", tmp_path / "pub/forecasts.sqlite"), ("postgresql", pg_url)):
        key = store.publish_forecasts(f, LINEAGE, db, tmp_path / f"{name}.parquet")["run_key"]
        runs, published = monitor_store.read_published(db)
        realized = score_published(published, actuals(ACTUALS), SEASON)
        tables = {"monitor_steps": realized.steps, "monitor_series": realized.series,
                  "monitor_runs": realized.runs}  # fmt: skip
        monitor_store.write_monitor(db, tables, {key: {"mase": 0.5}}, "t", "now")
        monitor_store.write_monitor(db, tables, {key: {"mase": 9.0}}, "t", "later")
        read[name] = (
            {t: monitor_store.read_scores(db, t) for t in tables},
            monitor_store.read_expectations(db),
        )
    (sqlite_scores, sqlite_expected), (pg_scores, pg_expected) = read["sqlite"], read["postgresql"]
    assert pg_expected == sqlite_expected == {key: {"mase": 0.5}}
    for table, frame in sqlite_scores.items():
        assert frame.height > 0 and pg_scores[table].equals(frame), table
    assert pg_scores["monitor_steps"]["actual"].to_list() == [15.0, 22.0, 35.0]
