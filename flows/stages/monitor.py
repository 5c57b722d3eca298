"""monitor: score the published forecasts whose actuals have arrived, alert when they are worse
than their backtest promised, and test the newest data for drift.

Contract (what couples it to the other stages):
- reads `validated` (a dependency: it reruns when new actuals arrive) and, as state, the store
  and metrics/publish.json (publish's outputs: as dependencies they would be a cycle, since
  publish reads this stage's decision). metrics/publish.json names the last published run and
  the backtest figures it was published with (tasks/monitoring/analysis.py compares against those);
- writes its scores into the store's database (tables of its own, tasks/monitoring/store.py) in
  one transaction, in place; the forecasts and the current view are untouched;
- writes metrics/monitor.json, whose `drift.blocks_publish` publish reads
(tasks/monitoring/gate.py):
  that is the only way monitoring can stop a publish (monitor.drift_gate: fail).
An alert is a Prefect event `forecast.accuracy.degraded` (README "Monitoring").
"""

from __future__ import annotations

from flows.stage import NO_RUN, Stage, StageContext
from tasks import io
from tasks.config import Config

DEGRADED_EVENT = "forecast.accuracy.degraded"
# Figures of the backtest (metrics/evaluate.json "published", carried in metrics/publish.json) kept
# as a run's expectation.
EXPECTED = ("mase", "rmse", "smape", "coverage_80", "coverage_95")
# Bounds on what goes into metrics/monitor.json and the event: the store holds everything.
MAX_SERIES_LISTED = 50


def published_expectation(publish: dict | None, run_keys: set[str]) -> dict[str, dict]:
    """{run_key: backtest figures} of the last published run, from metrics/publish.json."""
    if not publish or publish.get("run_key") not in run_keys:
        return {}
    backtest = publish.get("backtest") or {}
    figures = {m: float(backtest[m]) for m in EXPECTED if backtest.get(m) is not None}
    return {publish["run_key"]: figures} if figures else {}


def run(cfg: Config, ctx: StageContext = NO_RUN) -> dict:
    import polars as pl

    from tasks.monitoring import analysis as monitor
    from tasks.monitoring import store as monitor_store
    from tasks.publishing.db import NoStore, from_config
    from tasks.publishing.lineage import utc_now
    from tasks.publishing.transaction import recover

    p = STAGE.path
    recover(p("publish_journal"))  # a publish killed mid-rename is completed first
    m = cfg.monitor
    validated = pl.read_parquet(p("validated"))
    report = monitor.drift(
        validated,
        window=m.drift_window or cfg.forecast.horizon,
        season_length=cfg.data.season_length,
        log=cfg.prepare.transform in ("log", "auto"),  # auto: per series, as prepare does
        alpha=m.drift_alpha,
    )
    decision = monitor.drift_decision(report, m.drift_gate)
    store = from_config(cfg)  # the SQLite file publish.store, or the server publish.url names
    scored_at = utc_now()
    summary: dict = {"scored_at": scored_at, "store": store.masked}
    alerts: list[dict] = []
    plot = pl.DataFrame(
        schema={
            "timestamp": pl.String,
            "run": pl.String,
            "realized_mase": pl.Float64,
            "realized_abs_error": pl.Float64,
            "expected_mase": pl.Float64,
        }
    )
    try:
        runs, forecasts = monitor_store.read_published(store)
    except NoStore:  # nothing published yet
        runs = None
    if runs is not None:
        realized = monitor.score_published(forecasts, validated, cfg.data.season_length)
        publish_path = p("metrics_publish")
        publish = io.read_json(publish_path) if publish_path.exists() else None
        new = published_expectation(publish, set(runs["run_key"]))
        stored = monitor_store.read_expectations(store)
        expected = {**new, **stored}  # the first figure recorded for a run stays
        alerts = monitor.degraded(realized, expected, m.metric, m.max_degradation)
        if realized.runs.height or set(new) - set(stored):
            monitor_store.write_monitor(
                store,
                {
                    "monitor_steps": realized.steps,
                    "monitor_series": realized.series,
                    "monitor_runs": realized.runs,
                },
                new,
                source=str(publish_path),
                scored_at=scored_at,
            )
        summary |= run_summary(runs, realized, expected, alerts)
        plot = error_plot(runs, realized, expected)
    else:
        summary |= {"published_runs": 0, "scored_runs": 0, "runs": []}
    summary["alerts"] = alerts
    summary["degraded"] = bool(alerts)
    summary["drift"] = decision | {
        "window": m.drift_window or cfg.forecast.horizon,
        "alpha": m.drift_alpha,
        "series": report.filter(pl.col("drifted").fill_null(False))
        .head(MAX_SERIES_LISTED)
        .to_dicts(),
    }
    io.write_atomic(p("plot_monitor"), plot.write_csv)
    io.write_json(p("metrics_monitor"), summary)
    if alerts and ctx.flow_run_id is not None:
        emit_degraded(alerts, ctx.flow_run_id)
    return summary


