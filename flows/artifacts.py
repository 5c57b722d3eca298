"""What each pipeline run shows in the Prefect UI (Artifacts tab of the flow run, and the
Artifacts page under stable keys, so each key keeps its history across runs):

- `forecast-metrics`: markdown table of the LSTM against the naive baselines on the test tail,
  the gate's checks and its decision;
- `forecast-published`: table of the currently published forecasts with their model version;
- `forecast-chart`: markdown with an SVG chart (history plus published forecast) embedded as a
  data URI: no image server, no plotting dependency, nothing leaves the machine.

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
from tasks.baselines import MODELS
from tasks.metrics import METRICS
from tasks.store import INTERVAL_COLUMNS
from tasks.textfmt import clip

METRICS_KEY = "forecast-metrics"
PUBLISHED_KEY = "forecast-published"
CHART_KEY = "forecast-chart"
MAX_TABLE_ROWS = 500
MAX_CHART_SERIES = 3


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    return "n/a" if value is None else str(value)


def metrics_markdown(scores: dict, decision: dict, header: str) -> str:
    lines = [f"# Evaluation: {header}", ""]
    lines.append("| model | " + " | ".join(METRICS) + " |")
    lines.append("|---" * (len(METRICS) + 1) + "|")
    for model in MODELS:
        if model in scores:
            row = " | ".join(_fmt(scores[model].get(m)) for m in METRICS)
            lines.append(f"| {model} | {row} |")
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
    frame = pl.read_parquet(export)
    intervals = [c for c in INTERVAL_COLUMNS if c in frame.columns]
    frame = frame.select(
        "series_id",
        pl.col("timestamp").dt.strftime("%Y-%m-%d %H:%M"),
        "horizon_step",
        pl.col("forecast", *intervals).round(3),
        "model_version",
        "published_at",
    )
    return frame.head(MAX_TABLE_ROWS).to_dicts()


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
def _polyline(points: list[tuple[float, float]], colour: str, dash: str = "") -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    style = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2"{style} points="{coords}"/>'


def chart_svg(history: pl.DataFrame, forecast: pl.DataFrame, title: str) -> str:
    """History (solid) and forecast (dashed) of up to MAX_CHART_SERIES series, one panel each."""
    series = history["series_id"].unique(maintain_order=True).to_list()[:MAX_CHART_SERIES]
    width, panel, pad = 760, 220, 40
    height = panel * len(series) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad}" y="18" font-size="14">{html.escape(title)}</text>',
    ]
    for i, sid in enumerate(series):
        h = history.filter(pl.col("series_id") == sid).sort("timestamp")
        f = forecast.filter(pl.col("series_id") == sid).sort("timestamp")
        has_band = {"lo_95", "hi_95"} <= set(f.columns) and f["lo_95"].null_count() == 0
        ts = [*h["timestamp"].to_list(), *f["timestamp"].to_list()]
        vals = [*h["value"].to_list(), *f["forecast"].to_list()]
        if has_band:
            vals += [*f["lo_95"].to_list(), *f["hi_95"].to_list()]
        t0, t1 = min(ts).timestamp(), max(ts).timestamp()
        v0, v1 = min(vals), max(vals)
        top = 30 + i * panel

        def xy(t, v, t0=t0, t1=t1, v0=v0, v1=v1, top=top):
            x = pad + (t.timestamp() - t0) / max(t1 - t0, 1) * (width - 2 * pad)
            y = top + panel - pad - (v - v0) / max(v1 - v0, 1e-12) * (panel - 2 * pad)
            return x, y

        def points(frame: pl.DataFrame, column: str) -> list[tuple[float, float]]:
            return [xy(t, v) for t, v in zip(frame["timestamp"], frame[column], strict=True)]

        hist, fc = points(h, "value"), points(f, "forecast")
        if hist and fc:
            fc = [hist[-1], *fc]
        band = ""
        if has_band:
            outline = [*points(f, "hi_95"), *reversed(points(f, "lo_95"))]
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in outline)
            band = f'<polygon fill="#ff7f0e" fill-opacity="0.2" points="{coords}"/>'
        parts += [
            f'<line x1="{pad}" y1="{top + panel - pad}" x2="{width - pad}" '
            f'y2="{top + panel - pad}" stroke="#999"/>',
            f'<text x="{pad}" y="{top + 12}">{html.escape(clip(sid))}: history (blue), '
            "forecast (orange, dashed), "
            f"95% interval (shaded); {min(vals):.4g} to {max(vals):.4g}</text>",
            f'<text x="{pad}" y="{top + panel - pad + 16}">{min(ts):%Y-%m-%d}</text>',
            f'<text x="{width - pad - 70}" y="{top + panel - pad + 16}">{max(ts):%Y-%m-%d}</text>',
            band,
            _polyline(hist, "#1f77b4"),
            _polyline(fc, "#ff7f0e", "6,4"),
        ]
    parts.append("</svg>")
    return "\n".join(parts)


def chart_artifact(validated: Path, export: Path, title: str) -> str | None:
    """Markdown artifact holding the SVG chart as a data URI; returns the SVG (None if no data)."""
    if not (validated.exists() and export.exists()):
        return None
    history = pl.read_parquet(validated).select("series_id", "timestamp", "value")
    forecast = pl.read_parquet(export)
    intervals = [c for c in INTERVAL_COLUMNS if c in forecast.columns]
    forecast = forecast.select("series_id", "timestamp", "forecast", *intervals)
    svg = chart_svg(history, forecast, title)
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    create_markdown_artifact(
        markdown=f"# History and forecast\n\n![history and forecast]({uri})\n",
        key=CHART_KEY,
        description="history and published forecast",
    )
    return svg
