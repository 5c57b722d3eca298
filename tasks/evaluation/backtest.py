"""Rolling-origin backtest: folds, their models, their forecasts and scores. Pure functions.

Fold k (k = 0 the latest) of a series of length N has origin N - H - k * step (H =
forecast.horizon): it trains on everything before the origin and forecasts the H steps after it.
Each fold is built by `tasks.features.prepare.prepare` on the series cut at the fold's end (origin +
H), so its scaler is fitted on that fold's training part only and no test value of the fold leaks
into it. Fold 0 is exactly the prepare stage's split.

Models (evaluate.refit):
- refit: a model (ensemble) trained per fold on that fold's training part; fold 0 reuses the train
  stage's model (same origin, same data). Costs n_windows - 1 extra fits; every fold is scored
  the way the published model is made.
- no refit (the default): the train stage fits the earliest fold (`training_fold`), and that one
  model scores every fold, its input windows rolling forward over data it never trained on. Costs
  no fit here, whatever n_windows; every fold after the earliest, fold 0 too, is scored by a model
  staler than the shipped one (pessimistic: up to (n_windows - 1) * step steps further from its
  training end). One fit in all, where refit costs n_windows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config, auto
from tasks.errors import PipelineError
from tasks.evaluation import metrics
from tasks.evaluation.baselines import MODELS, STATISTICAL, forecast_all
from tasks.evaluation.combinations import combine, needs_lstm
from tasks.evaluation.statistical import fitting
from tasks.features.covariates import frame_columns, static_columns
from tasks.features.prepare import Prepared, prepare
from tasks.model.forecast import predict_scaled, to_original
from tasks.progress import Progress
from tasks.timefmt import iso


class FoldGeometryError(PipelineError):
    """The series are too short for the requested folds, or the horizon for the history."""


# ---------------------------------------------------------------- geometry
def check_geometry(series_ids: np.ndarray, lengths: np.ndarray, cfg: Config) -> None:
    """Stop before any work when a prepared series cannot hold every fold of the LSTM's backtest.
    Prepare keeps such series out (tasks.features.prepare.lstm_series; they are backtested on
    the folds they have by tasks/evaluation/short.py), so this fires only on prepared data from
    other params than the current ones: name the series and the keys."""
    h, e, p = cfg.forecast.horizon, cfg.evaluate, cfg.prepare
    need = cfg.lstm_history
    lines = [
        f"series {str(sid)!r}: {int(n)} steps, the LSTM's folds need at least {need}"
        for sid, n in zip(series_ids, lengths, strict=True)
        if int(n) < need
    ]
    if lines:
        raise FoldGeometryError(
            "the backtest folds do not fit the prepared data:\n  "
            + "\n  ".join(lines)
            + f"\nneeded = prepare.lookback ({p.lookback}) + prepare.validation_steps "
            f"({p.validation_steps}) + 2 * forecast.horizon ({2 * h}) + (evaluate.n_windows - 1) "
            f"* evaluate.step ({(e.n_windows - 1) * e.step}) = {need}; the prepare stage keeps "
            "shorter series out of the LSTM's data: rerun it (dvc repro)"
        )


def origins(prepared: Prepared, cfg: Config) -> np.ndarray:
    """(n_windows, S) absolute index of each fold's origin (first forecast step) per series."""
    cfg = auto.resolve(cfg, prepared.lengths)  # evaluate.step: auto from the whole series
    k = np.arange(cfg.evaluate.n_windows)[:, None]
    return prepared.offsets[1:][None, :] - cfg.forecast.horizon - k * cfg.evaluate.step


def fold_config(cfg: Config) -> Config:
    """The config a single fold is prepared with: its own split needs no room for other folds."""
    return cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(update={"n_windows": 1})})


def frame_of(prepared: Prepared) -> pl.DataFrame:
    """The validated long frame, rebuilt from the prepared arrays (raw values, original units)."""
    lengths = np.diff(prepared.offsets)
    return pl.DataFrame(
        {
            SERIES_ID: np.repeat(prepared.series_ids.astype(str), lengths),
            TIMESTAMP: prepared.timestamps,
            VALUE: prepared.raw,
            # The covariates as observed: each fold rescales them on its own training part.
            **frame_columns(prepared.covariates),
            **static_columns(prepared.covariates, lengths),
        }
    )


def build_folds(prepared: Prepared, cfg: Config) -> list[Prepared]:
    """Fold k = prepare() of each series cut at its fold end (N - k * step); fold 0 = `prepared`."""
    # `auto` params from the whole series, once: a fold's cut lengths must not change them.
    cfg = auto.resolve(cfg, prepared.lengths)
    check_geometry(prepared.series_ids, np.diff(prepared.offsets), cfg)
    folds = [prepared]
    if cfg.evaluate.n_windows == 1:
        return folds  # the holdout alone: no rebuilt frame (320 MB at 10M rows)
    frame = frame_of(prepared)
    folds += [_fold(frame, cfg, k) for k in range(1, cfg.evaluate.n_windows)]
    # A series embedding (model.series_embedding) finds a series by its position, and without
    # refit one fold's model scores every fold: each fold must list the same series in the same
    # order. prepare sorts them and every fold keeps every series; this guards that invariant.
    for k, fold in enumerate(folds[1:], start=1):
        if not np.array_equal(fold.series_ids, prepared.series_ids):
            raise ValueError(f"fold {k} lists other series than fold 0, or in another order")
    return folds


