"""Evaluate: rolling-origin backtest of the LSTM and the baselines, conformal intervals, and the
champion rescored on the same folds. Pure: the stage runner (flows/stages/evaluate.py) does the
file I/O and hands in the models.

Scores are means over every (fold, series) pair: RMSE, MAE, sMAPE, MASE (scaled by the fold's
in-sample seasonal-naive error; left out for a series whose training part is constant, listed
under `mase_undefined`) and, for the LSTM, the backtest coverage of its intervals. Beside them,
`published`: the per-series mixture publish would ship (tasks/evaluation/selection.py), chosen on
folds 1.. and scored on fold 0 alone, with `latest_fold` (every model on fold 0) to compare it with.

The champion (the model published last) is rescored on every current fold. Its change check
compares it with the challenger on the fold-series pairs *neither* was trained on. The
challenger is the mixture publish would ship (tasks/evaluation/selection.py), scored on fold 0: its
LSTM series by the final model, trained through fold 0's origin, its other series by their chosen
candidate (a baseline or statistical model fitted on the history before the origin). So that is
fold 0, minus any series the champion saw there (it trained on data up to the last observation
of its own run, `trained_through` in published/champion.json). A series the champion served
with another candidate is rescored as that candidate, refitted on the history before the origin.
Comparing there, and not on folds one of them trained on, keeps the comparison fair: a champion
trained on the same data as the challenger would otherwise be scored in-sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tasks.columns import SERIES_ID, TIMESTAMP
from tasks.config import Config, auto
from tasks.evaluation import backtest, intervals, selection
from tasks.evaluation.backtest import FoldModels, FoldResult
from tasks.evaluation.baselines import scored_models
from tasks.evaluation.gate import REFERENCE, series_vs_reference
from tasks.evaluation.selection import LSTM, Selection
from tasks.model.forecast import (
    DivergedModel,
    SeriesIndexError,
    has_series_embedding,
    series_index_for,
)

# Catalog keys of the plot frames evaluate returns (dvc.yaml's top-level `plots` render them).
TEST_FORECAST = "plot_test_forecast"  # latest fold: actual, forecasts, intervals
BACKTEST_FORECAST = "plot_backtest_forecast"  # every fold, long format
FOLD_ERRORS = "plot_fold_errors"  # RMSE per fold and model
HORIZON_ERRORS = "plot_horizon_errors"  # MASE per horizon step and model


@dataclass
class Champion:
    """The model published last, as read back from the publish stage's state."""

    model: object
    md5: str
    meta: dict | None  # champion metadata: geometry, transform, trained_through, ...
    path: str = ""  # where it was read from (reported in the comparison)


@dataclass
class Evaluation:
    scores: dict  # metrics/evaluate.json
    folds: dict  # metrics/folds.json
    calibration: intervals.Calibration  # models/intervals.json
    comparison: dict | None  # champion vs challenger (None: no champion, a first run)
    selection: Selection | None = None  # the per-series choice (models/selection.json)
    plots: dict[str, pl.DataFrame] = field(default_factory=dict)  # by catalog key
    # Fold 0, per LSTM series: the published mixture's scores and seasonal naive's (what the
    # gate judges, with the short series' added: tasks/evaluation/short.py `every_series`).
    fold0: tuple[list[dict], list[dict]] = ((), ())


# ---------------------------------------------------------------- champion
def _champion_series(champion: Champion) -> list[str] | None:
    """The series the champion's embedding rows stand for, in row order (None: unknown)."""
    meta = champion.meta or {}
    if "series_ids" in meta:
        return [str(sid) for sid in meta["series_ids"]]
    if "trained_through" in meta:
        # champion.json from before it listed series_ids: trained_through has one key per
        # series, and prepare numbers series in sorted order, so the sorted keys are the rows.
        return sorted(str(sid) for sid in meta["trained_through"])
    return None


