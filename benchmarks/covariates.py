"""Covariates benchmark: MASE of the LSTM with and without its covariates, on the same folds.

Two data sets, each through the project's own functions (tasks.ingest.validate and
future_rows -> tasks.features.prepare.prepare -> tasks.evaluation.backtest build_folds / fold_models
/ run_backtest): the only difference between the two runs of a set is `data.covariates` (and the
covariate columns dropped from the frame without them), so both are scored on the same series,
origins and horizons, against the same seasonal naive.

- synthetic: store sales with a known future-driven effect. Each month a store runs a
  promotion with probability 0.3, planned ahead (a future-known covariate), which lifts demand
  by PROMO_LIFT (+50 %); a temperature reading (past covariate) and a store type (static:
  "mall" stores sell 1.6x) complete the example. The same generator writes the bundled example
  (`--write-example DIR`, data/examples/covariates/SOURCE.md). Requirement (issue 13): the
  covariate model reaches at most half the MASE of the model without them.
- macrodata: US real personal consumption expenditure (quarterly, 1959 Q1 .. 2009 Q3) with real
  disposable personal income as the covariate (data/benchmarks/macrodata.csv, copied from
  statsmodels.datasets.macrodata, public domain), as its quarterly growth (100 * log
  difference; the level is also scored). Declared future-known: a conditional ("given the
  income path") forecast, scored with the realized income; and, as the honest unconditional
  variant, past-only.

    python -m benchmarks.covariates            # both sets; prints and writes the JSON
    python -m benchmarks.covariates --quick    # fewer epochs (a smoke run)
    python -m benchmarks.covariates --write-example data/examples/covariates

Writes benchmarks/results/covariates.json (--out to change).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

RESULTS = Path("benchmarks/results/covariates.json")
MACRODATA = Path("data/benchmarks/macrodata.csv")

PROMO_LIFT = 0.5  # a promotion month sells 50 % more
PROMO_RATE = 0.3  # months with a promotion
MALL_FACTOR = 1.6  # a mall store sells 1.6x a street store


# ------------------------------------------------------------------------------ synthetic data
def synthetic(
    n_series: int = 8, n_steps: int = 120, horizon: int = 12, seed: int = 7
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(history, future): monthly sales of `n_series` stores over `n_steps` months with a
    promotion flag, temperature and store type; and the promotion plan of the `horizon` months
    after. sales = level * type * season * (1 + PROMO_LIFT * promotion) * (1 + noise 3 %),
    with a temperature effect of 1 % per standard deviation."""
    rng = np.random.default_rng(seed)
    hist, fut = [], []
    total = n_steps + horizon
    months = [date(2010 + i // 12, i % 12 + 1, 1) for i in range(total)]
    for s in range(n_series):
        kind = "mall" if s % 2 == 0 else "street"
        level = rng.uniform(80, 160) * (MALL_FACTOR if kind == "mall" else 1.0)
        phase = rng.uniform(0, 2 * np.pi)
        promo = (rng.random(total) < PROMO_RATE).astype(float)
        temp = 12 + 8 * np.sin(2 * np.pi * np.arange(total) / 12) + rng.normal(0, 2, total)
        season = 1 + 0.2 * np.sin(2 * np.pi * np.arange(total) / 12 + phase)
        trend = 1 + 0.002 * np.arange(total)
        noise = 1 + rng.normal(0, 0.03, total)
        temp_effect = 1 + 0.01 * (temp - 12) / 8
        sales = level * trend * season * (1 + PROMO_LIFT * promo) * temp_effect * noise
        sid = f"store_{s:02d}"
        for t in range(n_steps):
            hist.append((sid, months[t], round(float(sales[t]), 2), promo[t],
                         round(float(temp[t]), 2), kind))  # fmt: skip
        for t in range(n_steps, total):
            fut.append((sid, months[t], promo[t]))
    history = pl.DataFrame(
        hist,
        schema=["series_id", "timestamp", "value", "promotion", "temperature", "store_type"],
        orient="row",
    )
    future = pl.DataFrame(fut, schema=["series_id", "timestamp", "promotion"], orient="row")
    return history, future


def write_example(directory: Path) -> None:
    history, future = synthetic(n_series=4, n_steps=96)
    directory.mkdir(parents=True, exist_ok=True)
    history.write_csv(directory / "sales.csv")
    future.write_csv(directory / "future.csv")
    print(f"wrote {directory / 'sales.csv'} ({history.height} rows) and "
          f"{directory / 'future.csv'} ({future.height} rows)")  # fmt: skip


# ------------------------------------------------------------------------------ the runs
def params(base: dict, covariates: dict | None, quick: bool) -> dict:
    out = json.loads(json.dumps(base))
    out.setdefault("data", {})
    if covariates:
        out["data"]["covariates"] = covariates
        if covariates.get("future"):
            out["data"]["future_path"] = "future.csv"  # read here from the frame, not the path
    if quick:
        out.setdefault("training", {}).update(epochs=5, ensemble=1)
    return out


def backtest(frame: pl.DataFrame, future: pl.DataFrame | None, raw: dict) -> dict:
    """MASE (mean over folds and series) of the LSTM and seasonal naive, and what it cost."""
    from tasks.config import parse_config
    from tasks.evaluation.backtest import (
        aggregate,
        build_folds,
        fold_models,
        run_backtest,
        training_fold,
    )
    from tasks.features.prepare import prepare
    from tasks.ingest import validate
    from tasks.ingest.covariate_checks import validate_future
    from tasks.model.train import train

    cfg = parse_config(raw, source="benchmark")
    declared = cfg.data.covariates.declared
    frame = frame.select("series_id", "timestamp", "value", *declared)
    validated = validate(frame, cfg).drop("filled")
    fut = (
        validate_future(future.select("series_id", "timestamp", *cfg.data.covariates.future),
                        validated, cfg)
        if cfg.data.covariates.future and future is not None else None
    )  # fmt: skip
    # Without a future file the backtest still runs: every fold's horizon lies in the history,
    # where the covariates are observed (only a forecast past the end needs the file).
    prepared = prepare(validated, cfg, fut)
    folds = build_folds(prepared, cfg)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-cov-") as tmp:
        # as the train stage: the fold whose model scores the backtest (the earliest, no refit)
        stage = train(training_fold(prepared, cfg), cfg, checkpoint_dir=Path(tmp) / "stage")
        models = fold_models(folds, cfg, lambda: stage.model, Path(tmp))
    seconds = time.perf_counter() - started
    scores = aggregate(run_backtest(folds, models.models))
    return {
        "lstm_mase": scores["lstm"]["mase"],
        "seasonal_naive_mase": scores["seasonal_naive"]["mase"],
        "lstm_rmse": scores["lstm"]["rmse"],
        "train_seconds": round(seconds, 1),
        "epochs": [t["epochs"] for t in models.trained],
    }


SYNTHETIC_PARAMS = {
    "data": {"frequency": "1mo", "season_length": 12},
    "forecast": {"horizon": 12},
    "prepare": {"lookback": 24, "validation_steps": 12},
    "model": {"units": [32], "dropout": 0.0},
    "training": {"epochs": 60, "ensemble": 2, "batch_size": 32, "patience": 10},
    "evaluate": {"n_windows": 3, "step": 12, "refit": False},
}
SYNTHETIC_COVARIATES = {
    "past": ["temperature"],
    "future": ["promotion"],
    "static": ["store_type"],
}
MACRO_PARAMS = {
    "data": {"frequency": "3mo", "season_length": 4},
    "forecast": {"horizon": 8},
    "prepare": {"lookback": 16, "validation_steps": 8},
    "model": {"units": [32], "dropout": 0.0},
    "training": {"epochs": 60, "ensemble": 2, "batch_size": 16, "patience": 10},
    "evaluate": {"n_windows": 3, "step": 8, "refit": False},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.covariates",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="5 epochs, 1 member")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--only", nargs="*", choices=("synthetic", "macrodata"))
    parser.add_argument("--write-example", type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    if args.write_example:
        write_example(args.write_example)
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    chosen = args.only or ("synthetic", "macrodata")
    results: dict = {
        "date": date.today().isoformat(),
        "quick": args.quick,
        "machine": platform.machine(),
        "sets": {},
    }
    if "synthetic" in chosen:
        history, future = synthetic()
        runs = {
            "with_covariates": backtest(
                history, future, params(SYNTHETIC_PARAMS, SYNTHETIC_COVARIATES, args.quick)
            ),
            "without_covariates": backtest(
                history, None, params(SYNTHETIC_PARAMS, None, args.quick)
            ),
        }
        ratio = runs["with_covariates"]["lstm_mase"] / runs["without_covariates"]["lstm_mase"]
        results["sets"]["synthetic"] = {
            "series": history["series_id"].n_unique(),
            "steps": history.height // history["series_id"].n_unique(),
            "promotion_lift": PROMO_LIFT,
            "runs": runs,
            "mase_ratio_with_to_without": ratio,
            "at_most_half": ratio <= 0.5,
        }
    if "macrodata" in chosen:
        # Income as its quarterly growth (100 * log difference): the level trends out of the
        # range the scaling saw in training, the growth stays in it. The first quarter has no
        # growth and is dropped. The level itself is also scored, to show why.
        frame = (
            pl.read_csv(MACRODATA, try_parse_dates=True)
            .with_columns((100 * pl.col("realdpi").log().diff()).alias("income_growth"))
            .slice(1)
        )
        level = frame.drop("income_growth")
        growth = frame.drop("realdpi")
        runs = {
            "growth_future_known": backtest(
                growth, None, params(MACRO_PARAMS, {"future": ["income_growth"]}, args.quick)
            ),
            "growth_past_only": backtest(
                growth, None, params(MACRO_PARAMS, {"past": ["income_growth"]}, args.quick)
            ),
            "level_future_known": backtest(
                level, None, params(MACRO_PARAMS, {"future": ["realdpi"]}, args.quick)
            ),
            "without_covariates": backtest(frame, None, params(MACRO_PARAMS, None, args.quick)),
        }
        results["sets"]["macrodata"] = {
            "series": "realcons (US real personal consumption, quarterly 1959 Q2 .. 2009 Q3)",
            "covariate": "realdpi (real disposable personal income): its growth, or its level",
            "steps": frame.height,
            "runs": runs,
        }
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