def _fold(frame: pl.DataFrame, cfg: Config, k: int) -> Prepared:
    """Fold k: every series cut at N - k * step, prepared with its own split and scaler."""
    cut = frame.filter(
        pl.int_range(pl.len()).over(SERIES_ID) < pl.len().over(SERIES_ID) - k * cfg.evaluate.step
    )
    return prepare(cut, fold_config(cfg))


def training_fold(prepared: Prepared, cfg: Config) -> Prepared:
    """What the train stage fits: without refit, the earliest fold (its model then scores every
    fold, and evaluate trains nothing for the backtest); with refit or one fold, fold 0 (the
    prepare stage's split). The same arrays `build_folds` gives as its last fold."""
    cfg = auto.resolve(cfg, prepared.lengths)
    n = cfg.evaluate.n_windows
    if cfg.evaluate.refit or n == 1:
        return prepared
    check_geometry(prepared.series_ids, np.diff(prepared.offsets), cfg)
    return _fold(frame_of(prepared), cfg, n - 1)


# ---------------------------------------------------------------- models
@dataclass
class FoldModels:
    models: list  # the model scoring each fold
    stage: object  # the train stage's model: the challenger publish would ship
    trained: list[dict] = field(default_factory=list)  # summaries of the fits made here
    note: str = ""


def fold_models(
    folds: list[Prepared],
    cfg: Config,
    stage_model: Callable[[], object],
    checkpoint_dir: Path,
    train_fn: Callable | None = None,
) -> FoldModels:
    """The model scoring each fold (see the module docstring). With refit the fits run before
    `stage_model()` loads the train stage's model: the CPU can only be split into replicas
    before TensorFlow starts."""
    n = len(folds)
    cfg = auto.resolve(cfg, folds[0].lengths)  # fold 0: the whole series (build_folds)
    if cfg.evaluate.refit:
        if train_fn is None:
            from tasks.model.train import train as train_fn
        fitted = [train_fn(folds[k], cfg, Path(checkpoint_dir) / f"fold_{k}") for k in range(1, n)]
        stage = stage_model()
        return FoldModels(
            models=[stage, *(f.model for f in fitted)],
            stage=stage,
            trained=[{"fold": k, **f.summary} for k, f in enumerate(fitted, start=1)],
            note=f"refit: fold 0 scored by the train stage's model, folds 1..{n - 1} by a model "
            "trained on each fold's training part",
        )
    stage = stage_model()
    if n == 1:
        return FoldModels([stage], stage, [], "one fold, scored by the train stage's model")
    # The train stage fitted the earliest fold (`training_fold`): no fit here.
    return FoldModels(
        models=[stage] * n,
        stage=stage,
        trained=[],
        note=f"no refit: the train stage's model, trained at fold {n - 1}'s origin, scores "
        "every fold",
    )


# ---------------------------------------------------------------- scoring
def _score(actual: np.ndarray, pred: np.ndarray, insample: np.ndarray, m: int) -> dict:
    """metrics.score, except that MASE (every metric in metrics.SCALED) is None, not an error,
    for a series whose training part has a zero seasonal-naive scale (constant): it is left
    out of the MASE means."""
    scale = metrics.seasonal_naive_scale(insample, m)
    return {
        name: None if name in metrics.SCALED and not scale > 0 else metric(actual, pred, scale)
        for name, metric in metrics.METRICS.items()
    }


@dataclass
class FoldResult:
    fold: int
    prepared: Prepared
    lstm_scaled: np.ndarray  # (S, H)
    actual_scaled: np.ndarray  # (S, H)
    actual: np.ndarray  # (S, H) original units
    preds: dict[str, np.ndarray]  # model -> (S, H) original units
    scores: dict[str, list[dict]]  # model -> one score dict per series
    scales: np.ndarray  # (S,) in-sample seasonal-naive MAE (MASE denominators)

    @property
    def residuals(self) -> np.ndarray:
        """(S, H) LSTM residuals in the scaled space (actual - forecast)."""
        return self.actual_scaled - self.lstm_scaled