def _series_index(champion: Champion, series_ids: np.ndarray) -> np.ndarray | None:
    """Row of each current series in the champion's series embedding (None: it has none).

    The rows were numbered by the champion's own series set, which need not be the current one:
    a series added or removed since shifts every later position, so positions are matched by
    series id, never reused. Raises SeriesIndexError when they cannot be matched.
    """
    if not has_series_embedding(champion.model):
        return None
    from tasks.model.network import (
        series_table_size,  # Keras is loaded: the champion is a Keras model
    )

    known = _champion_series(champion)
    if known is None:
        raise SeriesIndexError(
            "the champion has a series embedding (model.series_embedding) but no metadata "
            "(published/champion.json missing or not this model's) saying which series its "
            "vectors belong to"
        )
    table = series_table_size(champion.model)
    if table != len(known):
        raise SeriesIndexError(
            f"the champion's series embedding (model.series_embedding) has {table} rows, but "
            f"its metadata lists {len(known)} series"
        )
    return series_index_for(known, series_ids)


def covariates_used(cfg: Config) -> dict[str, list[str]]:
    """The covariates a model of this config reads, by kind (champion meta, lineage, metrics)."""
    c = cfg.data.covariates
    return {"past": list(c.past), "future": list(c.future), "static": list(c.static)}


def _transform_of(cfg: Config, transform=None) -> str:
    """What the series are transformed with: prepare.transform, or under `auto` the one kind every
    series got (a champion published under `log` is comparable where auto took the log of every
    series: the same numbers); `auto` when the kinds differ."""
    if cfg.prepare.transform != "auto" or transform is None:
        return cfg.prepare.transform
    kinds = set(transform.kinds.values())
    return kinds.pop() if len(kinds) == 1 else "auto"


def _incompatible(
    champion: Champion, cfg: Config, series_ids: np.ndarray, transform=None
) -> str | None:
    """Why the champion cannot forecast the current folds' `series_ids` (None when it can).
    `transform`: the folds' SeriesTransform (what `auto` chose per series)."""
    effective = _transform_of(cfg, transform)
    want = {
        "lookback": cfg.prepare.lookback,
        "horizon": cfg.forecast.horizon,
        "transform": effective,
        "scaler": cfg.prepare.scaler,
        "season_length": cfg.data.season_length,
        # Other covariates are other inputs (tasks/features/covariates.py).
        "covariates": covariates_used(cfg),
    }
    if champion.meta:
        same_transform = champion.meta.get("transform") in (cfg.prepare.transform, effective)
        diff = [
            f"{k} {champion.meta.get(k)!r} -> {v!r}"
            for k, v in want.items()
            if k in champion.meta
            and champion.meta[k] != v
            and not (k == "transform" and same_transform)
        ]
        if diff:
            return "the params changed what a forecast means: " + ", ".join(diff)
    model = champion.model
    try:
        lookback = int(model.inputs[0].shape[1])
        horizon = int(model.outputs[0].shape[-1])
    except (AttributeError, IndexError, TypeError):
        return None
    # A champion from before its metadata listed covariates: its inputs tell.
    c = cfg.data.covariates
    inputs, want_inputs = len(model.inputs), 1 + bool(c.future) + bool(c.static)
    channels = int(model.inputs[0].shape[-1]) - has_series_embedding(model)
    want_channels = 1 + len(c.past) + len(c.future)
    if (inputs, channels) != (want_inputs, want_channels):
        return (
            f"champion reads {inputs} input(s) with {channels} window channel(s); the current "
            f"data.covariates need {want_inputs} with {want_channels}"
        )
    if (lookback, horizon) != (cfg.prepare.lookback, cfg.forecast.horizon):
        return (
            f"champion takes lookback {lookback} and forecasts {horizon} steps; the current "
            f"params need {cfg.prepare.lookback} and {cfg.forecast.horizon}"
        )
    try:
        _series_index(champion, series_ids)
    except SeriesIndexError as err:
        return f"the champion cannot forecast the current series: {err}"
    return None


def _seen(champion: Champion, result: FoldResult) -> list[bool | None]:
    """Per series: did the champion train on this fold's first test step (None: unknown)?"""
    through = (champion.meta or {}).get("trained_through") or {}
    origin = backtest.fold_origin_timestamps(result)
    out = []
    for sid in result.prepared.series_ids.astype(str):
        if not champion.meta or "trained_through" not in champion.meta:
            out.append(None)
        elif sid not in through:
            out.append(False)  # a series the champion never saw
        else:
            out.append(origin[sid] <= through[sid])
    return out


