"""Monitoring, pure: realized accuracy of published forecasts once their actuals arrived, the
alert decision against the backtest's expected error, and input drift per series.

No I/O here: the monitor stage (flows/stages/monitor.py) reads the store (tasks/monitoring/store.py)
and the validated frame, calls these functions, and writes what they return.

Scores follow the backtest's definitions (tasks/evaluation/metrics.py), so a realized figure and the
backtest figure it is compared with mean the same thing: MASE is the MAE scaled by the in-sample
seasonal-naive MAE of the series' history *before the run's origin* (what the run knew), and a
run's figure is the mean over its series.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import ArrayLike

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.evaluation import metrics

RUN_KEY = "run_key"
HORIZON_STEP = "horizon_step"
FORECAST = "forecast"
ACTUAL = "actual"
LEVELS = (80, 95)
# The scores kept per run and series (and averaged per run), in report order.
SCORES = ("mase", "rmse", "smape", *(f"coverage_{lv}" for lv in LEVELS))


@dataclass(frozen=True)
class Realized:
    """Realized accuracy at three grains; every frame is keyed by run_key (+ series, + step)."""

    steps: pl.DataFrame  # per run, series and target: actual, error, scaled error, in interval
    series: pl.DataFrame  # per run and series: n_observed and SCORES
    runs: pl.DataFrame  # per run: n_series, n_observed and the mean of SCORES over series
    horizon: pl.DataFrame  # per run and horizon step: the mean over series of the step's scores


# ---------------------------------------------------------------- realized accuracy
def _scale(history: np.ndarray, season_length: int) -> float | None:
    """The MASE denominator from the history before the origin; None where it is undefined
    (too short, or constant over a season)."""
    if history.size <= season_length:
        return None
    scale = metrics.seasonal_naive_scale(history, season_length)
    return scale if scale > 0 else None


def _inside(actual: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """1.0 inside [lo, hi], 0.0 outside, NaN where the run published no interval."""
    out = ((lo <= actual) & (actual <= hi)).astype(np.float64)
    out[np.isnan(lo) | np.isnan(hi)] = np.nan
    return out


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else None


def score_published(forecasts: pl.DataFrame, actuals: pl.DataFrame, season_length: int) -> Realized:
    """Score every published forecast whose target timestamp is now observed.

    forecasts: run_key, series_id, timestamp (Datetime), horizon_step, forecast, lo_80, hi_80,
    lo_95, hi_95 (bounds may be null); actuals: series_id, timestamp, value (the validated frame).
    A run is scored on the targets observed so far (n_observed says how many); its origin, per
    series, is the step before its first target, whatever has been observed."""
    actuals = actuals.select(
        pl.col(SERIES_ID).cast(pl.String),
        pl.col(TIMESTAMP).cast(pl.Datetime("us")),
        pl.col(VALUE).cast(pl.Float64),
    ).sort(SERIES_ID, TIMESTAMP)
    forecasts = forecasts.with_columns(
        pl.col(SERIES_ID).cast(pl.String), pl.col(TIMESTAMP).cast(pl.Datetime("us"))
    )
    origins = forecasts.group_by(RUN_KEY, SERIES_ID).agg(pl.col(TIMESTAMP).min().alias("first"))
    observed = forecasts.join(
        actuals.rename({VALUE: ACTUAL}), on=[SERIES_ID, TIMESTAMP], how="inner"
    ).join(origins, on=[RUN_KEY, SERIES_ID])
    history = {
        sid: (frame[TIMESTAMP].to_numpy(), frame[VALUE].to_numpy())
        for (sid,), frame in actuals.partition_by(SERIES_ID, as_dict=True).items()
    }
    step_parts, series_rows = [], []
    for (key, sid), group in (
        observed.sort(HORIZON_STEP).partition_by(RUN_KEY, SERIES_ID, as_dict=True).items()
    ):
        times, values = history[sid]
        scale = _scale(values[times < group["first"].to_numpy()[0]], season_length)
        y = group[ACTUAL].to_numpy()
        f = group[FORECAST].to_numpy()
        err = y - f
        inside = {
            lv: _inside(
                y,
                group[f"lo_{lv}"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
                group[f"hi_{lv}"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
            )
            for lv in LEVELS
        }
        den = np.abs(y) + np.abs(f)
        step_parts.append(
            group.select(
                RUN_KEY, SERIES_ID, TIMESTAMP, HORIZON_STEP, FORECAST, ACTUAL
            ).with_columns(
                pl.Series("error", err),
                pl.Series("abs_error", np.abs(err)),
                pl.Series(
                    "scaled_error", np.abs(err) / scale if scale else np.full(y.size, np.nan)
                ),
                pl.Series(
                    "smape",
                    200.0 * np.divide(np.abs(err), den, out=np.zeros_like(err), where=den > 0),
                ),
                *(pl.Series(f"in_{lv}", inside[lv]) for lv in LEVELS),
            )
        )
        series_rows.append(
            {
                RUN_KEY: key,
                SERIES_ID: sid,
                "n_observed": int(y.size),
                "mase": metrics.scaled_mae(y, f, scale) if scale else None,
                "rmse": metrics.rmse(y, f),
                "smape": metrics.smape(y, f),
                **{f"coverage_{lv}": _nanmean(inside[lv]) for lv in LEVELS},
            }
        )
    steps = (
        pl.concat(step_parts).fill_nan(None) if step_parts else pl.DataFrame(schema=_STEP_SCHEMA)
    ).sort(RUN_KEY, SERIES_ID, HORIZON_STEP)
    series = pl.DataFrame(series_rows, schema=_SERIES_SCHEMA).sort(RUN_KEY, SERIES_ID)
    runs = series.group_by(RUN_KEY).agg(
        pl.len().alias("n_series"),
        pl.col("n_observed").sum(),
        *(pl.col(s).mean() for s in SCORES),
    )
    horizon = steps.group_by(RUN_KEY, HORIZON_STEP).agg(
        pl.len().alias("n_series"),
        pl.col("scaled_error").mean().alias("mase"),
        (pl.col("error") ** 2).mean().sqrt().alias("rmse"),
        pl.col("smape").mean(),
        *(pl.col(f"in_{lv}").mean().alias(f"coverage_{lv}") for lv in LEVELS),
    )
    return Realized(
        steps=steps,
        series=series,
        runs=runs.sort(RUN_KEY),
        horizon=horizon.sort(RUN_KEY, HORIZON_STEP),
    )


_STEP_SCHEMA = {
    RUN_KEY: pl.String,
    SERIES_ID: pl.String,
    TIMESTAMP: pl.Datetime("us"),
    HORIZON_STEP: pl.Int64,
    FORECAST: pl.Float64,
    ACTUAL: pl.Float64,
    "error": pl.Float64,
    "abs_error": pl.Float64,
    "scaled_error": pl.Float64,
    "smape": pl.Float64,
    **{f"in_{lv}": pl.Float64 for lv in LEVELS},
}
_SERIES_SCHEMA = {
    RUN_KEY: pl.String,
    SERIES_ID: pl.String,
    "n_observed": pl.Int64,
    **dict.fromkeys(SCORES, pl.Float64),
}


# ---------------------------------------------------------------- alert
def degraded(
    realized: Realized,
    expected: Mapping[str, Mapping[str, float]],
    metric: str,
    max_degradation: float,
) -> list[dict]:
    """Runs whose realized `metric` (mean over their series) exceeds the backtest's figure
    `expected[run_key][metric]` by more than `max_degradation` (a fraction), each with the
    series that exceed it themselves. Runs without a backtest figure are not judged."""
    alerts = []
    for row in realized.runs.iter_rows(named=True):
        figure = (expected.get(row[RUN_KEY]) or {}).get(metric)
        value = row[metric]
        if figure is None or value is None or not math.isfinite(figure):
            continue
        limit = figure * (1.0 + max_degradation)
        if value <= limit:
            continue
        worse = realized.series.filter((pl.col(RUN_KEY) == row[RUN_KEY]) & (pl.col(metric) > limit))
        alerts.append(
            {
                RUN_KEY: row[RUN_KEY],
                "metric": metric,
                "realized": value,
                "expected": figure,
                "limit": limit,
                "n_observed": row["n_observed"],
                "series": {s: v for s, v in zip(worse[SERIES_ID], worse[metric], strict=True)},
            }
        )
    return alerts


# ---------------------------------------------------------------- drift
def ks_2samp(a: ArrayLike, b: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test: (D, asymptotic p-value). D is the largest distance
    between the two empirical CDFs; p uses the Kolmogorov distribution with Stephens' small-
    sample correction (scipy.special.kolmogorov of the same argument)."""
    x = np.sort(np.asarray(a, dtype=np.float64))
    y = np.sort(np.asarray(b, dtype=np.float64))
    if x.size == 0 or y.size == 0:
        raise ValueError(f"KS test needs two non-empty samples, got {x.size} and {y.size}")
    grid = np.concatenate([x, y])
    d = float(
        np.max(
            np.abs(
                np.searchsorted(x, grid, side="right") / x.size
                - np.searchsorted(y, grid, side="right") / y.size
            )
        )
    )
    en = math.sqrt(x.size * y.size / (x.size + y.size))
    lam = (en + 0.12 + 0.11 / en) * d
    return d, kolmogorov_sf(lam)


