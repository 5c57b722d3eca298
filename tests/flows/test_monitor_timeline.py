"""A real timeline: publish on the series cut at 1958-12, then rerun the pipeline when 1959's
actuals have arrived; the monitor stage scores the first run's 1959 forecasts, and what it
stored equals a direct numpy computation from the two files (the first run's published export
and the raw CSV through 1959-12)."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.conftest import base_env, git_commit, run, update_params
from tests.flows import api

pytestmark = pytest.mark.slow

RAW = "data/raw/airpassengers.csv"
SEASON = 12


def cut(project: Path, last: str) -> None:
    """Keep the raw rows up to and including `last` (YYYY-MM-DD)."""
    path = project / RAW
    lines = path.read_text().splitlines()
    kept = [lines[0]] + [ln for ln in lines[1:] if ln.split(",")[1] <= last]
    path.write_text("\n".join(kept) + "\n")


def raw_series(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return (
        np.array([r["timestamp"] for r in rows], dtype="datetime64[D]"),
        np.array([float(r["value"]) for r in rows]),
    )


def table(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_second_run_scores_the_first_runs_1959_forecasts(
    project: Path, tmp_path: Path, prefect_server: str, prefect_env: dict
):
    env = base_env()
    # Run 1: history through 1958-12, publish.
    cut(project, "1958-12-01")
    git_commit(project, "data through 1958-12")
    run(["dvc", "repro"], project, env=env)
    first = json.loads((project / "metrics/publish.json").read_text())
    # The expectation is the backtest of what was published: the per-series mixture.
    backtest = json.loads((project / "metrics/evaluate.json").read_text())["published"]
    monitor_1 = json.loads((project / "metrics/monitor.json").read_text())
    assert monitor_1["scored_runs"] == 0 and monitor_1["published_runs"] == 0
    export_1 = tmp_path / "forecasts-run1.parquet"
    shutil.copyfile(project / "published/forecasts.parquet", export_1)

    # Run 2: 1959's actuals arrived.
    shutil.copyfile(Path(__file__).resolve().parents[2] / RAW, project / RAW)
    cut(project, "1959-12-01")
    git_commit(project, "data through 1959-12")
    run(["dvc", "repro"], project, env=env)

    # Direct computation from the two files.
    published = pl.read_parquet(export_1).sort("timestamp")
    times, values = raw_series(project / RAW)
    target = published["timestamp"].dt.date().to_numpy().astype("datetime64[D]")
    seen = np.isin(target, times)
    assert seen.sum() == 12  # 1959-01 .. 1959-12 of the 24 forecast months
    y = values[np.searchsorted(times, target[seen])]
    f = published["forecast"].to_numpy()[seen]
    history = values[times < target[0]]
    assert history.size == 120
    scale = np.mean(np.abs(history[SEASON:] - history[:-SEASON]))
    err = y - f
    expect = {
        "mase": np.mean(np.abs(err)) / scale,
        "rmse": np.sqrt(np.mean(err**2)),
        "smape": 200 * np.mean(np.abs(err) / (np.abs(y) + np.abs(f))),
    }
    for lv in (80, 95):
        lo = published[f"lo_{lv}"].to_numpy()[seen]
        hi = published[f"hi_{lv}"].to_numpy()[seen]
        expect[f"coverage_{lv}"] = np.mean((lo <= y) & (y <= hi))

    db = project / "published/forecasts.sqlite"
    key = first["run_key"]
    steps = table(
        db,
        "SELECT horizon_step, actual, forecast, error, scaled_error FROM monitor_steps "
        f"WHERE run_key = '{key}' ORDER BY horizon_step",
    )
    assert [s[0] for s in steps] == list(range(1, 13))
    np.testing.assert_allclose([s[1] for s in steps], y, rtol=0, atol=0)
    np.testing.assert_allclose([s[2] for s in steps], f, rtol=1e-12)
    np.testing.assert_allclose([s[3] for s in steps], err, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose([s[4] for s in steps], np.abs(err) / scale, rtol=1e-9)
    names = list(expect)
    (series_row,) = table(
        db, f"SELECT n_observed, {', '.join(names)} FROM monitor_series WHERE run_key = '{key}'"
    )
    (run_row,) = table(
        db, f"SELECT n_observed, {', '.join(names)} FROM monitor_runs WHERE run_key = '{key}'"
    )
    assert series_row[0] == run_row[0] == 12
    np.testing.assert_allclose(series_row[1:], [expect[n] for n in names], rtol=1e-9)
    np.testing.assert_allclose(run_row[1:], [expect[n] for n in names], rtol=1e-9)

    # The backtest figure the run was published with is its expectation.
    stored = dict(table(db, f"SELECT metric, value FROM run_expectations WHERE run_key = '{key}'"))
    assert stored["mase"] == pytest.approx(backtest["mase"], rel=1e-12)

    monitor = json.loads((project / "metrics/monitor.json").read_text())
    assert monitor["published_runs"] == 1 and monitor["scored_runs"] == 1
    (scored,) = monitor["runs"]
    assert scored["run_key"] == key
    for n in names:
        assert scored[n] == pytest.approx(expect[n], rel=1e-9)
    assert scored["expected"]["mase"] == pytest.approx(backtest["mase"])
    limit = backtest["mase"] * 1.5  # monitor.max_degradation: 0.5 in params.yaml
    assert scored["degraded"] == (expect["mase"] > limit)
    assert [s["horizon_step"] for s in scored["per_horizon_step"]] == list(range(1, 13))
    plot = pl.read_csv(project / "plots/monitor_errors.csv")
    assert plot.height == 12
    np.testing.assert_allclose(plot["realized_mase"].to_numpy(), np.abs(err) / scale, rtol=1e-9)
    shown = json.loads(run(["dvc", "plots", "show", "--json"], project, env=env).stdout)
    values = shown["data"]["realized error over time"][0]["content"]["data"]["values"]
    assert {"realized_mase", "expected_mase"} <= {v["field"] for v in values}
    assert monitor["drift"]["n_series"] == 1
    # The monitor's write into the store came before publish's: dvc.lock records the end state.
    assert run(["dvc", "status", "--json"], project, env=env).stdout.strip() == "{}"
    # The second run published too, and is the current one; the store holds both.
    second = json.loads((project / "metrics/publish.json").read_text())
    assert second["run_key"] != key
    assert len(table(db, "SELECT run_key FROM runs")) == 2
    print(
        "realized accuracy of the 1959 forecasts (run cut at 1958-12, 12 of 24 steps observed):",
        json.dumps({n: float(expect[n]) for n in names}),
        "backtest:",
        json.dumps({n: backtest.get(n) for n in names}),
    )

    # The alert through a real Prefect run: arrange a backtest that promised a tenth of the
    # realized error, and rerun the monitor (a changed monitor param) in the pipeline flow.
    conn = sqlite3.connect(db)
    conn.execute("UPDATE run_expectations SET value = value / 10 WHERE run_key = ?", (key,))
    conn.commit()
    conn.close()
    update_params(project, {"monitor": {"max_degradation": 0.2}})
    git_commit(project, "tighter monitoring")
    run([sys.executable, "-m", "flows.pipeline"], project, env=prefect_env)
    flow_run_id = json.loads((project / "logs/pipeline-runs.jsonl").read_text().splitlines()[-1])[
        "flow_run_id"
    ]
    event = api.wait_event(prefect_server, "forecast.accuracy.degraded", flow_run_id)
    (alert,) = event["payload"]["runs"]
    assert alert["run_key"] == key and alert["metric"] == "mase"
    assert alert["realized"] == pytest.approx(expect["mase"], rel=1e-9)
    assert alert["expected"] == pytest.approx(backtest["mase"] / 10, rel=1e-9)
    assert alert["series"] == {"airpassengers": pytest.approx(expect["mase"], rel=1e-9)}
    monitor = json.loads((project / "metrics/monitor.json").read_text())
    assert monitor["degraded"] and monitor["runs"][0]["degraded"]
    artifact = api.artifacts(prefect_server, flow_run_id)["forecast-monitor"]
    assert key[:12] in artifact["data"] and "**yes**" in artifact["data"]
    # `forecast monitor` (flows.monitoring) shows the same from the store: run 1 degraded.
    shown = json.loads(
        run([sys.executable, "-m", "flows.monitoring", "--json"], project, env=env).stdout
    )
    (row,) = shown["runs"]
    assert row["run_key"] == key and row["degraded"] is True and row["n_observed"] == 12
    assert row["mase"] == pytest.approx(expect["mase"], rel=1e-9)
    assert row["expected_mase"] == pytest.approx(backtest["mase"] / 10, rel=1e-9)
    assert row["limit"] == pytest.approx(backtest["mase"] / 10 * 1.2, rel=1e-9)
    assert [s["series_id"] for s in shown["series"]] == ["airpassengers"]
    text = run([sys.executable, "-m", "flows.monitoring"], project, env=env).stdout
    assert "1 published runs scored against their actuals; 1 degraded" in text

    # Drift gate: the newest 24 months of AirPassengers do drift (growth slowed in 1958-59:
    # KS D = 0.469 on 96 vs 24 seasonal log differences, p = 0.00025 < 0.01). With
    # monitor.drift_gate: fail publish refuses, and the current run stays.
    assert monitor["drift"]["drifted_series"] == ["airpassengers"]
    assert monitor["drift"]["series"][0]["ks_statistic"] == pytest.approx(0.46875)
    current = table(db, "SELECT run_key FROM runs ORDER BY publish_seq DESC LIMIT 1")
    update_params(project, {"monitor": {"drift_gate": "fail"}})
    proc = run(["dvc", "repro"], project, env=env, check=False)
    assert proc.returncode != 0
    assert "NOT PUBLISHED: input drift in 1 series (airpassengers)" in proc.stdout + proc.stderr
    assert json.loads((project / "metrics/monitor.json").read_text())["drift"]["blocks_publish"]
    assert table(db, "SELECT run_key FROM runs ORDER BY publish_seq DESC LIMIT 1") == current
