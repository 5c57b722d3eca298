"""The charts (tasks/charts.py): which series, what each picture holds, escaped ids, and stable
bytes. SVG output keeps text as text and panels/legend as ids, so the checks read it directly."""

from __future__ import annotations

import re
from datetime import datetime

import polars as pl
import pytest

from tasks import charts

IDS = ["small", "<script>alert(1)</script>", "big$x$", "mid"]
LEVELS = {"small": 1.0, "<script>alert(1)</script>": 50.0, "big$x$": 100.0, "mid": 10.0}


def _history() -> pl.DataFrame:
    ts = pl.datetime_range(datetime(2000, 1, 1), datetime(2004, 12, 1), "1mo", eager=True)
    return pl.concat(
        pl.DataFrame({"series_id": sid, "timestamp": ts, "value": LEVELS[sid] + pl.Series(
            range(len(ts))).cast(pl.Float64) / 10})
        for sid in IDS
    )  # fmt: skip


def _forecast() -> pl.DataFrame:
    ts = pl.datetime_range(datetime(2005, 1, 1), datetime(2005, 12, 1), "1mo", eager=True)
    return pl.concat(
        pl.DataFrame({"series_id": sid, "timestamp": ts, "forecast": [LEVELS[sid]] * 12,
                      "lo_80": [LEVELS[sid] - 1] * 12, "hi_80": [LEVELS[sid] + 1] * 12,
                      "lo_95": [LEVELS[sid] - 2] * 12, "hi_95": [LEVELS[sid] + 2] * 12})
        for sid in IDS
    )  # fmt: skip


def test_the_largest_series_are_picked_unless_the_user_names_them():
    history = _history()
    assert charts.pick_series(history, top=2) == ["big$x$", "<script>alert(1)</script>"]
    assert charts.pick_series(history) == ["big$x$", "<script>alert(1)</script>", "mid", "small"]
    assert charts.pick_series(history, ["mid", "small", "mid"]) == ["mid", "small"]
    with pytest.raises(charts.ChartError, match=r"no series 'nope' in the data \(4 series"):
        charts.pick_series(history, ["mid", "nope"])
    with pytest.raises(charts.ChartError, match="at least 1"):
        charts.pick_series(history, top=0)


def test_the_forecast_chart_has_a_panel_per_series_dated_axes_bands_and_one_legend():
    series = charts.pick_series(_history(), top=3)
    svg = charts.forecast_chart(_history(), _forecast(), series, "Title <b>", "svg").decode()
    assert len(re.findall(r'id="forecast-panel-\d+"', svg)) == 3
    assert svg.count('id="forecast-legend"') == 1
    legend = svg[svg.index('id="forecast-legend"') :]
    for label in ("95 % interval", "80 % interval", "history", "forecast"):
        assert label in legend
    # A dated x axis: year ticks from the history's start to the forecast's end.
    ticks = re.findall(r'<g id="xtick_\d+">.*?>([^<>]+)</text>', svg, re.S)
    assert {"2000", "2005"} <= set(ticks), ticks
    # Ids are text, escaped: no markup, no mathtext ($...$ would be drawn as italic math).
    assert "<script>" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "big$x$" in svg
    assert "Title &lt;b&gt;" in svg


def test_a_forecast_without_intervals_is_drawn_without_bands():
    series = ["mid"]
    bare = _forecast().select("series_id", "timestamp", "forecast")
    svg = charts.forecast_chart(_history(), bare, series, "t", "svg").decode()
    legend = svg[svg.index('id="forecast-legend"') :]
    assert "interval" not in legend and "forecast" in legend


def test_the_backtest_chart_has_a_panel_per_fold_and_series():
    rows = []
    for fold in (0, 1, 2):
        for sid in ("a", "b"):
            for step in range(1, 7):
                rows.append({"fold": fold, "series_id": sid,
                             "timestamp": datetime(2003 - fold, step, 1), "horizon_step": step,
                             "actual": 10.0 + step, "lstm": 11.0 + step, "lo_80": 9.0,
                             "hi_80": 13.0, "lo_95": 8.0, "hi_95": 14.0,
                             "seasonal_naive": 10.0})  # fmt: skip
    svg = charts.backtest_chart(pl.DataFrame(rows), ["a", "b"], "bt", "svg").decode()
    assert len(re.findall(r'id="backtest-panel-\d+"', svg)) == 6
    assert "fold 2: b" in svg
    legend = svg[svg.index('id="backtest-legend"') :]
    for label in ("actual", "LSTM", "seasonal naive", "80 % interval", "95 % interval"):
        assert label in legend


def test_the_horizon_chart_has_a_line_per_model():
    errors = pl.DataFrame({"horizon_step": [1, 2, 3], "lstm": [0.5, 0.6, 0.7],
                           "naive": [1.0, 1.1, 1.2], "seasonal_naive": [0.9, 0.9, 0.9],
                           "drift": [None, None, None]},
                          schema_overrides={"drift": pl.Float64})  # fmt: skip
    svg = charts.horizon_chart(errors, "h", "svg").decode()
    legend = svg[svg.index('id="horizon-legend"') :]
    assert "lstm" in legend and "seasonal naive" in legend
    assert "drift" not in legend  # no values: no line, no legend entry


def test_the_same_frames_give_the_same_png():
    """DVC hashes the image plots: an unchanged forecast must not look like a new file."""
    series = ["mid", "small"]
    one = charts.forecast_chart(_history(), _forecast(), series, "t")
    two = charts.forecast_chart(_history(), _forecast(), series, "t")
    assert one[:8] == b"\x89PNG\r\n\x1a\n" and one == two
    assert charts.forecast_chart(_history(), _forecast(), ["mid"], "t") != one


def test_chart_history_reads_only_the_chosen_series():
    series, rows = charts.chart_history(_history().lazy(), top=2)
    assert series == ["big$x$", "<script>alert(1)</script>"]
    assert rows.columns == ["series_id", "timestamp", "value"]
    assert set(rows["series_id"]) == set(series) and rows.height == 2 * 60
    picked, rows = charts.chart_history(_history().lazy(), ["small"])
    assert (
        picked == ["small"]
        and rows["value"].to_list()
        == _history().filter(pl.col("series_id") == "small")["value"].to_list()
    )