def kolmogorov_sf(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution: 2 * sum_k (-1)^(k-1) exp(-2 k^2 lam^2)."""
    if lam < 0.2:  # the series converges slowly here and the value is 1 to 1e-9
        return 1.0
    k = np.arange(1, 101)
    total = 2.0 * np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * k**2 * lam**2))
    return float(min(max(total, 0.0), 1.0))


def drift(
    frame: pl.DataFrame, window: int, season_length: int, log: bool, alpha: float
) -> pl.DataFrame:
    """Per series: are its newest `window` steps distributed like the history before them?

    Compared as seasonal differences (x[t] - x[t - season_length], on the log scale when the
    model works on logs): the model learns that change, and a trending level would flag every
    growing series. A series too short for both samples (fewer than 2 differences each) gets
    drifted = null. Columns: series_id, n_reference, n_recent, ks_statistic, p_value, drifted."""
    rows = []
    for (sid,), group in (
        frame.sort(SERIES_ID, TIMESTAMP).partition_by(SERIES_ID, as_dict=True).items()
    ):
        x = group[VALUE].cast(pl.Float64).to_numpy()
        if log and bool(np.all(x > 0)):  # prepare.transform auto: logs where all are positive
            x = np.log(x)
        diff = x[season_length:] - x[:-season_length] if x.size > season_length else x[:0]
        recent, reference = diff[-window:], diff[:-window]
        if recent.size < 2 or reference.size < 2:
            rows.append(
                {SERIES_ID: sid, "n_reference": int(reference.size), "n_recent": int(recent.size)}
            )
            continue
        d, p = ks_2samp(reference, recent)
        rows.append(
            {
                SERIES_ID: str(sid),
                "n_reference": int(reference.size),
                "n_recent": int(recent.size),
                "ks_statistic": d,
                "p_value": p,
                "drifted": p < alpha,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            SERIES_ID: pl.String,
            "n_reference": pl.Int64,
            "n_recent": pl.Int64,
            "ks_statistic": pl.Float64,
            "p_value": pl.Float64,
            "drifted": pl.Boolean,
        },
    )


def drift_decision(report: pl.DataFrame, gate: str) -> dict:
    """What publish reads (flows/stages/publish.py via tasks/monitoring/gate.py): the drifted
    series and whether they block publishing (monitor.drift_gate: fail)."""
    drifted = report.filter(pl.col("drifted").fill_null(False))[SERIES_ID].to_list()
    return {
        "gate": gate,
        "drifted_series": drifted,
        "n_series": report.height,
        "not_tested": report.filter(pl.col("drifted").is_null())[SERIES_ID].to_list(),
        "blocks_publish": gate == "fail" and bool(drifted),
    }
