"""The run report: one self-contained HTML file (`reports/run.html`) a person can open or mail.

It says first how the run ended (flows/outcome.py: published, nothing changed, ingest refused,
the gate refused, a stage crashed) and which data it ran on, then the backtest scores of the
LSTM against the baselines, the gate's decision with every check, the published forecasts' run,
charts (tasks/charts.py, inlined as SVG: no external file, script or font), and this run's
quarantined series and the series a candidate publishes instead of the LSTM (with each reason).
Sections from stages this run did not reach are marked as an earlier run's.

The pipeline flow writes it when a run ends, whatever the outcome (a hook, `write_run_report`:
a run the gate refused gets a report that says why), `forecast stage` after a stage, and
`forecast report` on demand (after `dvc repro`, or for the series a user picks with `--series`).
It is built from what is on disk, so it shows the last evaluation and the forecasts currently
published. Not from inside the stages: the report's code would then be a DVC dependency of
evaluate and publish, and a change of its layout would re-run the backtest and re-publish.

Split like the stages: `collect` reads the files, `render_html` is a pure function of what was
read (every value from data is HTML-escaped there), `write_report` writes atomically.

Per-series rows come from ingest's quarantine listing (metrics/ingest.json) and evaluate's
choice (models/selection.json); a module recording other per-series outcomes appends its
catalog key to SERIES_STATUS_KEYS (JSON `{"series": [{"series_id", "status", "reason"}, ...]}`).
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from flows.outcome import Outcome, on_disk
from tasks import catalog, io
from tasks.config import Config
from tasks.textfmt import VALUE_CHARS, clip

log = logging.getLogger("forecast")

# Catalog keys of further per-series status files (see the module docstring).
SERIES_STATUS_KEYS: list[str] = []
MAX_STATUS_ROWS = 500
# Catalog keys `collect` reads: a stage that writes one of them changes the report.
INPUTS = frozenset({"metrics_evaluate", "metrics_gate", "validated", "store", "export",
                    "plot_backtest_forecast", "plot_horizon_errors", "metrics_ingest",
                    "selection"})  # fmt: skip


@dataclass(frozen=True)
class Chart:
    title: str
    svg: str  # an <svg> element (no XML prolog), trusted: drawn by tasks/charts.py
    caption: str = ""


@dataclass(frozen=True)
class ReportData:
    title: str
    generated_at: str
    scores: dict | None = None  # metrics/evaluate.json
    gate: dict | None = None  # metrics/gate.json
    published: str | None = None  # one line: which run's forecasts are published
    series_shown: list[str] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    series_status: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be shown, and why
    outcome: Outcome | None = None  # how the run ended (None: as `forecast report` on demand)
    data_line: str = ""  # this run's data: path, md5, series and rows


# ---------------------------------------------------------------- pure rendering
def _e(value: object, limit: int = VALUE_CHARS) -> str:
    return html.escape(clip(value, limit), quote=True)


def _num(value: object) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    return "n/a" if value is None else _e(value)


def _table(header: Sequence[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _metrics_section(scores: dict | None) -> str:
    from tasks.evaluation.baselines import ALL_MODELS
    from tasks.evaluation.metrics import METRICS

    if not scores:
        return "<p>No backtest scores yet (metrics/evaluate.json): run the evaluate stage.</p>"
    rows = [[_e(m), *(_num(scores[m].get(k)) for k in METRICS)] for m in ALL_MODELS if m in scores]
    if "published" in scores:  # the per-series mixture, scored on the latest fold alone
        rows.append(
            ["published (latest fold)", *(_num(scores["published"].get(k)) for k in METRICS)]
        )
    coverage = sorted(
        (k.removeprefix("coverage_"), v)
        for k, v in scores.get("lstm", {}).items()
        if k.startswith("coverage_")
    )
    text = _table(["model", *METRICS], rows, "metrics")
    if coverage:
        text += (
            "<p>Backtest coverage of the LSTM's intervals: "
            + ", ".join(f"{_e(level)} % interval {_num(v)}" for level, v in coverage)
            + "</p>"
        )
    return text


def _gate_section(gate: dict | None, earlier: bool = False) -> str:
    if not gate:
        return "<p>No gate decision yet (metrics/gate.json).</p>"
    passed = bool(gate.get("passed"))
    if earlier:  # not this run's: no green or red verdict that could be read as this run's
        said = "passed" if passed else "refused"
        verdict = f'<p class="decision earlier">An earlier run\'s decision: {said}.</p>'
    elif passed:
        verdict = '<p class="decision passed">Decision: PASSED: the model may be published.</p>'
    else:
        reasons = "; ".join(clip(r, 500) for r in gate.get("reasons", [])) or "see gate.json"
        verdict = f'<p class="decision refused">Decision: NOT PUBLISHED: {html.escape(reasons)}</p>'
    rows = [
        [
            _e(c.get("name")),
            _num(c.get("value")),
            _num(c.get("threshold")),
            "yes" if c.get("passed") else "<strong>no</strong>",
        ]
        for c in gate.get("checks", [])
    ]
    text = verdict + _table(["check", "value", "threshold", "passed"], rows, "gate")
    champion = gate.get("champion") or {}
    if champion.get("status") == "compared":
        md5 = _e(str(champion.get("md5"))[:12])
        text += (
            f"<p>Against the champion (model published last, md5 {md5})"
            f" on {_e(champion.get('metric'))}: champion {_num(champion.get('champion'))}, "
            f"this model {_num(champion.get('challenger'))}.</p>"
        )
    elif champion.get("status"):
        text += f"<p>Champion: {_e(champion.get('status'))}.</p>"
    for note in gate.get("notes", []):
        text += f"<p class='note'>{_e(note, 500)}</p>"
    return text


def _status_section(rows: list[dict]) -> str:
    if not rows:
        return "<p>None reported.</p>"
    cells = [
        [_e(r.get("series_id")), _e(r.get("status")), _e(r.get("reason", ""), 300)]
        for r in rows[:MAX_STATUS_ROWS]
    ]
    more = len(rows) - MAX_STATUS_ROWS
    tail = f"<p>... {more} more (see the files named above)</p>" if more > 0 else ""
    return _table(["series", "status", "reason"], cells, "status") + tail


def _outcome_section(outcome: Outcome, data_line: str) -> str:
    cls = "passed" if outcome.ok else "refused"
    text = (
        f'<p class="outcome {cls}" id="outcome-{_e(outcome.kind)}">{_e(outcome.headline, 600)}</p>'
    )
    if outcome.detail:
        text += f'<pre class="detail">{_e(outcome.detail, 4000)}</pre>'
    if data_line:
        text += f'<p class="data">{_e(data_line, 1000)}</p>'
    return text


CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:right}td:first-child,th:first-child{text-align:left}
.decision{font-weight:bold;padding:.4em .6em;border-radius:4px}
.passed{background:#e6f4ea;color:#1e6b34}.refused{background:#fde8e8;color:#9b1c1c}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}figcaption{color:#555}
.meta{color:#555}.earlier{background:#eee;color:#444}
.outcome{font-weight:bold;font-size:1.15em;padding:.5em .7em;border-radius:4px}
pre.detail{white-space:pre-wrap;background:#f6f6f6;padding:.6em;max-height:30em;overflow:auto}
"""