def compare_champion(
    results: list[FoldResult], challenger_rows: list[dict], champion: Champion, cfg: Config
) -> dict:
    """The champion rescored on every fold, and the gate metric of champion and challenger on
    the pairs neither trained on (see the module docstring). `challenger_rows`: the scores of
    the challenger (the published mixture) on fold 0, one per series."""
    metric = cfg.gate.metric
    base = {"path": champion.path, "md5": champion.md5, "metric": metric}
    if champion.meta:
        base["published_at"] = champion.meta.get("published_at")
        base["trained_through"] = champion.meta.get("trained_through")
    series_ids = results[0].prepared.series_ids  # every fold lists the same (build_folds)
    reason = _incompatible(champion, cfg, series_ids, results[0].prepared.transform)
    if reason:
        return {**base, "status": "incompatible", "reason": reason}
    index = _series_index(champion, series_ids)
    per_fold, champion_rows = {}, {}
    try:
        for r in results:
            _, preds = backtest.model_forecasts(r.prepared, champion.model, index)
            rows = backtest.score_series(r.prepared, preds)
            champion_rows[r.fold] = rows
            seen = _seen(champion, r)
            per_fold[f"fold_{r.fold}"] = {
                **backtest.mean_scores(rows),
                "seen_in_training": None if None in seen else any(seen),
            }
    except DivergedModel as err:
        return {**base, "status": "diverged", "reason": f"champion: {err}"}
    seen0 = _seen(champion, results[0])
    # A series the champion served with another candidate is rescored as that candidate: a
    # function of the history before the origin (fitted there), so never "seen".
    chosen = (champion.meta or {}).get("choices") or {}
    for s, sid in enumerate(series_ids.astype(str)):
        if chosen.get(sid, LSTM) != LSTM:
            if chosen[sid] in results[0].scores:
                champion_rows[0][s] = results[0].scores[chosen[sid]][s]
                seen0[s] = False
            else:  # a candidate this run does not score (evaluate.candidates changed)
                seen0[s] = True
    pairs = [
        s
        for s, seen in enumerate(seen0)
        if not seen
        and challenger_rows[s][metric] is not None
        and champion_rows[0][s][metric] is not None
    ]
    base.update(per_fold=per_fold)
    if not pairs:
        return {
            **base,
            "status": "no_comparable_folds",
            "reason": "the champion trained on every series' latest fold, or its "
            f"{metric} is undefined there: nothing to compare out of sample",
        }
    sids = [str(results[0].prepared.series_ids[s]) for s in pairs]
    return {
        **base,
        "status": "compared",
        "compared_on": {"fold": 0, "series": len(sids), "series_ids": sids[:20]},
        "training_period_known": None not in seen0,
        "champion": float(np.mean([champion_rows[0][s][metric] for s in pairs])),
        "challenger": float(np.mean([challenger_rows[s][metric] for s in pairs])),
    }


# ---------------------------------------------------------------- plots
def _forecast_frame(r: FoldResult, cal: intervals.Calibration) -> pl.DataFrame:
    p, h = r.prepared, r.prepared.geometry.horizon
    parts = []
    for s, sid in enumerate(p.series_ids.astype(str)):
        end = int(p.train_end[s])
        b = intervals.bands(p, s, r.lstm_scaled[s], cal)
        parts.append(
            pl.DataFrame(
                {
                    "fold": [r.fold] * h,
                    SERIES_ID: [sid] * h,
                    TIMESTAMP: p.timestamps[end : end + h],
                    "horizon_step": np.arange(1, h + 1),
                    "actual": r.actual[s],
                    "lstm": r.preds["lstm"][s],
                    **b,
                    **{name: r.preds[name][s] for name in r.preds if name != LSTM},
                }
            )
        )
    return pl.concat(parts)


def _plots(results: list[FoldResult], lofo: list[intervals.Calibration]) -> dict:
    names = tuple(results[0].scores)
    cal_for = lofo if len(lofo) == len(results) else lofo * len(results)
    backtest_frame = pl.concat([_forecast_frame(r, cal_for[r.fold]) for r in results])
    fold_errors = pl.DataFrame(
        {
            "fold": [r.fold for r in results],
            **{
                name: [backtest.mean_scores(r.scores[name])["rmse"] for r in results]
                for name in names
            },
        }
    )
    horizon = backtest.per_horizon_mase(results)
    steps = len(results[0].actual[0])
    horizon_errors = pl.DataFrame(
        {
            "horizon_step": np.arange(1, steps + 1),
            **{
                name: (vals if vals is not None else [None] * steps)
                for name, vals in horizon.items()
            },
        },
        schema_overrides={name: pl.Float64 for name in names},
    )
    return {
        TEST_FORECAST: backtest_frame.filter(pl.col("fold") == 0).drop("fold"),
        BACKTEST_FORECAST: backtest_frame,
        FOLD_ERRORS: fold_errors,
        HORIZON_ERRORS: horizon_errors,
    }


