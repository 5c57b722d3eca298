"""Choose the model/training defaults on the training years only, then score the test years once.

Pseudo-test: the frame is cut to 1949-1958 (the real training years), so the same pipeline code
(prepare -> train -> forecast from `test_starts`) holds out 1957-1958 and trains on 1949-1956.
The real test years 1959-1960 are never read while tuning. `--final NAME` then runs the chosen
candidate on the full series once and reports its test RMSE/MASE next to seasonal naive.

    uv run python -m benchmarks.tune_defaults                  # all candidates, pseudo-test
    uv run python -m benchmarks.tune_defaults --only fast      # some candidates
    uv run python -m benchmarks.tune_defaults --final fast_lookback24_lr3e-3  # chosen, on 1959-60

Writes benchmarks/results/tune_defaults.json (and final_test.json with --final).
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

from tasks.baselines import seasonal_naive
from tasks.columns import TIMESTAMP
from tasks.config import Config, parse_config
from tasks.metrics import mase, rmse
from tasks.prepare import Prepared, prepare

RESULTS = Path("benchmarks/results")
PSEUDO_END = "1959-01-01"  # first real test month: everything from here on is never read

# Overrides of params.yaml (dotted keys). Only prepare.lookback, model.* and training.* vary.
# The shipped schedule (300 epochs, patience 30) ran past 100 s per member on the pseudo-test, so
# every candidate uses a shorter one: FAST caps the epochs and stops/decays sooner.
FAST = {"training.epochs": 150, "training.patience": 15, "training.lr_patience": 5}
CANDIDATES: dict[str, dict] = {
    "fast": FAST,
    "fast_lr3e-3": {**FAST, "training.learning_rate": 0.003},
    "fast_lookback24": {**FAST, "prepare.lookback": 24},
    "fast_lookback24_lr3e-3": {**FAST, "prepare.lookback": 24, "training.learning_rate": 0.003},
    "fast_units16": {**FAST, "model.units": [16]},
    "fast_units16_lookback24_lr3e-3": {
        **FAST,
        "model.units": [16],
        "prepare.lookback": 24,
        "training.learning_rate": 0.003,
    },
    "fast_gru": {**FAST, "model.cell": "gru"},
    "fast_dropout0.2": {**FAST, "model.dropout": 0.2},
}


def config(overrides: dict, params: Path = Path("params.yaml")) -> Config:
    raw = copy.deepcopy(yaml.safe_load(params.read_text()))
    for key, value in overrides.items():
        section, name = key.split(".")
        raw[section][name] = value
    return parse_config(raw)


def forecast_test(prepared: Prepared, model) -> np.ndarray:
    """Forecast of the held-out tail of series 0, in original units."""
    x = prepared.geometry.inputs(prepared.values, prepared.test_starts)
    scaled = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    return prepared.to_original(0, scaled[0])


def run(frame: pl.DataFrame, cfg: Config) -> dict:
    import keras

    from tasks.train import train

    keras.backend.clear_session()
    prepared = prepare(frame, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = train(prepared, cfg, checkpoint_dir=Path(tmp))
        seconds = time.perf_counter() - started
    end = int(prepared.train_end[0])
    truth, insample = prepared.raw[end:], prepared.raw[:end]
    pred = forecast_test(prepared, result.model)
    m = prepared.season_length
    naive = seasonal_naive(insample, len(truth), m)
    return {
        "rmse": rmse(truth, pred),
        "mase": mase(truth, pred, insample, m),
        "seasonal_naive_rmse": rmse(truth, naive),
        "seasonal_naive_mase": mase(truth, naive, insample, m),
        "epochs": result.summary["epochs"],
        "train_seconds": round(seconds, 1),
        "test_period": [str(prepared.timestamps[end])[:7], str(prepared.timestamps[-1])[:7]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="candidate names (default: all)")
    parser.add_argument("--final", help="score this candidate once on the real test years")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    frame = pl.read_csv("data/raw/airpassengers.csv", try_parse_dates=True)

    if args.final:
        overrides = CANDIDATES[args.final]
        out = {"candidate": args.final, "overrides": overrides, **run(frame, config(overrides))}
        print(json.dumps(out, indent=2))
        (RESULTS / "final_test.json").write_text(json.dumps(out, indent=2) + "\n")
        return

    pseudo = frame.filter(pl.col(TIMESTAMP) < pl.lit(PSEUDO_END).str.to_date())
    path = RESULTS / "tune_defaults.json"
    for name in args.only or CANDIDATES:
        out = run(pseudo, config(CANDIDATES[name]))
        # Re-read before writing: two runs with disjoint --only lists can share the file.
        results = json.loads(path.read_text()) if path.exists() else {}
        results[name] = {"overrides": CANDIDATES[name], **out}
        print(
            f"{name:22s} pseudo-test RMSE {out['rmse']:7.2f}  MASE {out['mase']:.3f}  "
            f"(seasonal naive {out['seasonal_naive_rmse']:.2f})  epochs {out['epochs']}  "
            f"{out['train_seconds']} s",
            flush=True,
        )
        path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
