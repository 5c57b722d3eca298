"""The anchor of the many-series run (benchmarks/many_series.py): statsforecast AutoETS +
AutoTheta `cross_validation` on the pipeline's folds plus `forecast`, timed, and their MASE on
the latest fold beside the pipeline's figure (same series, same fold)."""

from __future__ import annotations

import time

import numpy as np
import polars as pl

from tasks.columns import SERIES_ID, VALUE


def anchor(
    frame: pl.DataFrame,
    spec: dict,
    n_windows: int,
    step: int,
    n_jobs: int,
    lstm_series: list[str] | None = None,
) -> dict:
    """statsforecast AutoETS + AutoTheta: cross_validation on the pipeline's folds + forecast
    (Naive where a fit raises).
    With `lstm_series` (the series the pipeline's `"published"` figure is over), also their
    mean MASE on the latest fold (fold 0) beside the pipeline's, same series and fold."""
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta, Naive

    h, m = spec["horizon"], spec["season"]
    df = (
        frame.rename({SERIES_ID: "unique_id", VALUE: "y"})
        .with_columns(pl.int_range(pl.len()).over("unique_id").alias("ds"))[
            ["unique_id", "ds", "y"]
        ]
        .to_pandas()
    )
    # Folds need history before the earliest origin: series too short for them (the pipeline
    # forecasts those from the candidates that fit) are left out of the anchor's CV.
    need = h + (n_windows - 1) * step + max(2 * m, 3)
    lengths = df.groupby("unique_id")["y"].transform("size")
    cv_df = df[lengths >= need]
    # Naive answers a fit that raises (AutoETS's "tiny datasets" on a fold of a few steps), as in
    # the pipeline's own statistical candidates (tasks/evaluation/statistical.py).
    sf = StatsForecast(
        models=[AutoETS(season_length=m), AutoTheta(season_length=m)],
        freq=1,
        n_jobs=n_jobs,
        fallback_model=Naive(),
    )
    start = time.perf_counter()
    cv = sf.cross_validation(df=cv_df, h=h, n_windows=n_windows, step_size=step)
    cv_s = time.perf_counter() - start
    start = time.perf_counter()
    fc = sf.forecast(df=df, h=h)
    fc_s = time.perf_counter() - start
    assert isinstance(cv, pd.DataFrame) and len(fc) == df["unique_id"].nunique() * h
    accuracy = fold0_mase(cv, cv_df, m, lstm_series) if lstm_series else None
    return {
        "latest_fold_mase_on_lstm_series": accuracy,
        "seconds": round(cv_s + fc_s, 2),
        "cross_validation_s": round(cv_s, 2),
        "forecast_s": round(fc_s, 2),
        "cv_series": int(cv_df["unique_id"].nunique()),
        "n_jobs": n_jobs,
    }


def fold0_mase(cv, history, m: int, series: list[str]) -> dict:
    """Mean MASE on the latest origin of AutoETS, AutoTheta and their mean over `series` (scale:
    the seasonal naive's in-sample error before the origin, as the pipeline's MASE)."""
    from tasks.evaluation.metrics import seasonal_naive_scale

    cv = cv.reset_index() if "unique_id" not in cv.columns else cv
    cv = cv[cv["unique_id"].isin(set(series))]
    last = cv.groupby("unique_id")["cutoff"].transform("max")
    cv = cv[cv["cutoff"] == last]
    y = {u: g["y"].to_numpy() for u, g in history.groupby("unique_id")}
    out: dict[str, list[float]] = {"AutoETS": [], "AutoTheta": [], "mean_ets_theta": []}
    for uid, g in cv.groupby("unique_id"):
        insample = y[uid][: int(g["cutoff"].iloc[0]) + 1]
        scale = seasonal_naive_scale(insample, m if insample.size > m else 1)
        if not scale > 0:
            continue
        actual = g["y"].to_numpy()
        preds = {k: g[k].to_numpy() for k in ("AutoETS", "AutoTheta")}
        preds["mean_ets_theta"] = (preds["AutoETS"] + preds["AutoTheta"]) / 2
        for k, v in preds.items():
            out[k].append(float(np.mean(np.abs(actual - v)) / scale))
    return {k: round(float(np.mean(v)), 4) for k, v in out.items() if v} | {
        "series": len(out["AutoETS"])
    }
