"""Choose the model/training defaults on the training years only, then score the test years once.

Multi-origin pseudo-test: for every cut in CUTS the frame is cut there (everything from the cut on
is never read), and the same pipeline code (prepare -> train -> forecast_original of
`test_starts`) holds out the last `forecast.horizon` (24) months before the cut and trains on what
precedes them. The cuts all lie inside the real training years 1949-1958, so the real test years
1959-1960 are never read while tuning. Each candidate is scored at every cut and seed by its RMSE
ratio to seasonal naive; candidates are ranked by the mean ratio. `--final NAME` then runs the
chosen candidate once on the full series and reports its test RMSE/MASE next to seasonal naive.

    uv run python -m benchmarks.tune_defaults                        # all candidates, all cuts
    uv run python -m benchmarks.tune_defaults --only base fast       # some candidates
    uv run python -m benchmarks.tune_defaults --seeds 42 142         # several ensemble seeds
    uv run python -m benchmarks.tune_defaults --rank                 # ranking of stored runs
    uv run python -m benchmarks.tune_defaults --final base           # chosen, on 1959-60, once

Writes benchmarks/results/tune_defaults.json (one record per candidate, cut and seed, so runs
resume and can be split with --only) and final_test.json with --final.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from tasks.columns import TIMESTAMP
from tasks.config import Config, parse_config
from tasks.evaluation.baselines import seasonal_naive
from tasks.evaluation.metrics import mase, rmse
from tasks.features.prepare import prepare

RESULTS = Path("benchmarks/results")
DATA = Path("data/raw/airpassengers.csv")
# First month never read at each pseudo-test origin (horizon 24 before it is the pseudo-test).
# 1959-01 is the real test start: nothing of 1959-1960 is read. Cuts earlier than 1958-01 leave
# too few training windows for a 36-month lookback (one window at 1957-01).
CUTS = ("1958-01-01", "1958-07-01", "1959-01-01")

# Tuning scores the plain holdout at each cut: one evaluate fold (the backtest's extra folds would
# only raise the history needed and are not what is being tuned).
FIXED = {"evaluate.n_windows": 1}
# Overrides of params.yaml (dotted keys). Only prepare.*, model.* and training.* vary.
FAST = {"training.epochs": 150, "training.patience": 15, "training.lr_patience": 5}
QUICK = {"training.epochs": 100, "training.patience": 10, "training.lr_patience": 5}
CANDIDATES: dict[str, dict] = {
    "base": {},  # params.yaml as it is
    "fast": FAST,
    "fast_lr3e-3": {**FAST, "training.learning_rate": 0.003},
    "fast_lookback24_lr3e-3": {**FAST, "prepare.lookback": 24, "training.learning_rate": 0.003},
    "fast_units16_lr3e-3": {**FAST, "model.units": [16], "training.learning_rate": 0.003},
    "fast_units32_lr3e-3": {**FAST, "model.units": [32], "training.learning_rate": 0.003},
    "fast_dropout0.2_lr3e-3": {**FAST, "model.dropout": 0.2, "training.learning_rate": 0.003},
    "fast_batch32_lr3e-3": {**FAST, "training.batch_size": 32, "training.learning_rate": 0.003},
    "fast_gru_lr3e-3": {**FAST, "model.cell": "gru", "training.learning_rate": 0.003},
    "fast_ensemble5_lr3e-3": {**FAST, "training.ensemble": 5, "training.learning_rate": 0.003},
    # Shorter still, for the train stage's time budget (~60-90 s on 2 cores).
    "quick_lr3e-3": {**QUICK, "training.learning_rate": 0.003},
    "quick_lookback24_lr3e-3": {**QUICK, "prepare.lookback": 24, "training.learning_rate": 0.003},
}


def config(overrides: dict, params: Path = Path("params.yaml")) -> Config:
    raw = copy.deepcopy(yaml.safe_load(params.read_text()))
    for key, value in {**FIXED, **overrides}.items():
        section, name = key.split(".")
        raw.setdefault(section, {})[name] = value
    return parse_config(raw)


def fit_and_forecast(frame: pl.DataFrame, cfg: Config):
    """Prepare `frame`, train in a scratch checkpoint dir, forecast the held-out tail of series 0.

    Returns (prepared, train result, forecast in original units, training seconds); shared with
    benchmarks/accuracy.py so both score the pipeline's model the same way.
    """
    import keras

    from tasks.model.forecast import forecast_original
    from tasks.model.train import train

    keras.backend.clear_session()
    prepared = prepare(frame, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = train(prepared, cfg, checkpoint_dir=Path(tmp))
        seconds = time.perf_counter() - started
    pred = forecast_original(prepared, result.model, prepared.test_starts)[0]
    return prepared, result, pred, seconds


def run(frame: pl.DataFrame, cfg: Config) -> dict:
    """Train on `frame` minus its last horizon; score that tail (series 0) vs seasonal naive."""
    prepared, result, pred, seconds = fit_and_forecast(frame, cfg)
    end = int(prepared.train_end[0])
    truth, insample = prepared.raw[end:], prepared.raw[:end]
    m = prepared.season_length
    naive = seasonal_naive(insample, len(truth), m)
    out = {
        "rmse": rmse(truth, pred),
        "mase": mase(truth, pred, insample, m),
        "seasonal_naive_rmse": rmse(truth, naive),
        "seasonal_naive_mase": mase(truth, naive, insample, m),
        "epochs": result.summary["epochs"],
        "train_seconds": round(seconds, 1),
        "test_period": [str(prepared.timestamps[end])[:7], str(prepared.timestamps[-1])[:7]],
    }
    out["ratio"] = out["rmse"] / out["seasonal_naive_rmse"]
    return out


def rank(results: dict) -> list[dict]:
    """Candidates by mean RMSE ratio to seasonal naive over every stored cut and seed."""
    rows = []
    for name, rec in results.items():
        runs = list(rec.get("runs", {}).values())
        if not runs:
            continue
        ratios = [r["ratio"] for r in runs]
        rows.append(
            {
                "candidate": name,
                "mean_ratio": float(np.mean(ratios)),
                "max_ratio": float(np.max(ratios)),
                "mean_rmse": float(np.mean([r["rmse"] for r in runs])),
                "mean_mase": float(np.mean([r["mase"] for r in runs])),
                "mean_train_seconds": float(np.mean([r["train_seconds"] for r in runs])),
                "runs": len(runs),
            }
        )
    return sorted(rows, key=lambda r: r["mean_ratio"])


def print_ranking(results: dict) -> None:
    print(f"{'candidate':26s} ratio  (max)  RMSE    MASE   train s  runs")
    for r in rank(results):
        print(
            f"{r['candidate']:26s} {r['mean_ratio']:.3f} ({r['max_ratio']:.3f}) "
            f"{r['mean_rmse']:6.2f}  {r['mean_mase']:.3f}  {r['mean_train_seconds']:6.1f}  "
            f"{r['runs']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="candidate names (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[42], help="training.seed values")
    parser.add_argument("--cuts", nargs="*", default=list(CUTS), help="pseudo-test cut dates")
    parser.add_argument("--rank", action="store_true", help="print the stored ranking and stop")
    parser.add_argument("--final", help="score this candidate once on the real test years")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "tune_defaults.json"
    frame = pl.read_csv(DATA, try_parse_dates=True)

    if args.rank:
        print_ranking(json.loads(path.read_text()))
        return

    if args.final:
        overrides = CANDIDATES[args.final]
        out = {"candidate": args.final, "overrides": overrides, **run(frame, config(overrides))}
        print(json.dumps(out, indent=2))
        (RESULTS / "final_test.json").write_text(json.dumps(out, indent=2) + "\n")
        return

    for name in args.only or CANDIDATES:
        for cut in args.cuts:
            if cut > "1959-01-01":
                raise SystemExit(f"cut {cut} would read the test years 1959-1960")
            pseudo = frame.filter(pl.col(TIMESTAMP) < pl.lit(cut).str.to_date())
            for seed in args.seeds:
                overrides = {**CANDIDATES[name], "training.seed": seed}
                out = run(pseudo, config(overrides))
                # Re-read before writing: two runs with disjoint --only lists can share the file.
                results = json.loads(path.read_text()) if path.exists() else {}
                rec = results.setdefault(name, {"overrides": CANDIDATES[name], "runs": {}})
                rec["overrides"] = CANDIDATES[name]
                rec.setdefault("runs", {})[f"{cut[:7]}/seed{seed}"] = out
                path.write_text(json.dumps(results, indent=2) + "\n")
                print(
                    f"{name:26s} cut {cut[:7]} seed {seed}: RMSE {out['rmse']:7.2f} "
                    f"MASE {out['mase']:.3f} ratio {out['ratio']:.3f} "
                    f"(seasonal naive {out['seasonal_naive_rmse']:.2f}) "
                    f"epochs {out['epochs']} {out['train_seconds']} s",
                    flush=True,
                )
    print_ranking(json.loads(path.read_text()))


if __name__ == "__main__":
    main()