def model_forecasts(
    prepared: Prepared, model, series_index: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(scaled, original) forecasts of `model` for the test tail of every series of a fold.
    `series_index`: see `tasks.model.forecast.model_inputs` (None: the fold's own series order)."""
    scaled = predict_scaled(prepared, model, prepared.test_starts, series_index=series_index)
    original = np.stack([to_original(prepared, s, scaled[s]) for s in range(len(scaled))])
    return scaled, original


def score_series(prepared: Prepared, preds: np.ndarray) -> list[dict]:
    """Scores of (S, H) original-unit forecasts against a fold's test tails."""
    m, h = prepared.season_length, prepared.geometry.horizon
    out = []
    for s in range(len(prepared.series_ids)):
        lo, end = int(prepared.offsets[s]), int(prepared.train_end[s])
        out.append(_score(prepared.raw[end : end + h], preds[s], prepared.raw[lo:end], m))
    return out


def score_fold(
    fold: int,
    prepared: Prepared,
    model,
    names: tuple[str, ...] = MODELS,
    reuse: FoldResult | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> FoldResult:
    """The fold's forecasts and scores of the LSTM `model` and of every other name in `names`
    (tasks.evaluation.baselines.scored_models). `reuse`: a result of the same fold whose non-network
    forecasts are taken instead of fitted again (they depend on the history alone). The other
    forecasters are fitted on every series' training part at once (`baselines.forecast_all`:
    the statistical ones in batched statsforecast calls, which report `on_progress(series)`)."""
    h, m = prepared.geometry.horizon, prepared.season_length
    scaled, lstm = model_forecasts(prepared, model)
    actual, actual_scaled, scales, insamples = [], [], [], []
    for s, sid in enumerate(prepared.series_ids):
        lo, end = int(prepared.offsets[s]), int(prepared.train_end[s])
        insample, y = prepared.raw[lo:end], prepared.raw[end : end + h]
        insamples.append(insample)
        actual.append(y)
        actual_scaled.append(prepared.transform.transform(str(sid), y))
        scales.append(metrics.seasonal_naive_scale(insample, m))
    # The network's combinations last: from this fold's LSTM forecasts, never reused.
    others = [name for name in names if name != "lstm" and not needs_lstm(name)]
    preds = {"lstm": lstm}
    if reuse is not None:
        preds.update({name: reuse.preds[name] for name in others if name in reuse.preds})
    preds.update(forecast_all([n for n in others if n not in preds], insamples, h, m, on_progress))
    preds.update({name: combine(name, preds) for name in names if needs_lstm(name)})
    stacked = {name: preds[name] for name in names}
    return FoldResult(
        fold=fold,
        prepared=prepared,
        lstm_scaled=scaled,
        actual_scaled=np.stack(actual_scaled),
        actual=np.stack(actual),
        preds=stacked,
        scores={name: score_series(prepared, stacked[name]) for name in names},
        scales=np.asarray(scales),
    )


def _fold_reporter(progress: Progress, k: int, n_folds: int, before: int) -> Callable[[int], None]:
    """Fold k's `on_progress`: its series done, counted on from the `before` of earlier folds."""

    def report(done: int) -> None:
        progress.update(before + done, extra=f"(fold {k + 1}/{n_folds})")

    return report


def run_backtest(
    folds: list[Prepared], models: list, names: tuple[str, ...] = MODELS
) -> list[FoldResult]:
    """Every fold scored: the LSTM by its fold's model, and every other forecaster in `names`.
    The statistical candidates' fits (seconds per series) log progress over all folds."""
    statistical = [name for name in names if name in STATISTICAL]
    sizes = [len(p.series_ids) for p in folds]
    progress = None
    if statistical:
        progress = Progress(
            f"backtest: fitting {fitting(statistical)} on {len(folds)} fold(s)",
            total=sum(sizes),
            unit="series",
        )
    results = []
    for k, p in enumerate(folds):
        report = None
        if progress is not None:
            report = _fold_reporter(progress, k, len(folds), sum(sizes[:k]))
        results.append(score_fold(k, p, models[k], names, on_progress=report))
    if progress is not None:
        progress.done()
    return results


# ---------------------------------------------------------------- aggregation
def mean_scores(rows: list[dict]) -> dict[str, float | None]:
    """Mean of each metric over score dicts; None entries (undefined MASE) are left out."""
    out: dict[str, float | None] = {}
    for key in metrics.METRICS:
        vals = [r[key] for r in rows if r[key] is not None]
        out[key] = float(np.mean(vals)) if vals else None
    return out


def aggregate(results: list[FoldResult]) -> dict[str, dict]:
    """Per model: the mean over every (fold, series) pair."""
    names = results[0].scores
    return {name: mean_scores([row for r in results for row in r.scores[name]]) for name in names}


def undefined_mase(results: list[FoldResult]) -> list[dict]:
    return [
        {"fold": r.fold, "series_id": str(r.prepared.series_ids[s])}
        for r in results
        for s in range(len(r.scales))
        if r.scales[s] == 0
    ]


def per_horizon_mase(results: list[FoldResult]) -> dict[str, list[float | None]]:
    """Per model, per horizon step: |error| / in-sample scale, averaged over folds and series."""
    out = {}
    for name in results[0].preds:
        rows = [
            np.abs(r.actual[s] - r.preds[name][s]) / r.scales[s]
            for r in results
            for s in range(len(r.scales))
            if r.scales[s] > 0
        ]
        out[name] = [float(v) for v in np.mean(rows, axis=0)] if rows else None
    return out


def fold_origin_timestamps(result: FoldResult) -> dict[str, str]:
    p = result.prepared
    return {str(sid): iso(p.timestamps[int(p.train_end[s])]) for s, sid in enumerate(p.series_ids)}
