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

`--season=M` first (before the many_series arguments): the deseasonalised variant.

Every argument is many_series'; the results are written where --out / --accuracy-out say.
"""

from __future__ import annotations

import sys

import polars as pl

from benchmarks import many_series

_frame = many_series.m3_frame


def with_growth(series, every: str, season: int = 1) -> pl.DataFrame:
    """many_series.m3_frame plus the growth column. `season` > 1: the deseasonalised variant,
    (mean of the last `season` logs - mean of the first `season`) / (t - season + 1) from
    t = season - 1 on (0 before): the same growth without the season's swing in it."""
    frame = _frame(series, every).sort("series_id", "timestamp")
    log = pl.col("value").log()
    t = pl.int_range(pl.len()).over("series_id")
    if season <= 1:
        growth = (log - log.first().over("series_id")) / t.clip(1, None)
    else:
        recent = log.rolling_mean(season).over("series_id")
        first = log.head(season).mean().over("series_id")
        steps = (t - season + 1).clip(1, None)
        growth = pl.when(t >= season - 1).then((recent - first) / steps).otherwise(0.0)
    return frame.with_columns(growth.alias("growth"))


if __name__ == "__main__":
    args = sys.argv[1:]
    season = 1
    if args and args[0].startswith("--season="):  # the deseasonalised variant
        season = int(args.pop(0).split("=", 1)[1])
    freq = next((a.split("=", 1)[1] if "=" in a else args[i + 1]
                 for i, a in enumerate(args) if a.startswith("--freq")), "")  # fmt: skip
    if "," in freq or not freq:
        # many_series runs several frequencies in subprocesses, which this patch would not reach.
        raise SystemExit("give one --freq per run (the growth column is added in this process)")
    many_series.m3_frame = lambda series, every: with_growth(series, every, season)
    sys.exit(many_series.main(args))
