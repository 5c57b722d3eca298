"""Charts of the forecasts and the backtest, drawn with matplotlib: frames in, image bytes out.

Pure functions: nothing here reads or writes a file or touches global plotting state (figures
are `matplotlib.figure.Figure` objects, never pyplot's, and the Agg/SVG renderers need no
display). The callers do the I/O: the evaluate and publish stages write the PNGs DVC shows as
image plots, flows/artifacts.py puts one into the Prefect UI, flows/report.py inlines SVGs in
reports/run.html.

Every chart has dated axes and one legend. Series ids are user data: they are clipped and
quoted where whitespace would hide a difference (tasks.series_ids.show), and `$` is escaped so
matplotlib never reads them as mathtext; the SVG writer escapes XML itself. Panels and the
legend carry stable ids (`<chart>-panel-<i>`, `<chart>-legend`) in SVG output, so a browser test
can count them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import polars as pl

from tasks.errors import PipelineError
from tasks.series_ids import show
from tasks.textfmt import clip

# Series in a chart when the user picks none: the largest (mean level of their history). More
# panels than this make each too small to read in the UI's artifact pane.
DEFAULT_TOP = 4
# The backtest chart is folds x series panels: fewer series than the forecast chart.
BACKTEST_TOP = 3
HISTORY = "#1f77b4"
FORECAST = "#ff7f0e"
ACTUAL = "#333333"
SEASONAL_NAIVE = "#2ca02c"
MODEL_COLOURS = {"lstm": FORECAST, "naive": "#7f7f7f", "seasonal_naive": SEASONAL_NAIVE,
                 "drift": "#9467bd"}  # fmt: skip
LEVELS = (95, 80)  # drawn widest first, so the 80 % band sits on top of the 95 % one
BAND_ALPHA = {80: 0.35, 95: 0.15}
# Points of history shown before the forecast: enough for a few seasons of monthly data; a
# series of thousands of steps would otherwise squeeze the forecast into a sliver.
HISTORY_TAIL = 240
PANEL_HEIGHT = 2.6  # inches per row of panels
WIDTH = 10.0  # inches
DPI = 100
# Fixed render settings: text stays text in SVG (searchable, small) and ids are stable, so the
# same frames give the same bytes (DVC sees no change when nothing changed).
RC = {"svg.fonttype": "none", "svg.hashsalt": "forecast-charts", "font.size": 9}
# Not written into PNGs: the matplotlib version would otherwise change the file's hash.
PNG_METADATA = {"Software": None}

Format = Literal["png", "svg"]


class ChartError(PipelineError):
    """The series asked for are not in the data."""


def label(series_id: object) -> str:
    """A series id as chart text: bounded, told apart from ids that differ only by surrounding
    whitespace (quoted then: tasks.series_ids.show), and `$` escaped (matplotlib's mathtext)."""
    return show(series_id).replace("$", r"\$")


def pick_series(
    history: pl.DataFrame, series: Sequence[str] | None = None, top: int = DEFAULT_TOP
) -> list[str]:
    """The series to chart: those asked for (each must exist), else the `top` largest by mean
    value of their history (ties: by id, so the choice is stable)."""
    known = history["series_id"].cast(pl.String).unique()
    if series:
        missing = [s for s in series if s not in set(known.to_list())]
        if missing:
            shown = ", ".join(repr(clip(s)) for s in missing[:5])
            example = ", ".join(repr(clip(s)) for s in known.sort().head(5).to_list())
            raise ChartError(
                f"no series {shown} in the data ({known.len()} series, e.g. {example})"
            )
        return list(dict.fromkeys(series))
    if top < 1:
        raise ChartError(f"--top must be at least 1, got {top}")
    means = (
        history.group_by(pl.col("series_id").cast(pl.String))
        .agg(pl.col("value").mean().alias("level"))
        .sort(["level", "series_id"], descending=[True, False], nulls_last=True)
    )
    return means["series_id"].head(top).to_list()


def chart_history(
    history: pl.LazyFrame, series: Sequence[str] | None = None, top: int = DEFAULT_TOP
) -> tuple[list[str], pl.DataFrame]:
    """The series to chart (pick_series) and their history, from a lazy frame (a scan of the
    validated data): only one mean per series and the chosen series' rows are materialised, not
    the whole history (10M rows at benchmarks/scale.py's size)."""
    levels = history.group_by("series_id").agg(pl.col("value").mean()).collect()
    chosen = pick_series(levels, series, top)
    rows = history.filter(pl.col("series_id").is_in(chosen)).select(
        "series_id", "timestamp", "value"
    )
    return chosen, rows.collect()


# ---------------------------------------------------------------- drawing helpers
def _figure(rows: int, cols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, 0.9 + PANEL_HEIGHT * rows), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _dates(ax) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(True, alpha=0.3)


def _times(frame: pl.DataFrame) -> list[datetime]:
    return frame["timestamp"].to_list()


def _bands(ax, frame: pl.DataFrame, colour: str) -> None:
    for level in LEVELS:
        lo, hi = f"lo_{level}", f"hi_{level}"
        if {lo, hi} <= set(frame.columns) and frame[lo].null_count() < frame.height:
            ax.fill_between(
                _times(frame),
                frame[lo].to_numpy(),
                frame[hi].to_numpy(),
                color=colour,
                alpha=BAND_ALPHA[level],
                linewidth=0,
                label=f"{level} % interval",
            )


def _legend(fig, axes, name: str) -> None:
    """One legend for the figure (every panel draws the same kinds of line), below the panels
    (above them it would collide with the figure title)."""
    handles: dict = {}
    for ax in axes.flat:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(text, handle)
    if handles:
        legend = fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncol=min(len(handles), 6),
            frameon=False,
        )
        legend.set_gid(f"{name}-legend")


