"""Publish: forecasts for the horizon after each series' last observation, in original units, with
their conformal prediction intervals; and the champion (a copy of the published model) that the
next evaluate compares its challenger with."""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from tasks.columns import SERIES_ID, TIMESTAMP
from tasks.evaluation.baselines import forecast_all
from tasks.evaluation.intervals import Calibration, bands
from tasks.evaluation.selection import LSTM, to_scaled
from tasks.evaluation.statistical import fitting
from tasks.features.prepare import Prepared, trained_through
from tasks.model.forecast import predict_scaled, to_original
from tasks.progress import Progress

MODEL = "model"  # column: which model produced a published row (lstm or a candidate's name)


def future_timestamps(last: np.ndarray, horizon: int, frequency: str) -> pl.Series:
    """Timestamps 1..horizon steps of `frequency` after each entry of `last`, series-major."""
    n, unit = re.fullmatch(r"(\d+)(\D+)", frequency).groups()
    steps = pl.DataFrame(
        {"last": np.repeat(last, horizon), "h": np.tile(np.arange(1, horizon + 1), len(last))}
    )
    # Calendar-aware offsets ("1mo" after Jan 31 is Feb 28), which a fixed timedelta is not.
    return steps.select(
        pl.col("last").dt.offset_by(pl.format("{}" + unit, pl.col("h") * int(n)))
    ).to_series()


def candidate_forecasts(
    prepared: Prepared, names: list[str]
) -> list[tuple[str, list[int], np.ndarray]]:
    """(candidate, its series' positions, their (n, H) forecasts in original units) for every
    candidate other than the LSTM in `names` (per series the model that publishes it), each
    fitted on its series' whole histories at once (`forecast_all`: one batched statsforecast fit
    per statistical candidate, over only the series it publishes), with progress logged."""
    chosen: dict[str, list[int]] = {}
    for s, name in enumerate(names):
        if name != LSTM:
            chosen.setdefault(name, []).append(s)
    n = sum(len(rows) for rows in chosen.values())
    if not n:
        return []
    progress = Progress(f"publish: fitting {fitting(chosen)}", total=n, unit="series")
    out, before = [], 0
    for name, rows in chosen.items():
        histories = [prepared.raw[prepared.series(s)] for s in rows]

        def report(done: int, before: int = before) -> None:
            progress.update(before + done)

        preds = forecast_all(
            [name], histories, prepared.geometry.horizon, prepared.season_length, report
        )[name]
        out.append((name, rows, preds))
        before += len(rows)
        progress.update(before)
    progress.done()
    return out


def future_forecasts(
    prepared: Prepared,
    model,
    frequency: str,
    calibration: Calibration | None = None,
    choices: dict[str, str] | None = None,
    calibrations: dict[str, Calibration] | None = None,
) -> pl.DataFrame:
    """series_id, timestamp, horizon_step, forecast, model (+ lo_L, hi_L per calibrated level)
    for the steps after the last observation.

    `choices`: per series the model that publishes it (tasks/evaluation/selection.py; a series not
    listed, or no choices, gets the LSTM); `calibration` is the LSTM's intervals, `calibrations`
    each other candidate's. Another candidate forecasts from (is fitted on) the series' whole
    history."""
    horizon = prepared.geometry.horizon
    lstm_scaled = predict_scaled(prepared, model, prepared.forecast_starts)  # (S, H)
    n = len(prepared.series_ids)
    names = [(choices or {}).get(str(sid), LSTM) for sid in prepared.series_ids]
    scaled = lstm_scaled.copy()
    for _name, rows, preds in candidate_forecasts(prepared, names):
        for s, pred in zip(rows, preds, strict=True):
            scaled[s] = to_scaled(prepared, s, pred)
    preds = np.stack([to_original(prepared, s, scaled[s]) for s in range(n)])
    last = prepared.timestamps[prepared.offsets[1:] - 1]
    columns = {
        SERIES_ID: np.repeat(prepared.series_ids.astype(str), horizon),
        TIMESTAMP: future_timestamps(last, horizon, frequency),
        "horizon_step": np.tile(np.arange(1, horizon + 1), len(last)),
        "forecast": preds.reshape(-1),
        MODEL: np.repeat(np.asarray(names, dtype=str), horizon),
    }
    if calibration is not None:
        cals = {LSTM: calibration, **(calibrations or {})}
        missing = sorted(set(names) - set(cals))
        if missing:
            raise ValueError(f"no interval calibration for {missing}: rerun evaluate")
        if any(len(w) != horizon for c in cals.values() for w in c.widths.values()):
            raise ValueError(
                f"the interval calibration is for another horizon than {horizon}: rerun evaluate"
            )
        per_series = [bands(prepared, s, scaled[s], cals[names[s]]) for s in range(n)]
        for name in per_series[0]:
            columns[name] = np.concatenate([b[name] for b in per_series])
    return pl.DataFrame(columns)


def champion_meta(prepared: Prepared, model_md5: str, run_key: str, published_at: str) -> dict:
    """What the next evaluate needs to judge the champion fairly: what it forecasts, in which
    space, and up to when it was trained (per series)."""
    return {
        "model_md5": model_md5,
        "run_key": run_key,
        "published_at": published_at,
        "lookback": prepared.geometry.lookback,
        "horizon": prepared.geometry.horizon,
        "transform": prepared.transform.transform_name,
        "scaler": prepared.transform.scaler_name,
        "season_length": prepared.season_length,
        "covariates": champion_covariates(prepared),
        # In the model's order: row s of a series embedding (model.series_embedding) is
        # series_ids[s], which the next evaluate needs to rescore the champion on its series.
        "series_ids": [str(sid) for sid in prepared.series_ids],
        "trained_through": trained_through(prepared),
    }


def champion_covariates(prepared: Prepared) -> dict[str, list[str]]:
    """The covariates a model trained on `prepared` reads, by kind (data.covariates)."""
    if prepared.covariates is None:
        return {"past": [], "future": [], "static": []}
    return prepared.covariates.used()
