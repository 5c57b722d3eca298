"""Could the backtest fit the statistical candidates once instead of once per fold? (issue 22)

The evaluate stage fits AutoETS, AutoTheta and AutoCES afresh on every backtest fold (most of its
time on M3 monthly: 92 of 132 s). statsforecast can instead fit each model once, on the earliest
fold's history, and run it forward over the later folds with its parameters kept
(`cross_validation(refit=False)`, the models' `forward`), as the project's LSTM already does
(`evaluate.refit: false`). This measures both ways on the same fold histories: the wall time
of the fits, and each model's mean MASE per fold, with the per-series ratio of the two ways'
errors on the latest fold (where the no-refit model is the stalest).

Data: M3's tuning split only (each series' training part less its last horizon; the test period
is never read), the series that hold every fold (`n_windows` folds `step` apart, the pipeline's
`auto` step, with two seasons, at least a horizon, before the earliest origin). The season rule
is the pipeline's (tasks/evaluation/statistical.py `season_for`), on the earliest fold's history.

    uv run --extra bench python -m benchmarks.forward_folds [--subset monthly ...]

Run alone on the machine (the timings use every core). Writes
benchmarks/results/forward_folds.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.datasets import FREQUENCIES
from tasks.config.auto import tail_steps
from tasks.evaluation.metrics import seasonal_naive_scale
from tasks.evaluation.statistical import _model, default_jobs, season_for
from tasks.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "forward_folds.json"
MODELS = ("ets", "theta", "ces")
N_WINDOWS = 3  # the pipeline's evaluate.n_windows default


def fold_histories(ys: list[np.ndarray], horizon: int, step: int, season: int) -> list[np.ndarray]:
    """The series that hold every fold with two seasons (at least a horizon) of history before
    the earliest origin: the seasonal models' full form on every fold."""
    need = max(2 * season, horizon) + horizon + (N_WINDOWS - 1) * step
    return [y for y in ys if y.size >= need]


def cross_validate(
    ys: list[np.ndarray], horizon: int, step: int, season: int, refit: bool, n_jobs: int
) -> np.ndarray:
    """(model, series, fold, horizon) forecasts, fold 0 the latest, and the seconds it took."""
    from statsforecast import StatsForecast
    from statsforecast.models import Naive

    out = np.full((len(MODELS), len(ys), N_WINDOWS, horizon), np.nan)
    earliest = [y.size - horizon - (N_WINDOWS - 1) * step for y in ys]
    groups: dict[int, list[int]] = {}
    for s, n in enumerate(earliest):
        groups.setdefault(season_for(n, season), []).append(s)
    for m, members in groups.items():
        models = []
        for name in MODELS:
            model = _model(name, m)
            model.alias = name
            models.append(model)
        lengths = np.array([ys[s].size for s in members])
        frame = pl.DataFrame(
            {
                "unique_id": np.repeat(np.arange(len(members)), lengths),
                "ds": np.concatenate([np.arange(n) for n in lengths]),
                "y": np.concatenate([ys[s] for s in members]),
            }
        )
        sf = StatsForecast(models=models, freq=1, n_jobs=n_jobs, fallback_model=Naive())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cv = sf.cross_validation(
                df=frame, h=horizon, step_size=step, n_windows=N_WINDOWS, refit=refit
            )
        cv = cv.sort(["unique_id", "cutoff", "ds"])
        for i, name in enumerate(MODELS):
            # statsforecast's windows run earliest first; the pipeline's fold 0 is the latest.
            preds = cv[name].to_numpy().reshape(len(members), N_WINDOWS, horizon)[:, ::-1]
            out[i, members] = preds
    return out


def scores(
    ys: list[np.ndarray], preds: np.ndarray, horizon: int, step: int, season: int
) -> np.ndarray:
    """(model, series, fold) MASE: the fold's MAE over the seasonal naive's in-sample MAE."""
    out = np.full(preds.shape[:3], np.nan)
    for s, y in enumerate(ys):
        for k in range(N_WINDOWS):
            origin = y.size - horizon - k * step
            scale = seasonal_naive_scale(y[:origin], season)
            actual = y[origin : origin + horizon]
            if scale > 0:
                out[:, s, k] = np.abs(preds[:, s, k] - actual).mean(axis=1) / scale
    return out


def subset(name: str, n_jobs: int) -> dict:
    from benchmarks.m3_test import m3_series

    spec = FREQUENCIES[name]
    horizon, season = spec["horizon"], spec["season"]
    step = tail_steps(season, horizon)
    parts = m3_series(name, split="tuning", horizon=horizon)
    ys = fold_histories([x for _, x, _ in parts], horizon, step, season)
    result: dict = {"series": len(ys), "of": len(parts), "horizon": horizon, "step": step}
    errors = {}
    for refit in (True, False):
        started = time.perf_counter()
        preds = cross_validate(ys, horizon, step, season, refit, n_jobs)
        seconds = time.perf_counter() - started
        errors[refit] = scores(ys, preds, horizon, step, season)
        key = "refit" if refit else "forward"
        result[key] = {
            "seconds": round(seconds, 2),
            "mase_by_fold": {
                model: [
                    round(float(np.nanmean(errors[refit][i, :, k])), 4) for k in range(N_WINDOWS)
                ]
                for i, model in enumerate(MODELS)
            },
        }
        print(f"{name} {key}: {seconds:.1f} s, {result[key]['mase_by_fold']}", flush=True)
    result["forward_over_refit_seconds"] = round(
        result["forward"]["seconds"] / result["refit"]["seconds"], 3
    )
    ratio = errors[False][:, :, 0] / errors[True][:, :, 0]  # the latest fold, per series
    result["latest_fold_error_ratio"] = {
        model: {
            "median": round(float(np.nanmedian(ratio[i])), 3),
            "share_over_1_5": round(float(np.nanmean(ratio[i] > 1.5)), 3),
            "share_under_0_67": round(float(np.nanmean(ratio[i] < 1 / 1.5)), 3),
        }
        for i, model in enumerate(MODELS)
    }
    print(f"{name} latest-fold error ratio forward/refit: {result['latest_fold_error_ratio']}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subset", nargs="+", default=list(FREQUENCIES))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    n_jobs = default_jobs()
    results = {name: subset(name, n_jobs) for name in args.subset}
    write_json(
        args.out,
        {
            "benchmark": "forward_folds",
            "date": date.today().isoformat(),
            "machine": {"cores": os.cpu_count(), "n_jobs": n_jobs, "platform": platform.platform()},
            "data": "M3 tuning split (training parts less their last horizon), "
            "the series holding every fold",
            "models": list(MODELS),
            "n_windows": N_WINDOWS,
            "results": results,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
