"""neuralforecast's NHITS and LSTM on the M3 training parts: the deep-learning peers of
benchmarks/m3_test.py, run in their own environment (benchmarks/peers_env.sh builds it: torch's
CPU build and neuralforecast, pinned in benchmarks/requirements-peers.txt), as a subprocess.

Standalone on purpose: it imports nothing of the project, only pandas, torch and neuralforecast,
so the project's locked environment never needs torch.

    ~/.cache/forecast-benchmarks/venv-peers/bin/python benchmarks/neural_peers.py \\
        --data train.parquet --out forecasts.parquet --horizon 18

`--data`: long format (unique_id, ds integer steps, y), the training parts. Writes `--out` (one row
per series and step: unique_id, step 1..horizon, one column per model) and prints one JSON line:
per model the settings, fit and predict seconds.

Settings (the same for both models, stated in the result): horizon = M3's, input_size = 2 x
horizon, max_steps 500, scaler_type "robust" (per window; NHITS's own default, identity, would
train one network on raw values of series whose levels differ by orders of magnitude), everything
else neuralforecast 3.3.0's defaults (NHITS: batch_size 32 series, windows_batch_size 1024,
learning_rate 1e-3; LSTM: direct MLP decoder, encoder_hidden_size 128, 2 layers). Each model is
fitted alone (its own NeuralForecast object) with random_seed `--seed` on the CPU, torch threads =
the cores this process may use (`--threads`), OpenMP waiting passively; no validation set, no
early stopping. Where the shortest series is shorter than input_size, `start_padding_enabled`
(neuralforecast's option for short series; stated in the result's settings).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings


def settings(horizon: int, steps: int, seed: int) -> dict:
    return {
        "h": horizon,
        "input_size": 2 * horizon,
        "max_steps": steps,
        "scaler_type": "robust",
        "random_seed": seed,
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "logger": False,
        "enable_checkpointing": False,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--horizon", type=int, required=True)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", default="NHITS,LSTM")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: the cores)")
    args = parser.parse_args(argv)

    # Before torch loads OpenMP: threads that wait yield the core instead of spinning. On a busy
    # machine spinning threads made NHITS 6x slower with 2 threads than with 1 (1.0 s/step vs
    # 0.16 s/step, 2 shared cores); passive waiting: 0.32 vs 0.25 s/step.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import pandas as pd
    import torch
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM, NHITS

    cores = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(cores)
    df = pd.read_parquet(args.data)[["unique_id", "ds", "y"]]
    df["unique_id"] = df["unique_id"].astype(str)
    df["ds"] = df["ds"].astype("int64")
    classes = {"NHITS": NHITS, "LSTM": LSTM}
    out = None
    report: dict = {
        "torch": torch.__version__,
        "threads": cores,
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        "series": int(df.unique_id.nunique()),
    }
    import neuralforecast

    report["neuralforecast"] = neuralforecast.__version__
    shortest = int(df.groupby("unique_id").size().min())
    for name in args.models.split(","):
        kwargs = settings(args.horizon, args.steps, args.seed)
        # neuralforecast refuses a series shorter than input_size unless its windows may start
        # padded (Tourism yearly: 7 points against 2 x 4); only then, so M3's runs are unchanged.
        if shortest < kwargs["input_size"]:
            kwargs["start_padding_enabled"] = True
        model = classes[name](**kwargs)
        nf = NeuralForecast(models=[model], freq=1)
        started = time.perf_counter()
        nf.fit(df=df)
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        pred = nf.predict()
        predict_s = time.perf_counter() - started
        pred = pred.reset_index() if "unique_id" not in pred.columns else pred
        pred = pred.sort_values(["unique_id", "ds"])
        pred["step"] = pred.groupby("unique_id").cumcount() + 1
        pred = pred[["unique_id", "step", name]]
        out = pred if out is None else out.merge(pred, on=["unique_id", "step"])
        report[name] = {
            "settings": {k: v for k, v in kwargs.items() if k not in ("logger",)},
            "fit_s": round(fit_s, 2),
            "predict_s": round(predict_s, 2),
            "seconds": round(fit_s + predict_s, 2),
        }
        print(f"[neural peers] {name}: fit {fit_s:.1f} s, predict {predict_s:.1f} s", flush=True)
    out.to_parquet(args.out, index=False)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