def run_summary(runs, realized, expected: dict, alerts: list[dict]) -> dict:
    """Per scored run: its figures, the backtest's, and the error per horizon step."""
    import polars as pl

    degraded = {a["run_key"] for a in alerts}
    published = {r["run_key"]: r for r in runs.iter_rows(named=True)}
    out = []
    for row in realized.runs.iter_rows(named=True):
        key = row["run_key"]
        steps = realized.horizon.filter(pl.col("run_key") == key).drop("run_key")
        out.append(
            {
                **row,
                "published_at": published[key]["published_at"],
                "model_md5": published[key]["model_md5"],
                "expected": expected.get(key),
                "degraded": key in degraded,
                "per_horizon_step": steps.to_dicts(),
            }
        )
    return {"published_runs": runs.height, "scored_runs": len(out), "runs": out}


def error_plot(runs, realized, expected: dict):
    """plots/monitor_errors.csv: per run and target time, the realized MASE and absolute error
    (mean over series) beside the run's backtest MASE."""
    import polars as pl

    from tasks.publishing.store import TS_FORMAT

    exp = pl.DataFrame(
        {
            "run_key": list(expected),
            "expected_mase": [expected[k].get("mase") for k in expected],
        },
        schema={"run_key": pl.String, "expected_mase": pl.Float64},
    )
    return (
        realized.steps.group_by("run_key", "timestamp")
        .agg(
            pl.col("scaled_error").mean().alias("realized_mase"),
            pl.col("abs_error").mean().alias("realized_abs_error"),
        )
        .join(exp, on="run_key", how="left")
        .join(runs.select("run_key", "publish_seq"), on="run_key")
        .sort("timestamp", "publish_seq")
        .select(
            pl.col("timestamp").dt.strftime(TS_FORMAT),
            pl.col("run_key").str.slice(0, 12).alias("run"),
            "realized_mase",
            "realized_abs_error",
            "expected_mase",
        )
    )


def emit_degraded(alerts: list[dict], flow_run_id: str) -> None:
    """The alert: one Prefect event naming the degraded runs and series, realized vs expected
    (an automation turns it into a notification, README "Monitoring")."""
    from prefect.events import emit_event
    from prefect.logging import get_logger

    payload = {
        "runs": [
            a | {"series": dict(list(a["series"].items())[:MAX_SERIES_LISTED])}
            for a in alerts[:MAX_SERIES_LISTED]
        ],
        "n_runs": len(alerts),
    }
    try:
        emit_event(
            event=DEGRADED_EVENT,
            resource={
                "prefect.resource.id": f"forecast.monitor.{flow_run_id}",
                "prefect.resource.name": "forecast accuracy",
            },
            related=[
                {
                    "prefect.resource.id": f"prefect.flow-run.{flow_run_id}",
                    "prefect.resource.role": "flow-run",
                }
            ],
            payload=payload,
        )
    except Exception as err:  # metrics/monitor.json still records the alert
        get_logger("forecast").warning("could not emit %s: %s", DEGRADED_EVENT, err)


def monitor_markdown(summary: dict, header: str) -> str:
    def fmt(v) -> str:
        return "n/a" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = [f"# Monitoring: {header}", ""]
    if not summary.get("runs"):
        lines.append("No published forecast has an observed target yet.")
    else:
        lines += [
            "| run | published | observed | MASE | backtest MASE | RMSE | sMAPE | "
            "cov. 80 | cov. 95 | degraded |",
            "|---" * 10 + "|",
        ]
        for r in summary["runs"]:
            exp = (r.get("expected") or {}).get("mase")
            lines.append(
                f"| {r['run_key'][:12]} | {r['published_at']} | {r['n_observed']} | "
                f"{fmt(r['mase'])} | {fmt(exp)} | {fmt(r['rmse'])} | {fmt(r['smape'])} | "
                f"{fmt(r['coverage_80'])} | {fmt(r['coverage_95'])} | "
                f"{'**yes**' if r['degraded'] else 'no'} |"
            )
    drift = summary.get("drift", {})
    drifted = drift.get("drifted_series", [])
    lines += [
        "",
        f"Input drift (KS test, newest {drift.get('window')} steps, alpha {drift.get('alpha')}): "
        f"{len(drifted)} of {drift.get('n_series')} series drifted"
        + (f" ({', '.join(map(str, drifted[:20]))})" if drifted else "")
        + f"; gate: {drift.get('gate')}"
        + (", **publishing blocked**" if drift.get("blocks_publish") else ""),
    ]
    return "\n".join(lines)


def ui_artifacts(cfg: Config, header: str) -> None:
    from prefect.artifacts import create_markdown_artifact

    path = STAGE.path("metrics_monitor")
    if path.exists():
        create_markdown_artifact(
            key="forecast-monitor",
            markdown=monitor_markdown(io.read_json(path), header),
            description="Realized accuracy of the published forecasts and input drift",
        )


STAGE = Stage(
    name="monitor",
    run=run,
    reads=("validated",),
    writes=("metrics_monitor", "plot_monitor"),
    state=("store", "metrics_publish"),
    scratch=("publish_journal",),
    params=(
        "data.season_length",
        "forecast.horizon",
        "prepare.transform",
        "publish.store",
        "monitor",
    ),
    ui_artifacts=ui_artifacts,
    description="realized accuracy of published forecasts, alerts, input drift",
)
