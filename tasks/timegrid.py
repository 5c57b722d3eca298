"""Steps of data.frequency that keep the data's anchor: the one place that says which
timestamps follow which, for ingest's grid checks and for the forecast timestamps.

Fixed steps ("1d", "1w", "6h") are a fixed duration from the series' first timestamp, so a
weekly series keeps its weekday (Sundays stay Sundays: pandas' W-SUN). Calendar steps ("1mo",
"1q", "1y") keep the day of month of the first timestamp ("1mo" from 1949-01-15 gives the 15th
of every month), except for month-end data: polars' "1mo" from 2021-06-30 walks 07-30, 08-30,
..., so a series whose timestamps are (mostly) the last day of their month, starting on one, is
anchored at month ends instead: 06-30, 07-31, 08-31 (quarter ends with "1q", year ends with
"1y"). Its forecasts stay at month ends.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

CALENDAR_UNITS = ("mo", "q", "y")


def split(frequency: str) -> tuple[int, str]:
    """("1mo") -> (1, "mo")."""
    n, unit = re.fullmatch(r"(\d+)(\D+)", frequency).groups()
    return int(n), unit


def is_calendar(frequency: str) -> bool:
    return split(frequency)[1] in CALENDAR_UNITS


def is_month_end(ts: pl.Expr) -> pl.Expr:
    """True where `ts` falls on the last day of its month (any time of day)."""
    return ts.dt.day() == ts.dt.month_end().dt.day()


def offset_steps(
    last: pl.Expr, steps: pl.Expr, frequency: str, month_end: pl.Expr | None = None
) -> pl.Expr:
    """`last` moved `steps` steps of `frequency`, calendar-aware ("1mo" after Jan 31 is Feb 28).

    `month_end`: True where the series is month-end anchored (default: where `last` is a month
    end); there a calendar step lands on month ends (Jun 30 + 1mo = Jul 31, not Jul 30)."""
    n, unit = split(frequency)
    by = pl.format("{}" + unit, steps * n)
    plain = last.dt.offset_by(by)
    if unit not in CALENDAR_UNITS:
        return plain
    anchored = is_month_end(last) if month_end is None else month_end
    ends = last.dt.month_start().dt.offset_by(by).dt.month_end()
    return pl.when(anchored).then(ends).otherwise(plain)


def month_end_anchor(ts: pl.Expr) -> pl.Expr:
    """Aggregation: the series (its timestamps `ts`) is month-end anchored: it starts on a month
    end and most of its timestamps are month ends (one stray row is reported off the grid, it
    does not move the grid)."""
    return is_month_end(ts.min()) & (is_month_end(ts).mean() > 0.5)


def ranges(lo: pl.Expr, hi: pl.Expr, frequency: str, month_end: pl.Expr) -> pl.Expr:
    """Per row the list of grid timestamps from `lo` to at most `hi`, every `frequency`;
    month-end anchored where `month_end` (calendar steps only)."""
    plain = pl.datetime_ranges(lo, hi, frequency, time_unit="us")
    if not is_calendar(frequency):
        return plain
    # Month starts from lo's, then each month's end; the range stops at hi's month when hi is
    # a month end, else at the month before (so no grid point lies after hi).
    stop = pl.when(is_month_end(hi)).then(hi.dt.month_start())
    stop = stop.otherwise(hi.dt.month_start().dt.offset_by("-1d"))
    starts = pl.datetime_ranges(lo.dt.month_start(), stop, frequency, time_unit="us")
    ends = starts.list.eval(pl.element().dt.month_end())
    return pl.when(month_end).then(ends).otherwise(plain)


def month_end_series(timestamps: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per series (consecutive runs of `lengths` entries of `timestamps`): month-end anchored,
    by the rule ingest's grid uses (`month_end_anchor`)."""
    run = np.repeat(np.arange(len(lengths)), lengths)
    frame = pl.DataFrame({"run": run, "ts": np.asarray(timestamps, "datetime64[us]")})
    flags = frame.group_by("run").agg(month_end_anchor(pl.col("ts"))).sort("run")
    out = np.zeros(len(lengths), dtype=bool)
    out[flags["run"].to_numpy()] = flags["ts"].fill_null(False).to_numpy()
    return out
