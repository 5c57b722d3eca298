"""Publish: forecasts for the horizon after each series' last observation, in original units, with
their conformal prediction intervals; and the champion (a copy of the published model) that the
next evaluate compares its challenger with."""

from __future__ import annotations

import numpy as np
import polars as pl

from tasks import timegrid
from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.evaluation.baselines import forecast_all
from tasks.evaluation.combinations import COMBINATIONS, combine, needs_lstm
from tasks.evaluation.intervals import Calibration, bands
from tasks.evaluation.selection import LSTM, positive_floor, to_scaled
from tasks.evaluation.short import Forecast, forecast_batch
from tasks.evaluation.statistical import fitting
from tasks.features.prepare import Prepared, trained_through
from tasks.features.scaling import SeriesTransform
from tasks.model.forecast import predict_scaled, to_original
from tasks.progress import Progress

MODEL = "model"  # column: which model produced a published row (lstm or a candidate's name)
REASON = "reason"  # column: why that model (models/selection.json's reasons)


def future_timestamps(
    last: np.ndarray, horizon: int, frequency: str, month_end: np.ndarray | None = None
) -> pl.Series:
    """Timestamps 1..horizon steps of `frequency` after each entry of `last`, series-major.

    Calendar-aware ("1mo" after Jan 31 is Feb 28, which a fixed timedelta is not) and keeping the
    data's anchor: where `month_end` (per series, tasks.timegrid.month_end_series; default: where
    `last` is a month end) a calendar step lands on month ends (Jun 30 + 1mo = Jul 31)."""
    if month_end is None:
        month_end = pl.Series(last).dt.day() == pl.Series(last).dt.month_end().dt.day()
    steps = pl.DataFrame(
        {
            "last": np.repeat(last, horizon),
            "end": np.repeat(np.asarray(month_end, dtype=bool), horizon),
            "h": np.tile(np.arange(1, horizon + 1), len(last)),
        }
    )
    anchored = timegrid.offset_steps(pl.col("last"), pl.col("h"), frequency, pl.col("end"))
    return steps.select(anchored.alias("last")).to_series()


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
    reasons: dict[str, str] | None = None,
) -> pl.DataFrame:
    """series_id, timestamp, horizon_step, forecast, model, reason (+ lo_L, hi_L per calibrated
    level) for the steps after the last observation.

    `choices`: per series the model that publishes it (tasks/evaluation/selection.py; a series not
    listed, or no choices, gets the LSTM); `calibration` is the LSTM's intervals, `calibrations`
    each other candidate's. Another candidate forecasts from (is fitted on) the series' whole
    history."""
    horizon = prepared.geometry.horizon
    lstm_scaled = predict_scaled(prepared, model, prepared.forecast_starts)  # (S, H)
    n = len(prepared.series_ids)
    names = [(choices or {}).get(str(sid), LSTM) for sid in prepared.series_ids]
    scaled = lstm_scaled.copy()
    direct = [LSTM if needs_lstm(name) else name for name in names]
    for _name, rows, preds in candidate_forecasts(prepared, direct):
        for s, pred in zip(rows, preds, strict=True):
            scaled[s] = to_scaled(prepared, s, pred)
    # A combination with the network (tasks/evaluation/combinations.py): its other parts fitted
    # like any candidate on the series it publishes, averaged with the LSTM's forecast there.
    combos = {s: name for s, name in enumerate(names) if needs_lstm(name)}
    if combos:
        parts = {s: {LSTM: to_original(prepared, s, lstm_scaled[s])} for s in combos}
        others = dict.fromkeys(p for c in combos.values() for p in COMBINATIONS[c] if p != LSTM)
        for part in others:
            wanted = [
                part if s in combos and part in COMBINATIONS[combos[s]] else LSTM for s in range(n)
            ]
            for _name, rows, preds in candidate_forecasts(prepared, wanted):
                for s, pred in zip(rows, preds, strict=True):
                    parts[s][part] = pred
        for s, name in combos.items():
            scaled[s] = to_scaled(prepared, s, combine(name, parts[s]))
    preds = np.stack([to_original(prepared, s, scaled[s]) for s in range(n)])
    last = prepared.timestamps[prepared.offsets[1:] - 1]
    month_end = timegrid.month_end_series(prepared.timestamps, np.diff(prepared.offsets))
    columns = {
        SERIES_ID: np.repeat(prepared.series_ids.astype(str), horizon),
        TIMESTAMP: future_timestamps(last, horizon, frequency, month_end),
        "horizon_step": np.tile(np.arange(1, horizon + 1), len(last)),
        "forecast": preds.reshape(-1),
        MODEL: np.repeat(np.asarray(names, dtype=str), horizon),
        REASON: np.repeat(_reasons(prepared.series_ids, reasons), horizon),
    }
    if calibration is not None:
        cals = _calibrations(names, {LSTM: calibration, **(calibrations or {})}, horizon)
        per_series = [bands(prepared, s, scaled[s], cals[names[s]]) for s in range(n)]
        for name in per_series[0]:
            columns[name] = np.concatenate([b[name] for b in per_series])
    return pl.DataFrame(columns)