# ---------------------------------------------------------------- the stage's pure core
def evaluate(
    folds: list,
    models: FoldModels,
    cfg: Config,
    champion: Champion | None = None,
) -> Evaluation:
    """Backtest every fold, choose a model per series, calibrate the intervals, rescore the
    champion."""
    selection.require_folds(cfg)
    cfg = auto.resolve(cfg, folds[0].lengths)  # `auto` as the stages resolve it: whole series
    levels = tuple(cfg.evaluate.levels)
    names = scored_models(cfg.evaluate.candidates)
    results = backtest.run_backtest(folds, models.models, names)
    residuals = np.stack([r.residuals for r in results])  # (F, S, H), scaled space
    calibration = intervals.calibrate(residuals.reshape(-1, residuals.shape[-1]), levels)
    cov = intervals.coverage(residuals, levels)
    lofo = intervals.lofo_calibrations(residuals, levels)

    scores: dict = backtest.aggregate(results)
    for lv in levels:
        scores["lstm"][f"coverage_{lv}"] = cov["overall"][lv]
    scores.update(
        n_series=len(folds[0].series_ids),
        n_folds=len(folds),
        intervals={
            "space": "scaled",
            "coverage": {str(lv): cov["overall"][lv] for lv in levels},
            "coverage_method": cov["method"],
            "coverage_in_sample": {str(lv): cov["in_sample"][lv] for lv in levels},
            "pooled_steps": {str(lv): calibration.pooled_steps[lv] for lv in levels},
            "residuals_per_step": calibration.residuals_per_step,
            "exact": {str(lv): calibration.exact[lv] for lv in levels},
        },
        mase_undefined=backtest.undefined_mase(results),
    )

    fold_detail = {
        f"fold_{r.fold}": {
            "origin": backtest.fold_origin_timestamps(r),
            **{name: backtest.mean_scores(r.scores[name]) for name in names},
            "coverage": {str(lv): cov["per_fold"][r.fold][lv] for lv in levels},
        }
        for r in results
    }
    folds_json = {
        "n_windows": cfg.evaluate.n_windows,
        "step": cfg.evaluate.step,
        "refit": cfg.evaluate.refit,
        "models": {"note": models.note, "trained": models.trained},
        "folds": fold_detail,
        "horizon_mase": backtest.per_horizon_mase(results),
    }
    # The final model (trained through fold 0's origin) on fold 0: the backtest's own fold-0
    # model with refit or one fold; otherwise scored here, which also stops a diverged final
    # model now.
    if models.models[0] is models.stage:
        final = results[0]
    else:
        final = backtest.score_fold(0, folds[0], models.stage, names, reuse=results[0])
    folds_json["final_model_fold_0"] = backtest.mean_scores(final.scores["lstm"])
    # Per series the LSTM or another candidate, chosen on folds 1.., scored on fold 0
    # (tasks/evaluation/selection.py).
    chosen = selection.select(results, final, cfg)
    scores.update(
        published=chosen.published,
        latest_fold=chosen.latest_fold,
        selection=chosen.summary(len(folds)),
    )
    # The challenger is the published mixture: per series the chosen model's fold-0 scores.
    mixture_rows = [final.scores[c][s] for s, c in enumerate(chosen.choices)]
    # Per series against seasonal naive on that fold: the gate's per-series skill check.
    scores["vs_seasonal_naive"] = series_vs_reference(mixture_rows, final.scores[REFERENCE])
    comparison = (
        None if champion is None else compare_champion(results, mixture_rows, champion, cfg)
    )
    plots = _plots(results, lofo)
    return Evaluation(
        scores,
        folds_json,
        calibration,
        comparison,
        plots=plots,
        selection=chosen,
        fold0=(mixture_rows, list(final.scores[REFERENCE])),
    )
