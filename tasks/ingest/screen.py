"""The screen: one vectorised pass over the whole source that vouches for the clean series, so
that the detailed checks (tasks.ingest.checks, pandera) run only on the others.

A series is vouched for when its rows are contiguous in the source; every row passes the row
checks (a key and a value present, text that parsed, the schema's value rules, finite
covariates, midnight on calendar frequencies); each row is exactly one data.frequency step after
the one before (so the series is in order, on its grid, without gaps or duplicate timestamps);
it is long enough (Config.min_history: one step, what the naive candidate needs; a series too
short for the LSTM is not bad data) and its training part is not constant. That covers what
the detailed checks look at, so such a series would pass them. A series the screen cannot vouch
for (a bad row, a gap to fill, a grid on the 28th-31st that is not month ends, ...) goes through
the detailed checks and gets its exact report; the screen only decides how much work they get.

Cost: one select of cheap per-row expressions (a slice of rows at a time), then numpy work per
run of rows of a series: no group_by, no join, no sort, no Python loop over series.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandera.polars as pa
import polars as pl

from tasks import timegrid
from tasks.columns import REQUIRED, SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config
from tasks.ingest.checks import covariates
from tasks.ingest.read import RAW_TIMESTAMP, RAW_VALUE
from tasks.ingest.schema import build_schema, covariate_ok, value_rules

DAY_US = 86_400_000_000
_FIXED_US = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000,
             "d": DAY_US, "w": 7 * DAY_US}  # fmt: skip
_MONTHS = {"mo": 1, "q": 3, "y": 12}
# Rows flagged at once: the fused expressions hold a few 8-byte temporaries per row, so 10M rows
# at once peaked 300 MiB above the data (measured), 1M at a time a tenth of that.
SLICE_ROWS = 1_000_000


@dataclass(frozen=True)
class Screened:
    clean: pl.DataFrame  # every row of the series vouched for, in source order
    suspect: pl.DataFrame  # every row of the other series (and rows of no series)
    clean_series: int
    clean_sorted: bool  # the clean rows are in (series_id, timestamp) order


def _step(frequency: str) -> tuple[str, int] | None:
    """("us", microseconds) for a fixed step, ("months", n) for a calendar one; None for
    nanosecond steps, finer than the microsecond timestamps."""
    count, unit = re.fullmatch(r"(\d+)([a-z]+)", frequency).groups()
    if unit in _FIXED_US:
        return "us", int(count) * _FIXED_US[unit]
    if unit in _MONTHS:
        return "months", int(count) * _MONTHS[unit]
    return None


def _typed(frame: pl.DataFrame, cfg: Config) -> bool:
    """The column types pass the pandera schema. Checked on no rows: types are per column, and
    the schema's row checks run fused in `_row_ok` (the same rules,
    tasks.ingest.schema.value_rules)."""
    columns = frame.select(*REQUIRED, *covariates(frame)).clear()
    try:
        build_schema(cfg).validate(columns, lazy=True)
    except pa.errors.SchemaErrors:
        return False
    return True


def _row_ok(frame: pl.DataFrame, cfg: Config, new: pl.Expr) -> pl.Expr:
    sid, ts, value = pl.col(SERIES_ID), pl.col(TIMESTAMP), pl.col(VALUE)
    ok = [sid.is_not_null(), ts.is_not_null(), value.is_not_null()]
    ok += [pl.col(RAW_TIMESTAMP).is_null(), pl.col(RAW_VALUE).is_null()]
    ok += [rule(value) for rule in value_rules(cfg).values()]
    ok += [covariate_ok(c, frame.schema[c]) for c in covariates(frame)]
    kind, amount = _step(cfg.data.frequency)
    micros = ts.cast(pl.Int64)
    if kind == "us":
        ok.append(new | (micros.diff() == amount))
    else:
        # The grid of a calendar step keeps the first row's day of month, or month ends
        # (tasks.timegrid), and midnight. Vouched: the same day before the 28th, or month end
        # after month end; days 28-31 otherwise (a day-of-month grid that clamps, or one that
        # meets month ends) are left to the detailed checks, which decide the anchor.
        month = ts.dt.year().cast(pl.Int32) * 12 + ts.dt.month().cast(pl.Int32)
        day, end = ts.dt.day(), timegrid.is_month_end(ts)
        anchor = ((day == day.shift(1)) & (day < 28)) | (end & end.shift(1))
        ok += [new | ((month.diff() == amount) & anchor), micros % DAY_US == 0]
    return pl.all_horizontal(ok).fill_null(False)


def _flags(
    frame: pl.DataFrame, cfg: Config, slice_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of the rows failing `_row_ok`, positions of the first row of each run of one
    series, and per row the number of value changes within runs so far (cumulated: a run's
    training part is constant when the count does not grow over it). Computed `slice_rows` at
    a time, each slice with the row before it for the comparisons with the previous row."""
    sid, value = pl.col(SERIES_ID), pl.col(VALUE)
    new = (sid != sid.shift(1)).fill_null(True)
    exprs = {
        "bad": ~_row_ok(frame, cfg, new),
        "new": new,
        "change": ((value != value.shift(1)) & ~new).fill_null(True),
    }
    bad, starts, changes, so_far = [], [], [], 0
    for lo in range(0, frame.height, slice_rows):
        before = min(lo, 1)  # the previous row, for shift(1); its own flags are dropped
        flags = frame.slice(lo - before, slice_rows + before).select(**exprs).slice(before)
        bad.append(flags["bad"].arg_true().to_numpy().astype(np.int64) + lo)
        starts.append(flags["new"].arg_true().to_numpy().astype(np.int64) + lo)
        counted = flags["change"].cast(pl.UInt32).cum_sum().to_numpy() + so_far
        so_far = int(counted[-1])
        changes.append(counted)
    return np.concatenate(bad), np.concatenate(starts), np.concatenate(changes)


def screen(frame: pl.DataFrame, cfg: Config, slice_rows: int = SLICE_ROWS) -> Screened | None:
    """Split `frame` (typed by read.coerce, with bookkeeping) into the series it vouches for and
    the rest; None when it can vouch for none (no rows, a column of the wrong type, series
    interleaved in the source, nanosecond steps): then every row gets the detailed checks."""
    if not frame.height or _step(cfg.data.frequency) is None or not _typed(frame, cfg):
        return None
    bad, starts, changes = _flags(frame, cfg, slice_rows)
    ids = frame[SERIES_ID].gather(starts)
    if ids.null_count() or ids.n_unique() != ids.len():
        return None  # a series in several runs: its order and duplicates need the full check
    lengths = np.diff(np.append(starts, frame.height))
    flagged = np.zeros(len(starts), dtype=bool)
    flagged[np.searchsorted(starts, bad, side="right") - 1] = True
    flagged |= lengths < cfg.min_history
    train = lengths - cfg.forecast.horizon
    last = starts + np.maximum(train, 1) - 1
    flagged |= (train >= 2) & (changes[last] == changes[starts])
    clean_ids = ids.filter(pl.Series(~flagged))
    if not flagged.any():
        return Screened(frame, frame.clear(), len(starts), clean_ids.is_sorted())
    suspect = pl.Series(np.repeat(flagged, lengths))
    return Screened(
        frame.filter(~suspect), frame.filter(suspect), clean_ids.len(), clean_ids.is_sorted()
    )