def _reasons(series_ids, reasons: dict[str, str] | None) -> np.ndarray:
    # A selection.json from before reasons were recorded: unknown, as in an older store.
    return np.asarray([(reasons or {}).get(str(sid), "unknown") for sid in series_ids], dtype=str)


def _calibrations(names, cals: dict[str, Calibration], horizon: int) -> dict[str, Calibration]:
    missing = sorted(set(names) - set(cals))
    if missing:
        raise ValueError(f"no interval calibration for {missing}: rerun evaluate")
    if any(len(w) != horizon for c in cals.values() for w in c.widths.values()):
        raise ValueError(
            f"the interval calibration is for another horizon than {horizon}: rerun evaluate"
        )
    return cals


def short_forecasts(
    series: dict[str, pl.DataFrame],
    horizon: int,
    season_length: int,
    frequency: str,
    transform: SeriesTransform,
    choices: dict[str, str],
    calibrations: dict[str, Calibration] | None = None,
    reasons: dict[str, str] | None = None,
    forecast: Forecast = forecast_batch,
) -> pl.DataFrame:
    """future_forecasts' frame for the short series (tasks/evaluation/short.py: id -> its
    timestamp, value rows), each by its chosen candidate fitted on its whole history (one
    `forecast` call per candidate). Intervals: the candidate's calibration (scaled space, pooled
    over the LSTM series' folds) around the forecast in the series' own scaled space,
    `transform` (unfitted; fitted here per series on the whole history: no test tail is left to
    leak into)."""
    if not series:
        return pl.DataFrame()
    ids = list(series)
    unchosen = [sid for sid in ids if sid not in choices]
    if unchosen:  # evaluate chose for every short series it saw: these are newer data
        raise ValueError(f"no model chosen for short series {unchosen[:5]}: rerun evaluate")
    names = [choices[sid] for sid in ids]
    cals = None if calibrations is None else _calibrations(names, calibrations, horizon)
    histories = {sid: part[VALUE].to_numpy().astype(np.float64) for sid, part in series.items()}
    raw: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(names):
        mine = [sid for sid, n in zip(ids, names, strict=True) if n == name]
        preds = forecast(name, [histories[sid] for sid in mine], horizon, season_length)
        raw.update(zip(mine, preds, strict=True))
    preds, bounds = [], []
    for sid, name in zip(ids, names, strict=True):
        history = histories[sid]
        transform.fit(sid, history)
        scaled = transform.transform(sid, _positive(sid, raw[sid], history, transform))
        preds.append(transform.inverse(sid, scaled))  # as the LSTM series' path round-trips
        if cals is not None:
            bounds.append(
                {
                    f"{b}_{lv}": transform.inverse(sid, scaled + sign * cals[name].widths[lv])
                    for lv in cals[name].levels
                    for b, sign in (("lo", -1), ("hi", 1))
                }
            )
    # As prepare reads them: UTC wall time, microseconds.
    stamps = [series[sid][TIMESTAMP].to_numpy() for sid in ids]
    last = np.asarray([t[-1] for t in stamps], "datetime64[us]")
    lengths = np.asarray([len(t) for t in stamps])
    month_end = timegrid.month_end_series(np.concatenate(stamps), lengths)
    columns = {
        SERIES_ID: np.repeat(np.asarray(ids, dtype=str), horizon),
        TIMESTAMP: future_timestamps(last, horizon, frequency, month_end),
        "horizon_step": np.tile(np.arange(1, horizon + 1), len(ids)),
        "forecast": np.concatenate(preds),
        MODEL: np.repeat(np.asarray(names, dtype=str), horizon),
        REASON: np.repeat(_reasons(ids, reasons), horizon),
    }
    for key in bounds[0] if bounds else ():
        columns[key] = np.concatenate([b[key] for b in bounds])
    return pl.DataFrame(columns)


def _positive(
    sid: str, pred: np.ndarray, history: np.ndarray, transform: SeriesTransform
) -> np.ndarray:
    """As selection.to_scaled: under the log transform a forecast <= 0 has no log; it is raised
    to the smallest positive value of the series for the interval arithmetic."""
    if transform.kind(sid) != "log":
        return pred
    return positive_floor(pred, history)


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