def _empty(fig, ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def render(fig, fmt: Format = "png") -> bytes:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format=fmt, metadata=PNG_METADATA if fmt == "png" else {"Date": None})
    return buf.getvalue()


# ---------------------------------------------------------------- the charts
def forecast_chart(
    history: pl.DataFrame,
    forecast: pl.DataFrame,
    series: Sequence[str],
    title: str,
    fmt: Format = "png",
) -> bytes:
    """One panel per series: its history (the last HISTORY_TAIL points), the forecast and its
    80/95 % intervals.

    `history`: series_id, timestamp, value. `forecast`: series_id, timestamp, forecast and
    optionally lo_80/hi_80/lo_95/hi_95 (a series without intervals is drawn without bands)."""
    import matplotlib

    with matplotlib.rc_context(RC):
        fig, axes = _figure(max(len(series), 1))
        fig.suptitle(title)
        if not series:
            _empty(fig, axes[0, 0], "no series to show")
        for i, sid in enumerate(series):
            ax = axes[i, 0]
            ax.set_gid(f"forecast-panel-{i}")
            h = history.filter(pl.col("series_id") == sid).sort("timestamp").tail(HISTORY_TAIL)
            f = forecast.filter(pl.col("series_id") == sid).sort("timestamp")
            _bands(ax, f, FORECAST)
            ax.plot(_times(h), h["value"].to_numpy(), color=HISTORY, lw=1.6, label="history")
            if f.height:
                # Joined to the last observation, so the forecast visibly continues the history.
                t = (_times(h)[-1:] if h.height else []) + _times(f)
                v = (h["value"].to_list()[-1:] if h.height else []) + f["forecast"].to_list()
                ax.plot(t, v, color=FORECAST, lw=1.6, ls="--", label="forecast")
            ax.set_title(label(sid), loc="left")
            _dates(ax)
        _legend(fig, axes, "forecast")
        return render(fig, fmt)


def backtest_chart(
    backtest: pl.DataFrame, series: Sequence[str], title: str, fmt: Format = "png"
) -> bytes:
    """Rolling-origin backtest: a row of panels per fold (0 = latest origin), a column per
    series; actuals, the LSTM with its 80/95 % intervals, and seasonal naive.

    `backtest`: the evaluate stage's plots/backtest_forecast.csv frame (fold, series_id,
    timestamp, actual, lstm, lo_*/hi_*, seasonal_naive, ...)."""
    import matplotlib

    folds = sorted(backtest["fold"].unique().to_list()) if backtest.height else []
    with matplotlib.rc_context(RC):
        fig, axes = _figure(max(len(folds), 1), max(len(series), 1))
        fig.suptitle(title)
        if not (folds and series):
            _empty(fig, axes[0, 0], "no backtest to show")
        for r, fold in enumerate(folds):
            for c, sid in enumerate(series):
                ax = axes[r, c]
                ax.set_gid(f"backtest-panel-{r * len(series) + c}")
                f = backtest.filter((pl.col("fold") == fold) & (pl.col("series_id") == sid))
                f = f.sort("timestamp")
                _bands(ax, f, FORECAST)
                t = _times(f)
                ax.plot(t, f["actual"].to_numpy(), color=ACTUAL, lw=1.6, label="actual")
                ax.plot(t, f["lstm"].to_numpy(), color=FORECAST, lw=1.6, ls="--", label="LSTM")
                if "seasonal_naive" in f.columns:
                    ax.plot(t, f["seasonal_naive"].to_numpy(), color=SEASONAL_NAIVE, lw=1,
                            ls=":", label="seasonal naive")  # fmt: skip
                ax.set_title(f"fold {fold}: {label(sid)}", loc="left")
                _dates(ax)
        _legend(fig, axes, "backtest")
        return render(fig, fmt)


def horizon_chart(errors: pl.DataFrame, title: str, fmt: Format = "png") -> bytes:
    """Backtest MASE per horizon step, one line per model (plots/horizon_errors.csv)."""
    import matplotlib

    models = [m for m in MODEL_COLOURS if m in errors.columns]
    with matplotlib.rc_context(RC):
        fig, axes = _figure(1)
        ax = axes[0, 0]
        ax.set_gid("horizon-panel-0")
        fig.suptitle(title)
        steps = errors["horizon_step"].to_numpy() if errors.height else []
        for model in models:
            if errors[model].null_count() < errors.height:
                ax.plot(steps, errors[model].to_numpy(), color=MODEL_COLOURS[model],
                        lw=2 if model == "lstm" else 1.2, marker="o", ms=3,
                        label=model.replace("_", " "))  # fmt: skip
        if not len(steps):
            _empty(fig, ax, "no backtest to show")
        ax.set_xlabel("horizon step")
        ax.set_ylabel("MASE (mean over folds and series)")
        ax.grid(True, alpha=0.3)
        _legend(fig, axes, "horizon")
        return render(fig, fmt)