def render_html(data: ReportData) -> str:
    """The report as one HTML document; every value from data or files is escaped here."""
    charts = "".join(
        f'<figure class="chart" data-title="{_e(c.title)}"><h3>{_e(c.title)}</h3>{c.svg}'
        f"<figcaption>{_e(c.caption, 2000)}</figcaption></figure>"
        for c in data.charts
    )
    notes = "".join(f"<li>{_e(n, 500)}</li>" for n in data.notes)
    published = _e(data.published, 1000) if data.published else "nothing published yet"
    outcome = data.outcome
    earlier = outcome is not None and not outcome.current("evaluate")
    mark = " (an earlier run's: this run did not reach evaluate)" if earlier else ""
    said = _outcome_section(outcome, data.data_line) if outcome else ""
    status_notes = outcome.notes if outcome else []
    if status_notes:  # the counts right under the outcome; the rows at the end
        said += "".join(f"<p class='counts'>{_e(n, 500)}</p>" for n in status_notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{_e(data.title)}</title><style>{CSS}</style></head>
<body>
<h1>{_e(data.title)}</h1>
{said}
<p class="meta">Generated {_e(data.generated_at)}. Published: {published}.</p>
<h2 id="gate">Gate{mark}</h2>
{_gate_section(data.gate, earlier)}
<h2 id="metrics">Backtest scores{mark}</h2>
{_metrics_section(data.scores)}
<h2 id="charts">Charts</h2>
{charts or "<p>No charts: nothing evaluated or published yet.</p>"}
<h2 id="series-status">Series that fell back or were quarantined</h2>
{_status_section(data.series_status)}
{f"<h2>Not shown</h2><ul>{notes}</ul>" if notes else ""}
</body></html>
"""


def inline_svg(svg: bytes) -> str:
    """matplotlib's SVG file as an element to inline (no XML prolog or DOCTYPE)."""
    text = svg.decode()
    return text[text.index("<svg") :]


# ---------------------------------------------------------------- I/O edges
def _read_published(cfg: Config):
    """The current forecasts: the Parquet export when published there, else the store."""
    import polars as pl

    export = catalog.path("export", cfg)
    if "parquet" in cfg.publish.targets and export.exists():
        return pl.read_parquet(export)
    from tasks.publishing.db import NoStore, from_config
    from tasks.publishing.store import read_current

    try:
        return read_current(from_config(cfg))  # the SQLite file or the server publish.url names
    except NoStore:
        return None


def series_status(keys: Sequence[str] = ()) -> list[dict]:
    """Rows of the per-series status files named by `keys` (SERIES_STATUS_KEYS by default)."""
    rows = []
    for key in keys or SERIES_STATUS_KEYS:
        path = catalog.path(key)
        if path.exists():
            rows += list(io.read_json(path).get("series", []))
    return rows


def run_series(outcome: Outcome) -> tuple[list[dict], list[str]]:
    """(rows, notes): the series ingest quarantined and those a candidate publishes instead of
    the LSTM, from this run's outputs; a note where this run did not get that far."""
    rows, notes = [], []
    ingest = catalog.path("metrics_ingest")
    if outcome.current("ingest") and ingest.exists():
        listing = io.read_json(ingest).get("quarantined") or {}
        for entry in listing.get("listed", []):
            why = "; ".join(f"{r.get('check')}: {r.get('what')}" for r in entry.get("reasons", []))
            rows.append({"series_id": entry.get("series_id"), "status": "quarantined",
                         "reason": why})  # fmt: skip
        n, of = listing.get("series", 0), listing.get("of_series", 0)
        notes.append(f"Quarantined by ingest: {n} of {of} series.")
        if listing.get("truncated"):
            notes.append("Only the first quarantined series are listed (metrics/ingest.json).")
    elif outcome.run:
        notes.append("Quarantined series: not known for this run's data (ingest did not pass).")
    selection = catalog.path("selection")
    if outcome.current("evaluate") and selection.exists():
        raw = io.read_json(selection)
        choices, reasons = raw.get("choices") or {}, raw.get("reasons") or {}
        other = [(sid, m) for sid, m in choices.items() if m != "lstm"]
        for sid, model in other:
            reason = reasons.get(sid, "")
            kind = "short" if reason.startswith("too short") else "fell back"
            rows.append({"series_id": sid, "status": f"{kind}: {model}", "reason": reason})
        notes.append(
            f"Published by a candidate instead of the LSTM: {len(other)} of {len(choices)} "
            "series (evaluate's choice, models/selection.json)."
        )
    elif outcome.run:
        notes.append("Fallback series: not known for this run's data (it did not reach evaluate).")
    return rows + series_status(), notes


def data_line(cfg: Config, outcome: Outcome) -> str:
    """This run's data: the source, its md5 and, once ingest passed, its series and rows."""
    from tasks.publishing.lineage import data_md5

    raw = catalog.path("raw", cfg)
    try:
        md5 = data_md5(raw)[:12]
    except OSError:
        md5 = "unreadable"
    text = f"This run's data: {cfg.data.path} (md5 {md5})"
    ingest = catalog.path("metrics_ingest")
    if outcome.current("ingest") and ingest.exists():
        m = io.read_json(ingest)
        text += (f": {m.get('series')} series, {m.get('rows')} rows, "
                 f"{m.get('first_timestamp')} to {m.get('last_timestamp')}")  # fmt: skip
    return text + "."


def collect(
    cfg: Config,
    series: Sequence[str] | None = None,
    top: int | None = None,
    outcome: Outcome | None = None,
):
    """Everything the report shows, read from the outputs on disk; `outcome`: how the run that
    writes it ended (None: `forecast report` outside a run)."""
    import polars as pl

    from flows.published import describe_run
    from tasks import charts

    top = charts.DEFAULT_TOP if top is None else top
    read = {k: catalog.path(k) for k in ("metrics_evaluate", "metrics_gate", "validated")}
    scores = io.read_json(read["metrics_evaluate"]) if read["metrics_evaluate"].exists() else None
    gate = io.read_json(read["metrics_gate"]) if read["metrics_gate"].exists() else None
    found, notes, shown = [], [], []
    current = _read_published(cfg)
    if current is not None and current.height and read["validated"].exists():
        shown, history = charts.chart_history(pl.scan_parquet(read["validated"]), series, top)
        fresh = outcome is None or outcome.kind in ("published", "unchanged", "completed")
        title = "Published forecast with 80/95 % intervals"
        if not fresh:
            title = "Still published: an earlier run's forecast with 80/95 % intervals"
        svg = charts.forecast_chart(history, current, shown, title, "svg")
        found.append(Chart("Forecast", inline_svg(svg), "History and forecast: " + ", ".join(
            clip(s) for s in shown
        )))  # fmt: skip
    else:
        notes.append("the forecast chart: no published forecasts or no validated history")
    backtest_csv = catalog.path("plot_backtest_forecast")
    if backtest_csv.exists():
        backtest = pl.read_csv(backtest_csv, try_parse_dates=True)
        picked = [s for s in shown if s in set(backtest["series_id"].cast(pl.String))] or (
            charts.pick_series(backtest.rename({"actual": "value"}), series, charts.BACKTEST_TOP)
        )
        picked = picked[: charts.BACKTEST_TOP]
        svg = charts.backtest_chart(backtest, picked, "Backtest per fold (0 = latest)", "svg")
        found.append(Chart("Backtest per fold", inline_svg(svg), ", ".join(map(clip, picked))))
    horizon_csv = catalog.path("plot_horizon_errors")
    if horizon_csv.exists():
        svg = charts.horizon_chart(pl.read_csv(horizon_csv), "MASE per horizon step", "svg")
        found.append(Chart("Error per horizon step", inline_svg(svg), "mean over folds, series"))
    said = outcome or on_disk()
    status, status_notes = run_series(said)
    return ReportData(
        title="Forecast run report",
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        scores=scores,
        gate=gate,
        published=describe_run(current) if current is not None else None,
        series_shown=shown,
        charts=found,
        series_status=status,
        notes=notes,
        outcome=outcome and replace(outcome, notes=status_notes),
        data_line=data_line(cfg, said) if outcome else "",
    )


def write_report(
    cfg: Config,
    out: Path | None = None,
    series: Sequence[str] | None = None,
    top=None,
    outcome: Outcome | None = None,
) -> tuple[Path, ReportData]:
    out = Path(out or catalog.path("report"))
    data = collect(cfg, series, top, outcome)
    text = render_html(data)
    io.write_atomic(out, lambda tmp: tmp.write_text(text))
    return out, data


def write_report_safely(cfg: Config, outcome: Outcome | None = None) -> Path | None:
    """For runs: the report is a view of outputs already written, so failing to draw it logs a
    warning instead of failing the run (`forecast report` shows the error)."""
    try:
        return write_report(cfg, outcome=outcome)[0]
    except Exception as err:
        log.warning("run report not written (%s); `forecast report` retries", clip(err, 500))
        return None


def write_run_report(flow, flow_run, state) -> None:
    """Prefect state hook of the pipeline flow (completion, failure, crash): the run's report.
    The parameter names are Prefect's (it calls on_crashed hooks by keyword)."""
    from tasks.config import DEFAULT_PARAMS, load_config

    params = (flow_run.parameters or {}).get("params") or DEFAULT_PARAMS
    try:
        cfg = load_config(params)
    except Exception:  # bad params: the run failed before anything worth a report
        return
    from flows.outcome import from_state

    written = write_report_safely(cfg, from_state(state))
    if written:
        log.info("run report: %s", written)
