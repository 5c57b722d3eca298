"""What each pipeline run shows in the Prefect UI (Artifacts tab of the flow run, and the
Artifacts page under stable keys, so each key keeps its history across runs):

- `forecast-metrics`: markdown table of the LSTM against the naive baselines on the test tail,
  the gate's checks and its decision;
- `forecast-published`: table of the currently published forecasts with their model version;
- `forecast-chart`: markdown with a PNG chart (tasks/charts.py: history, published forecast and
  its 80/95 % intervals for the largest series) embedded as a data URI: no image server,
  nothing leaves the machine.

Only metrics, forecasts and hashes go in: no params values, paths outside the repo or secrets.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import polars as pl
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks import io
from tasks.evaluation.baselines import ALL_MODELS
from tasks.evaluation.metrics import METRICS
from tasks.publishing.store import INTERVAL_COLUMNS
from tasks.series_ids import show

METRICS_KEY = "forecast-metrics"
PUBLISHED_KEY = "forecast-published"
CHART_KEY = "forecast-chart"
MAX_TABLE_ROWS = 500


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    return "n/a" if value is None else str(value)


def metrics_markdown(scores: dict, decision: dict, header: str) -> str:
    lines = [f"# Evaluation: {header}", ""]
    used = scores.get("covariates")
    if used:  # data.covariates: what the LSTM read besides the values
        order = ("past", "future", "static")  # the JSON file has them sorted by name
        kinds = [f"{kind}: {', '.join(used[kind])}" for kind in order if used.get(kind)]
        lines += ["Covariates the model used: " + "; ".join(kinds), ""]
    lines.append("| model | " + " | ".join(METRICS) + " |")
    lines.append("|---" * (len(METRICS) + 1) + "|")
    for model in ALL_MODELS:
        if model in scores:
            row = " | ".join(_fmt(scores[model].get(m)) for m in METRICS)
            lines.append(f"| {model} | {row} |")
    if "published" in scores:  # the per-series mixture, scored on the latest fold alone
        row = " | ".join(_fmt(scores["published"].get(m)) for m in METRICS)
        lines.append(f"| published (latest fold) | {row} |")
        counts = scores.get("selection", {}).get("counts", {})
        lines += [
            "",
            "Series published by each model: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
        ]
    coverage = {
        k[len("coverage_") :]: v
        for k, v in scores.get("lstm", {}).items()
        if k.startswith("coverage_")
    }
    if coverage:
        lines += [
            "",
            "Backtest coverage of the LSTM's intervals: "
            + ", ".join(f"{level}% interval {_fmt(v)}" for level, v in sorted(coverage.items())),
        ]
    lines += ["", "## Gate", "", "| check | value | threshold | passed |", "|---|---|---|---|"]
    for check in decision.get("checks", []):
        mark = "yes" if check.get("passed") else "**no**"
        lines.append(
            f"| {check['name']} | {_fmt(check.get('value'))} | {_fmt(check.get('threshold'))} "
            f"| {mark} |"
        )
    improvement = decision.get("improvement_over_seasonal_naive")
    lines += ["", f"RMSE improvement over seasonal naive: {_fmt(improvement)}", ""]
    if decision.get("passed"):
        lines.append("**Decision: PASSED** - the model may be published.")
    else:
        reasons = "; ".join(decision.get("reasons", [])) or "see metrics/gate.json"
        lines.append(f"**Decision: NOT PUBLISHED** - {reasons}")
    return "\n".join(lines) + "\n"


def metrics_artifact(scores: Path, gate: Path, header: str) -> str | None:
    """Markdown artifact of the evaluate stage's scores and gate decision (None when absent)."""
    if not (scores.exists() and gate.exists()):
        return None
    text = metrics_markdown(io.read_json(scores), io.read_json(gate), header)
    create_markdown_artifact(markdown=text, key=METRICS_KEY, description="metrics and gate")
    return text


def forecast_rows(export: Path) -> list[dict]:
    frame = pl.read_parquet(export).head(MAX_TABLE_ROWS)
    intervals = [c for c in INTERVAL_COLUMNS if c in frame.columns]
    frame = frame.select(
        pl.col("series_id").map_elements(show, return_dtype=pl.String),  # `a ` apart from `a`
        pl.col("timestamp").dt.strftime("%Y-%m-%d %H:%M"),
        "horizon_step",
        pl.col("forecast", *intervals).round(3),
        "model_version",
        "published_at",
    )
    return frame.to_dicts()


def published_artifact(export: Path) -> int:
    """Table artifact of the current published forecasts; returns the number of rows shown."""
    if not export.exists():
        return 0
    rows = forecast_rows(export)
    create_table_artifact(
        table=rows, key=PUBLISHED_KEY, description=f"published forecasts ({export})"
    )
    return len(rows)


# ---------------------------------------------------------------- chart
def _code(series_id: str) -> str:
    """A series id inside a markdown code span: bounded, one line, no backtick to end it early
    (inside a code span the renderer shows HTML as text), and told apart from ids that differ
    by surrounding whitespace (tasks.series_ids.show quotes those and any line break)."""
    return show(series_id).replace("`", "'")


def chart_markdown(png: bytes, series: list[str], title: str) -> str:
    """The chart as a PNG data URI in markdown (the UI renders it: no image server, nothing leaves
    the machine), with the series it shows as text, escaped: markdown renders HTML."""
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    shown = ", ".join(f"`{_code(s)}`" for s in series) or "none"
    return (
        f"# {html.escape(title)}\n\n![history and forecast with 80 and 95 % intervals]({uri})\n\n"
        f"Series shown ({len(series)}, largest first unless picked): {shown}. Legend: history "
        "(blue), forecast (orange, dashed), 80 % and 95 % prediction intervals (shaded).\n"
    )


def chart_artifact(
    validated: Path, export: Path, title: str, series: list[str] | None = None
) -> bytes | None:
    """Markdown artifact `forecast-chart` holding a PNG (tasks/charts.py) of the history and
    published forecast with its intervals, for `series` or the largest; returns the PNG (None
    if no data)."""
    from tasks import charts

    if not (validated.exists() and export.exists()):
        return None
    shown, history = charts.chart_history(pl.scan_parquet(validated), series)
    forecast = pl.read_parquet(export)
    intervals = [c for c in INTERVAL_COLUMNS if c in forecast.columns]
    forecast = forecast.select("series_id", "timestamp", "forecast", *intervals)
    png = charts.forecast_chart(history, forecast, shown, title)
    create_markdown_artifact(
        markdown=chart_markdown(png, shown, "History and forecast"),
        key=CHART_KEY,
        description="history and published forecast with 80/95 % intervals",
    )
    return png
