"""A tuning-split experiment (issue 23): the series' long-run growth as a past covariate.

benchmarks/many_series.py with one change to the data it feeds the pipeline: a column `growth`,
(log y[t] - log y[0]) / t (0 at t = 0; M3 is positive), each series' mean log-change per step
since its first value, observed up to t (no step sees past itself), declared as a past
covariate (`--param "data.covariates={past: [growth], future: [], static: []}"`). It tests the
diagnosis in docs/decisions.md ("What was tried on the LSTM"): the window is too short for a
global model to see a series' trend.

    uv run --extra bench python -m benchmarks.growth_covariate --split tuning --freq quarterly \
        --no-anchor --stat-peers "" --neural-steps 0 \
        --param "data.covariates={past: [growth], future: [], static: []}" \
        --out /tmp/ms.json --accuracy-out benchmarks/results/tuning_variants/quarterly_growth.json

Every argument is many_series'; the results are written where --out / --accuracy-out say.
"""

from __future__ import annotations

import sys

import polars as pl

from benchmarks import many_series

_frame = many_series.m3_frame


def with_growth(series, every: str) -> pl.DataFrame:
    """many_series.m3_frame plus the growth column."""
    frame = _frame(series, every).sort("series_id", "timestamp")
    log = pl.col("value").log()
    t = pl.int_range(pl.len()).over("series_id")
    growth = (log - log.first().over("series_id")) / t.clip(1, None)
    return frame.with_columns(growth.alias("growth"))


if __name__ == "__main__":
    many_series.m3_frame = with_growth
    sys.exit(many_series.main(sys.argv[1:]))
